"""Doctor checks on made-up facts (cpuinfo text, versions, cache trees, env), and the memory estimate."""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from llmft.config.schema import RunConfig
from llmft.doctor import checks as c
from llmft.doctor import config_fit, hf_cache
from llmft.doctor.checks import CpuInfo, GpuInfo, MemInfo, TorchInfo
from llmft.doctor.config_fit import Machine, check_config_fit, check_memory_fit
from llmft.doctor.memory import (
    GIB,
    ActivationProfile,
    MemoryEstimate,
    estimate_from_config,
    estimate_training_memory,
    model_shape,
    read_model_config,
)
from llmft.doctor.report import run_doctor

REPO = Path(__file__).resolve().parents[3]
SENTINEL = "hf_SENTINELtokenVALUE0123456789"

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""
OLD_X86 = "processor : 0\nmodel name : Old Atom\nflags : fpu sse2 ssse3\n"
ARM_CPUINFO = "processor : 0\nFeatures : fp asimd sve\nCPU implementer : 0x41\n"


def _by_name(checks: list[c.Check]) -> dict[str, c.Check]:
    return {check.name: check for check in checks}


# --------------------------------------------------------------------------------------------- CPU
def test_parse_cpuinfo_reads_model_flags_and_count() -> None:
    info = c.parse_cpuinfo(X86_CPUINFO)
    assert info.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert info.logical == 2
    assert info.isa == {"AVX2": True, "AVX-512": True, "AVX512-BF16": True, "AMX": True}
    assert c.parse_cpuinfo(ARM_CPUINFO).flags == {"fp", "asimd", "sve"}


def test_cpu_checks_amx_no_avx2_and_arm() -> None:
    amx = _by_name(c.check_cpu(c.parse_cpuinfo(X86_CPUINFO), 2))
    assert amx["instruction sets"].status == "ok"
    assert "AMX present" in amx["bf16 on CPU"].detail
    old = _by_name(c.check_cpu(c.parse_cpuinfo(OLD_X86), 1))
    assert old["instruction sets"].status == "warn"
    assert old["bf16 on CPU"].status == "ok"
    assert "slower than fp32" in old["bf16 on CPU"].detail
    arm = _by_name(c.check_cpu(c.parse_cpuinfo(ARM_CPUINFO), 1))
    assert "instruction sets" not in arm  # x86 flags only


# ------------------------------------------------------------------------------------------- memory
def test_parse_meminfo_and_ram_status() -> None:
    info = c.parse_meminfo("MemTotal:       16384000 kB\nMemFree: 1000 kB\nMemAvailable:    8192000 kB\n")
    assert info == MemInfo(16384000 * 1024, 8192000 * 1024)
    assert c.parse_meminfo("nothing here") is None
    assert c.check_ram(info).status == "ok"
    assert c.check_ram(MemInfo(16 * GIB, GIB)).status == "warn"
    assert c.check_ram(MemInfo(16 * GIB, 8 * GIB, limit=GIB)).status == "warn"  # container cap counts
    assert c.check_ram(None).status == "warn"


