"""Torch and accelerator checks: what torch was built for, which GPUs (or MPS) it sees, the NVIDIA driver.

``probe_torch`` is the only place the doctor imports torch, and it does so inside the function, so that
importing this module (and so ``llmft doctor``'s startup) stays cheap. ``check_torch`` takes the
``TorchInfo`` it returns, so it can be tested without torch or a GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from llmft.doctor.memory import format_bytes
from llmft.doctor.result import Check, fail, ok, warn


@dataclass(frozen=True)
class GpuInfo:
    name: str
    memory: int
    capability: tuple[int, int]
    bf16: bool


@dataclass(frozen=True)
class TorchInfo:
    """What torch says about the accelerators; ``error`` when torch cannot be imported."""

    version: str | None = None
    cuda_build: str | None = None  # the CUDA version torch was built with
    hip_build: str | None = None
    cuda_available: bool = False
    gpus: tuple[GpuInfo, ...] = ()
    mps: bool = False
    driver: str | None = None  # NVIDIA kernel driver version
    error: str | None = None

    @property
    def device(self) -> str:
        return "cuda" if self.cuda_available and self.gpus else ("mps" if self.mps else "cpu")


def nvidia_driver(path: Path = Path("/proc/driver/nvidia/version")) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)", text)
    return match.group(1) if match else "unknown version"


def probe_torch() -> TorchInfo:
    """Import torch and ask it about CUDA/MPS (about a second on CPU; CUDA init adds a little)."""
    try:
        import torch
    except Exception as err:  # noqa: BLE001 - a broken torch install is exactly what doctor reports
        return TorchInfo(error=f"{type(err).__name__}: {err}")
    gpus = []
    cuda = bool(torch.cuda.is_available())
    for index in range(torch.cuda.device_count() if cuda else 0):
        props = torch.cuda.get_device_properties(index)
        bf16 = props.major >= 8 or bool(torch.version.hip)
        gpus.append(GpuInfo(props.name, int(props.total_memory), (props.major, props.minor), bf16))
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    hip = getattr(torch.version, "hip", None)
    return TorchInfo(torch.__version__, torch.version.cuda, hip, cuda, tuple(gpus), mps, nvidia_driver())


def check_torch(info: TorchInfo) -> list[Check]:
    if info.error is not None:
        return [fail("torch import", info.error, "reinstall torch: pip install --force-reinstall torch")]
    build = (
        f"CUDA {info.cuda_build}"
        if info.cuda_build
        else (f"ROCm {info.hip_build}" if info.hip_build else "CPU")
    )
    checks = [ok("torch build", f"torch {info.version}, {build} build")]
    if info.cuda_build and not info.cuda_available:
        detail = "CUDA build but no usable GPU (none, no driver, or hidden by CUDA_VISIBLE_DEVICES)"
        checks.append(warn("CUDA", detail, "check `nvidia-smi` and CUDA_VISIBLE_DEVICES"))
    elif not info.cuda_build and not info.hip_build and info.driver:
        detail = f"an NVIDIA driver ({info.driver}) is installed but torch is a CPU build"
        checks.append(
            warn("CUDA", detail, "install a CUDA build of torch: https://pytorch.org/get-started/locally/")
        )
    if info.driver:
        checks.append(ok("NVIDIA driver", info.driver))
    for index, gpu in enumerate(info.gpus):
        cap = ".".join(map(str, gpu.capability))
        bf16 = "yes" if gpu.bf16 else "no"
        checks.append(
            ok(
                f"GPU {index}",
                f"{gpu.name}, {format_bytes(gpu.memory)}, compute {cap}, bf16 {bf16}, fp16 yes",
            )
        )
    if info.mps:
        checks.append(ok("MPS", "Apple GPU available (fp32; bf16/fp16 autocast support varies by op)"))
    if info.device == "cpu":
        checks.append(
            ok("accelerator", "none: training runs on the CPU in fp32 (bf16 autocast possible, fp16 not)")
        )
    return checks
