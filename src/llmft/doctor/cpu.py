"""CPU checks: the model, usable cores, and the instruction sets that set torch's CPU speed and bf16 speed.

The facts come from /proc/cpuinfo text (x86 "flags", ARM "Features"), parsed apart from the checks, so
``check_cpu`` can be tested with made-up text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from llmft.doctor.result import Check, ok, warn


@dataclass(frozen=True)
class CpuInfo:
    model: str = "unknown"
    flags: frozenset[str] = field(default_factory=frozenset)
    logical: int = 0

    @property
    def isa(self) -> dict[str, bool]:
        return {
            "AVX2": "avx2" in self.flags,
            "AVX-512": "avx512f" in self.flags,
            "AVX512-BF16": "avx512_bf16" in self.flags,
            "AMX": bool({"amx_bf16", "amx_tile"} & self.flags),
        }


def parse_cpuinfo(text: str) -> CpuInfo:
    """Model name, feature flags and processor count from /proc/cpuinfo (x86 "flags", ARM "Features")."""
    model, flags, logical = "unknown", frozenset[str](), 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "processor":
            logical += 1
        elif key in ("model name", "hardware", "cpu model") and model == "unknown" and value:
            model = value
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.split())
    return CpuInfo(model, flags, logical)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_cpu(info: CpuInfo, usable: int) -> list[Check]:
    logical = info.logical or os.cpu_count() or usable
    checks = [ok("CPU", f"{info.model}, {usable} usable of {logical} logical cores")]
    isa = info.isa
    if info.flags & {"sse2", "avx", "avx2"}:  # x86
        listed = ", ".join(f"{name} {'yes' if has else 'no'}" for name, has in isa.items())
        if isa["AVX2"]:
            checks.append(ok("instruction sets", listed))
        else:
            detail = f"{listed}: torch's CPU kernels are much slower without AVX2"
            checks.append(
                warn("instruction sets", detail, "use a machine with AVX2 (x86 CPUs since 2013 have it)")
            )
    if isa["AMX"]:
        note = "AMX present: bf16 autocast is faster than fp32 on this CPU"
    elif isa["AVX512-BF16"]:
        note = "AVX512-BF16 but no AMX: bf16 autocast is about as fast as fp32"
    else:
        note = (
            "no AMX: bf16 autocast is slower than fp32 on this CPU; keep training.mixed_precision auto or no"
        )
    checks.append(ok("bf16 on CPU", note))
    return checks