def test_cgroup_headroom(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text("4294967296\n")
    (tmp_path / "memory.current").write_text("1073741824\n")
    assert c.cgroup_headroom(tmp_path) == 3 * GIB
    (tmp_path / "memory.max").write_text("max\n")
    assert c.cgroup_headroom(tmp_path) is None


def test_disk_thresholds(tmp_path: Path) -> None:
    assert c.check_disk("x", tmp_path, warn_below=0, fail_below=0).status == "ok"
    assert c.check_disk("x", tmp_path / "not" / "yet", warn_below=1 << 62, fail_below=0).status == "warn"
    assert c.check_disk("x", tmp_path, warn_below=1 << 62, fail_below=1 << 62).status == "fail"
    assert c.existing_parent(tmp_path / "a" / "b") == tmp_path


# ----------------------------------------------------------------------------------------- versions
def test_satisfies_handles_local_and_pre_releases() -> None:
    assert c.satisfies("2.13.0+cpu", ">=2.4,<3") is True
    assert c.satisfies("2.6.0.dev20240101", ">=2.4") is True
    assert c.satisfies("0.16.0", ">=0.17,<1") is False
    assert c.satisfies("not a version", ">=1") is None
    assert c.fallback_satisfies("2.13.0+cpu", ">=2.4,<3") is True
    assert c.fallback_satisfies("0.16", ">=0.17") is False
    assert c.fallback_satisfies("1.0", "~=1.0") is None


def test_required_packages_missing_and_too_old_fail() -> None:
    assert _by_name(c.check_required({"transformers": "6.0.0"}))["transformers"].status == "fail"  # <6
    versions = {c.canonical(n): None for n in c.REQUIRED} | {"torch": "2.13.0+cpu", "peft": "0.16.0"}
    lines = _by_name(c.check_required(versions))
    assert lines["torch"].status == "ok"
    assert lines["peft"].status == "fail" and "0.16.0 does not satisfy" in lines["peft"].detail
    assert lines["rich"].detail == "not installed" and lines["rich"].fix == "pip install 'rich>=13.0'"


def test_optional_packages_warn_with_install_hint() -> None:
    none = {c.canonical(n): None for n in c.OPTIONAL}
    lines = _by_name(c.check_optional(none, cuda=False))
    assert lines["optuna"].status == "warn" and lines["optuna"].fix == "pip install 'llmft[optuna]'"
    assert lines["bitsandbytes"].status == "ok"  # only useful with CUDA
    assert _by_name(c.check_optional(none, cuda=True))["bitsandbytes"].status == "warn"
    assert _by_name(c.check_optional({"optuna": "4.0"}, cuda=False))["optuna"].status == "ok"


def test_known_conflict_peft_too_old_for_transformers_v5() -> None:
    bad = c.check_conflicts({"transformers": "5.1.0", "peft": "0.16.0"})
    assert [x.status for x in bad] == ["fail"] and "peft>=0.18" in bad[0].detail
    assert c.check_conflicts({"transformers": "4.57.0", "peft": "0.16.0"})[0].status == "ok"
    assert c.check_conflicts({"transformers": "5.1.0", "peft": "0.21.2"})[0].status == "ok"


def test_declared_requirements_read_from_metadata() -> None:
    declared = {
        "transformers": [
            "tokenizers<0.24,>=0.23.1",
            'torch>=2.6; extra == "torch"',
            'pytest; extra == "dev"',
        ],
        "peft": ["torch>=1.13.0", "transformers"],
    }
    versions = {"transformers": "5.24.0", "tokenizers": "0.22.0", "torch": "2.5.0", "peft": "0.21.2"}
    problems = c.declared_conflicts(versions, requires=lambda name: declared.get(name))
    assert problems == [
        "transformers 5.24.0 requires tokenizers<0.24,>=0.23.1, found 0.22.0",
        "transformers 5.24.0 requires torch>=2.6, found 2.5.0",
    ]
    check = c.check_declared(versions, problems)
    assert check.status == "fail" and "pip install -U 'tokenizers<0.24,>=0.23.1'" in (check.fix or "")
    assert c.check_declared(versions, []).status == "ok"


def test_transformers_adapter_api_minimum() -> None:
    assert c.check_transformers_peft({"peft": "0.21.2", "transformers": "5.24"}, "0.22.0").status == "warn"
    assert c.check_transformers_peft({"peft": "0.22.0"}, "0.22.0") is None
    assert c.check_transformers_peft({"peft": "0.21.2"}, None) is None


def test_required_table_matches_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    from packaging.requirements import Requirement

    declared = {c.canonical(Requirement(d).name): Requirement(d).specifier for d in deps}
    assert declared == {c.canonical(n): __import__("packaging.specifiers").specifiers.SpecifierSet(s)
                        for n, s in c.REQUIRED.items()}  # fmt: skip


def test_python_version() -> None:
    assert c.check_python((3, 11, 7)).status == "ok"
    assert c.check_python((3, 9, 1)).status == "fail"


# -------------------------------------------------------------------------------------------- torch
def test_torch_checks() -> None:
    assert c.check_torch(TorchInfo(error="ImportError: libcudnn"))[0].status == "fail"
    cpu = _by_name(c.check_torch(TorchInfo(version="2.13.0+cpu")))
    assert cpu["torch build"].detail == "torch 2.13.0+cpu, CPU build" and "accelerator" in cpu
    hidden = _by_name(c.check_torch(TorchInfo(version="2.13.0", cuda_build="12.8")))
    assert hidden["CUDA"].status == "warn"
    wrong_build = _by_name(c.check_torch(TorchInfo(version="2.13.0+cpu", driver="570.86.15")))
    assert wrong_build["CUDA"].status == "warn"
    gpu = GpuInfo("NVIDIA H100 80GB HBM3", 80 * GIB, (9, 0), True)
    lines = _by_name(c.check_torch(TorchInfo("2.13.0", "12.8", None, True, (gpu,), False, "570.86.15")))
    assert "H100" in lines["GPU 0"].detail and "bf16 yes" in lines["GPU 0"].detail
    assert lines["NVIDIA driver"].detail == "570.86.15" and "CUDA" not in lines


def test_nvidia_driver_parse(tmp_path: Path) -> None:
    file = tmp_path / "version"
    file.write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.86.15  Thu Jan 1 2025\nGCC version: 12\n"
    )
    assert c.nvidia_driver(file) == "570.86.15"
    assert c.nvidia_driver(tmp_path / "missing") is None


