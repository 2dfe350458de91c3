"""Whether this machine can run a given run config: device, precision, needed packages, memory, output dir.

Apart from the machine checks because these need a loaded ``RunConfig`` and the ``Machine`` facts that
``report.run_doctor`` has already gathered; it calls ``check_config_fit`` only when given a config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.config.tracker_packages import install_hint, missing_modules
from llmft.doctor.accelerators import TorchInfo
from llmft.doctor.cpu import CpuInfo
from llmft.doctor.memory import MemoryEstimate, format_bytes
from llmft.doctor.resources import MemInfo, existing_parent, writable
from llmft.doctor.result import Check, fail, ok, warn
from llmft.doctor.versions import canonical, installed_versions

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import RunConfig


@dataclass(frozen=True)
class Machine:
    """The facts a config is checked against."""

    torch: TorchInfo
    cpu: CpuInfo
    memory: MemInfo | None


def _precision(config: RunConfig, machine: Machine) -> list[Check]:
    wanted, device = config.training.mixed_precision, machine.torch.device
    checks = []
    if wanted == "fp16" and device == "cpu":
        detail = "training.mixed_precision is fp16, which needs a GPU; this machine trains on the CPU"
        checks.append(fail("mixed precision", detail, "set training.mixed_precision: auto (or bf16)"))
    elif wanted == "bf16" and device == "cuda" and not all(gpu.bf16 for gpu in machine.torch.gpus):
        detail = "training.mixed_precision is bf16 but this GPU lacks bf16 (compute capability < 8.0)"
        checks.append(fail("mixed precision", detail, "set training.mixed_precision: fp16 or auto"))
    elif wanted == "bf16" and device == "cpu" and not machine.cpu.isa["AMX"]:
        detail = "bf16 autocast on a CPU without AMX is slower than fp32"
        checks.append(
            warn("mixed precision", detail, "set training.mixed_precision: auto (fp32 on this CPU)")
        )
    else:
        checks.append(ok("mixed precision", f"{wanted} on {device}"))
    if config.model.dtype == "float16" and device == "cpu":
        detail = "model.dtype float16 on the CPU is slow and some ops have no fp16 kernel"
        checks.append(warn("weight dtype", detail, "set model.dtype: auto (float32 on CPU)"))
    return checks


def _quantized_base(config: RunConfig, machine: Machine) -> Check | None:
    """A quantised base (qlora) on this device with the installed bitsandbytes (read from metadata: >= 0.46.1
    has CUDA and CPU kernels). A missing package is `needs bitsandbytes`'s to report."""
    from llmft.models.precision import quantization_problem

    quant = config.model.resolved_quantization()
    version = installed_versions(["bitsandbytes"]).get("bitsandbytes")
    if quant is None or version is None:
        return None
    device = "cuda" if machine.torch.device == "cuda" else "cpu"
    problem = quantization_problem(device, version, {"cuda", "cpu"})
    if problem is not None:
        return fail("quantized base", problem.message, problem.fix)
    slow = (
        "; on CPU a step is slower than in float32 (see docs/GETTING_STARTED.md)" if device == "cpu" else ""
    )
    return ok("quantized base", f"{quant.method} with bitsandbytes {version} on {device.upper()}{slow}")


def _needed_packages(config: RunConfig) -> list[Check]:
    """Optional packages the config needs: bitsandbytes (qlora, adamw_8bit), the HPO backend, trackers."""
    needed: dict[str, tuple[str, str]] = {}
    if config.model.resolved_quantization() is not None:
        needed["bitsandbytes"] = ("a quantised base (qlora)", "pip install 'llmft[quant]'")
    if config.training.optimizer == "adamw_8bit":
        needed["bitsandbytes"] = ("training.optimizer: adamw_8bit", "pip install 'llmft[quant]'")
    if config.hpo.enabled and config.hpo.backend in ("optuna", "ray"):
        backend = config.hpo.backend
        needed[backend] = (f"hpo.backend: {backend}", f"pip install 'llmft[{backend}]'")
    found = installed_versions(list(needed))
    checks = [
        fail(f"needs {name}", f"{why} needs {name}, which is not installed", fix)
        for name, (why, fix) in needed.items()
        if found.get(canonical(name)) is None
    ]
    for tracker in config.tracking.report_to:  # by module (mlflow-skinny installs `mlflow`), not by name
        missing = missing_modules(tracker)
        if missing:
            why = f"tracking.report_to: {tracker} needs {', '.join(missing)}, which is not installed"
            checks.append(fail(f"needs {tracker}", why, install_hint(tracker)))
    return checks


def check_memory_fit(estimate: MemoryEstimate | None, model: str, machine: Machine) -> Check:
    """The estimated peak against GPU memory (CUDA) or the RAM available now: FAIL over, WARN over 80%."""
    if estimate is None:
        detail = f"cannot estimate memory: no config.json for {model} locally or in the HF cache"
        fix = f"download it (`hf download {model} config.json`) or use a local model directory"
        return warn("memory estimate", detail, fix)
    if machine.torch.device == "cuda":
        room, where = machine.torch.gpus[0].memory, f"GPU memory ({machine.torch.gpus[0].name})"
    elif machine.memory is not None:
        room, where = machine.memory.usable, "available RAM"
    else:
        return warn("memory estimate", f"{estimate.describe()}; available RAM unknown", None)
    detail = f"{estimate.describe()} vs {format_bytes(room)} {where}"
    fix = (
        "lower training.batch_size or data.tokenization.max_length, "
        "or set training.gradient_checkpointing: true"
    )
    if estimate.total() > room:
        return fail("memory estimate", f"does not fit: {detail}", fix)
    if estimate.total() > 0.8 * room:
        return warn("memory estimate", f"tight: {detail}", fix)
    return ok("memory estimate", detail)


def check_config_fit(config: RunConfig, machine: Machine, estimate: MemoryEstimate | None) -> list[Check]:
    """Whether this machine can run ``config``: device, precision, packages, memory, output dir."""
    checks = []
    quantized = _quantized_base(config, machine)
    checks += [quantized] if quantized is not None else []
    checks += [*_precision(config, machine), *_needed_packages(config)]
    checks.append(check_memory_fit(estimate, config.model.name_or_path, machine))
    out = Path(config.output_dir)
    if writable(out):
        checks.append(ok("output dir", f"{out} is writable"))
    else:
        checks.append(
            fail("output dir", f"cannot write to {existing_parent(out)}", "set a writable output_dir")
        )
    return checks