# ------------------------------------------------------------------------------------------ HF cache
def test_hf_paths_follow_huggingface_hub_rules(tmp_path: Path) -> None:
    paths = c.hf_paths({"XDG_CACHE_HOME": str(tmp_path)})
    assert paths.home == tmp_path / "huggingface" and paths.hub_cache == tmp_path / "huggingface" / "hub"
    paths = c.hf_paths({"HF_HOME": str(tmp_path / "h"), "HUGGINGFACE_HUB_CACHE": str(tmp_path / "legacy")})
    assert paths.hub_cache == tmp_path / "legacy" and paths.token == tmp_path / "h" / "token"
    env = {
        "HF_HOME": str(tmp_path / "h"),
        "HF_HUB_CACHE": str(tmp_path / "new"),
        "HUGGINGFACE_HUB_CACHE": "x",
    }
    assert c.hf_paths(env).hub_cache == tmp_path / "new"
    assert c.hf_paths(env).datasets_cache == tmp_path / "h" / "datasets"


def _cache_tree(root: Path) -> tuple[Path, Path, Path, Path]:
    """A hub cache with a blob and its snapshot link, an old lock, a new lock and an old partial download."""
    blobs = root / "hub" / "models--org--m" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / "abc").write_bytes(b"x" * 1000)
    snapshot = root / "hub" / "models--org--m" / "snapshots" / "r1"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").symlink_to(blobs / "abc")  # not followed: the blob counts once
    locks = root / "hub" / ".locks" / "models--org--m"
    locks.mkdir(parents=True)
    old_lock, new_lock, partial = locks / "abc.lock", locks / "def.lock", blobs / "def.incomplete"
    old_lock.touch()
    new_lock.touch()
    partial.write_bytes(b"y" * 10)
    two_hours_ago = time.time() - 2 * 3600
    for path in (old_lock, partial):
        os.utime(path, (two_hours_ago, two_hours_ago))
    fresh_partial = blobs / "ghi.incomplete"  # a download still running
    fresh_partial.write_bytes(b"z")
    return old_lock, new_lock, partial, fresh_partial


def test_cache_scan_old_unheld_locks_are_harmless_leftovers(tmp_path: Path) -> None:
    _old, _new, partial, _fresh = _cache_tree(tmp_path)
    scan = c.scan_cache([tmp_path / "hub", tmp_path / "datasets"])
    assert scan.complete and scan.stale_locks == [] and scan.leftover_locks == 1
    assert scan.incomplete == [partial]
    assert scan.size == 1011 and scan.files == 5
    paths = c.hf_paths({"HF_HOME": str(tmp_path)})
    lines = _by_name(c.check_cache(paths, scan))
    assert (
        lines["stale locks"].status == "ok"
        and "1 old unheld lock files (harmless)" in lines["stale locks"].detail
    )
    assert lines["incomplete downloads"].status == "warn" and "-delete" in (
        lines["incomplete downloads"].fix or ""
    )
    assert lines["HF cache writable"].status == "ok"


def test_cache_scan_flags_old_held_locks(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    old_lock, *_ = _cache_tree(tmp_path)
    with old_lock.open("rb") as held:  # another "process" holding the download lock
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert c.lock_state(old_lock) == "held"
        scan = c.scan_cache([tmp_path / "hub"])
    assert scan.stale_locks == [old_lock] and c.lock_state(old_lock) == "free"
    line = _by_name(c.check_cache(c.hf_paths({"HF_HOME": str(tmp_path)}), scan))["stale locks"]
    assert line.status == "warn" and "-mmin +60 -delete" in (line.fix or "")


def test_cache_scan_flags_soft_locks_without_flock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_lock, *_ = _cache_tree(tmp_path)
    monkeypatch.setattr(hf_cache, "lock_state", lambda path: "unsupported")  # what scan_cache calls
    assert c.scan_cache([tmp_path / "hub"]).stale_locks == [old_lock]


def test_clean_cache_is_ok(tmp_path: Path) -> None:
    lines = _by_name(c.check_cache(c.hf_paths({"HF_HOME": str(tmp_path)}), c.CacheScan()))
    assert lines["stale locks"].status == lines["incomplete downloads"].status == "ok"


def test_cache_scan_stops_at_its_budget(tmp_path: Path) -> None:
    _cache_tree(tmp_path)
    scan = c.scan_cache([tmp_path], budget_s=-1)
    assert not scan.complete
    assert "walk cut short" in c.check_cache(c.hf_paths({"HF_HOME": str(tmp_path)}), scan)[0].detail


# ---------------------------------------------------------------------------------------- Hub, token
def test_offline_variables() -> None:
    assert c.hub_offline({"HF_HUB_OFFLINE": "1"}) and c.hub_offline({"TRANSFORMERS_OFFLINE": "yes"})
    assert not c.hub_offline({"HF_HUB_OFFLINE": "0"}) and not c.hub_offline({})
    detail = c.check_offline({"HF_HUB_OFFLINE": "1"}).detail
    assert "HF_HUB_OFFLINE=1" in detail and "HF_DATASETS_OFFLINE unset" in detail


def test_hub_probe_answers_and_failures() -> None:
    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # any answer will do; the timeout only guards a loaded machine (the local server answers at once)
        assert c.probe_hub(f"http://127.0.0.1:{server.server_port}", timeout=60) is None
    finally:
        server.shutdown()
        server.server_close()
    failure = c.probe_hub(f"http://127.0.0.1:{server.server_port}", timeout=60)  # refused at once
    assert failure is not None
    assert c.check_hub("http://x", failure).status == "warn"
    assert c.check_hub("http://x", None, skipped=True).status == "ok"


def test_token_is_located_never_shown(tmp_path: Path) -> None:
    paths = c.hf_paths({"HF_HOME": str(tmp_path)})
    check = c.check_token({"HF_TOKEN": SENTINEL}, paths)
    assert check.detail == "set (environment variable HF_TOKEN)"
    (tmp_path / "token").write_text(SENTINEL)
    check = c.check_token({}, paths)
    assert check.status == "ok" and SENTINEL not in check.detail and "token file" in check.detail
    assert "none" in c.check_token({}, c.hf_paths({"HF_HOME": str(tmp_path / "empty")})).detail


def test_report_never_contains_the_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(SENTINEL)
    env = {**os.environ, "HF_TOKEN": SENTINEL, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    report = run_doctor(env=env, network=False)
    assert SENTINEL not in report.to_json()
    assert any(x.name == "Hub token" and "HF_TOKEN" in x.detail for x in report.checks)


# ----------------------------------------------------------------------------------- config checks
def _config(tmp_path: Path, **sections: dict[str, object]) -> RunConfig:
    model = {"name_or_path": str(tmp_path / "model"), **sections.pop("model", {})}
    data = {"dataset": {"train_file": "train.jsonl"}, "tokenization": {"max_length": 256}}
    return RunConfig.model_validate(
        {"output_dir": str(tmp_path / "out"), "data": data, "model": model, **sections}
    )


CPU_MACHINE = Machine(
    TorchInfo(version="2.13.0+cpu"), CpuInfo("cpu", frozenset({"avx2"}), 2), MemInfo(8 * GIB, 6 * GIB)
)
V100 = GpuInfo("Tesla V100", 16 * GIB, (7, 0), False)
GPU_MACHINE = Machine(
    TorchInfo("2.13.0", "12.8", None, True, (V100,)), CpuInfo(), MemInfo(64 * GIB, 60 * GIB)
)


@pytest.mark.parametrize(("version", "status"), [("0.50.2", "ok"), (None, None)])
def test_qlora_on_cpu_with_bitsandbytes(
    tmp_path: Path, monkeypatch, version: str | None, status: str | None
) -> None:
    monkeypatch.setattr(config_fit, "installed_versions", lambda names: {n: version for n in names})
    config = _config(tmp_path, model={"quantization": {"method": "bnb-4bit"}})
    lines = _by_name(check_config_fit(config, CPU_MACHINE, None))
    assert (lines["quantized base"].status if "quantized base" in lines else None) == status
    assert ("needs bitsandbytes" in lines) == (version is None)


def test_qlora_with_an_old_bitsandbytes_and_fp16_fail_on_cpu(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(config_fit, "installed_versions", lambda names: {n: "0.45.0" for n in names})
    config = _config(tmp_path, model={"adapter": {"type": "qlora"}}, training={"mixed_precision": "fp16"})
    lines = _by_name(check_config_fit(config, CPU_MACHINE, None))
    assert lines["quantized base"].status == "fail" and lines["mixed precision"].status == "fail"
    assert "older than transformers needs" in lines["quantized base"].detail
    assert (
        lines["memory estimate"].status == "warn"
        and "cannot estimate memory" in lines["memory estimate"].detail
    )
    assert lines["output dir"].status == "ok"


def test_adamw_8bit_needs_bitsandbytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmft.doctor import config_fit

    monkeypatch.setattr(config_fit, "installed_versions", lambda names: dict.fromkeys(names))
    config = _config(tmp_path, training={"optimizer": "adamw_8bit"})
    line = _by_name(check_config_fit(config, CPU_MACHINE, None))["needs bitsandbytes"]
    assert (line.status, line.detail, line.fix) == (
        "fail",
        "training.optimizer: adamw_8bit needs bitsandbytes, which is not installed",
        "pip install 'llmft[quant]'",
    )


def test_bf16_checks_follow_the_hardware(tmp_path: Path) -> None:
    config = _config(tmp_path, training={"mixed_precision": "bf16"})
    assert _by_name(check_config_fit(config, CPU_MACHINE, None))["mixed precision"].status == "warn"
    assert _by_name(check_config_fit(config, GPU_MACHINE, None))["mixed precision"].status == "fail"  # V100
    amx = Machine(CPU_MACHINE.torch, CpuInfo("x", frozenset({"avx2", "amx_bf16"})), CPU_MACHINE.memory)
    assert _by_name(check_config_fit(config, amx, None))["mixed precision"].status == "ok"


def test_memory_fit_thresholds() -> None:
    def estimate(total: int) -> MemoryEstimate:
        return MemoryEstimate(total, 0, 0, 0, 0)

    assert check_memory_fit(estimate(GIB), "m", CPU_MACHINE).status == "ok"
    assert check_memory_fit(estimate(5 * GIB), "m", CPU_MACHINE).status == "warn"  # > 80% of 6 GiB
    assert check_memory_fit(estimate(7 * GIB), "m", CPU_MACHINE).status == "fail"
    assert check_memory_fit(estimate(17 * GIB), "m", GPU_MACHINE).status == "fail"  # GPU memory counts


def test_unwritable_output_dir_fails(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    config = RunConfig.model_validate(
        {
            "output_dir": str(locked / "run"),
            "data": {"dataset": {"train_file": "t.jsonl"}},
            "model": {"name_or_path": "m"},
        }
    )
    assert _by_name(check_config_fit(config, CPU_MACHINE, None))["output dir"].status == "fail"


# ------------------------------------------------------------------------------------ memory model
BASE = dict(
    total_params=100_000_000, trainable_params=1_000_000, hidden_size=768, num_layers=12, vocab_size=50257,
    num_heads=12,
)  # fmt: skip


def test_estimate_grows_with_batch_and_sequence() -> None:
    totals = [estimate_training_memory(**BASE, batch_size=b, seq_len=256).total() for b in (1, 2, 8)]
    assert totals == sorted(totals) and len(set(totals)) == 3
    totals = [estimate_training_memory(**BASE, batch_size=4, seq_len=s).total() for s in (128, 512, 2048)]
    assert totals == sorted(totals) and len(set(totals)) == 3


def test_checkpointing_and_eager_scores() -> None:
    plain = estimate_training_memory(**BASE, batch_size=8, seq_len=512)
    checkpointed = estimate_training_memory(**BASE, batch_size=8, seq_len=512, gradient_checkpointing=True)
    assert checkpointed.activations < plain.activations and checkpointed.weights == plain.weights
    eager = estimate_training_memory(
        **BASE, batch_size=8, seq_len=512, profile=ActivationProfile(score_copies=2)
    )
    assert eager.activations > plain.activations
    assert plain.to_dict()["total"] == plain.total() and "peak" in plain.describe()
    assert plain.optimizer == 8 * BASE["trainable_params"] and plain.gradients == 4 * BASE["trainable_params"]


ARCH_CONFIGS = {
    "llama": {"model_type": "llama", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 172,
              "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
              "tie_word_embeddings": False},
    "qwen2": {"model_type": "qwen2", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "tie_word_embeddings": True},
    "gpt2": {"model_type": "gpt2", "vocab_size": 1000, "n_embd": 64, "n_layer": 2, "n_head": 4,
             "n_positions": 128},
    "bert": {"model_type": "bert", "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "intermediate_size": 256, "max_position_embeddings": 128},
}  # fmt: skip


@pytest.mark.parametrize("arch", sorted(ARCH_CONFIGS))
def test_parameter_count_matches_transformers(arch: str) -> None:
    torch = pytest.importorskip("torch")
    import transformers

    raw = ARCH_CONFIGS[arch]
    config = transformers.AutoConfig.for_model(**raw)
    head = transformers.AutoModelForMaskedLM if arch == "bert" else transformers.AutoModelForCausalLM
    with torch.device("meta"):
        model = head.from_config(config)
    real = sum(p.numel() for p in model.parameters())
    shape = model_shape(raw)
    assert shape is not None
    assert abs(shape.total_params() - real) / real < 0.02, (shape.total_params(), real)


def test_lora_trainable_count_matches_peft(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import transformers
    from peft import LoraConfig, get_peft_model

    raw = ARCH_CONFIGS["llama"]
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**raw))
    targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=targets))
    real = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    shape = model_shape(raw)
    assert shape is not None
    assert shape.layers * sum(8 * (x.fan_in + x.fan_out) for x in shape.matching(targets)) == real


def test_estimate_from_config_reads_a_local_model(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps(ARCH_CONFIGS["llama"]))
    assert read_model_config(str(tmp_path / "model")) == ARCH_CONFIGS["llama"]
    estimate = estimate_from_config(_config(tmp_path))
    assert estimate is not None and estimate.total() > estimate.overhead > 0
    assert 0 < estimate.gradients < estimate.weights  # LoRA: few trainable parameters
    lean = estimate_from_config(_config(tmp_path, training={"gradient_checkpointing": True}))
    assert lean is not None and lean.activations < estimate.activations
    full = estimate_from_config(_config(tmp_path, model={"adapter": {"type": "none"}}))
    assert full is not None and full.optimizer == 2 * full.weights
    quantised = estimate_from_config(_config(tmp_path, model={"adapter": {"type": "qlora"}}), device="cuda")
    assert quantised is not None and quantised.weights < estimate.weights / 2


def test_estimate_from_config_offline_hub_id_is_none(tmp_path: Path) -> None:
    config = RunConfig.model_validate(
        {
            "data": {"dataset": {"train_file": "t.jsonl"}},
            "model": {"name_or_path": "no-such-org/no-such-model"},
        }
    )
    assert estimate_from_config(config) is None


def test_unknown_config_has_no_shape() -> None:
    assert model_shape({"model_type": "mystery"}) is None
    generic = model_shape({"model_type": "mystery", "hidden_size": 64, "num_hidden_layers": 2,
                           "num_attention_heads": 4, "vocab_size": 100})  # fmt: skip
    assert generic is not None and generic.total_params() > 0


def test_python_executable_is_reported() -> None:
    assert sys.executable in c.check_python().detail
