"""The doctor's checks of this machine, gathered in one namespace: ``report.run_doctor`` calls them as
``c.NAME`` (``from llmft.doctor import checks as c``), and the tests do too.

Each check takes plain facts (versions, parsed files, env) and returns ``Check`` lines, so every one can
be tested with made-up inputs; gathering the facts is kept apart (``installed_versions``,
``probe_torch``, ``read_memory``, ``scan_cache``, ``probe_hub``). They are defined one module per area,
in report order:

- ``result``: the ``Check`` line and the ``ok`` / ``warn`` / ``fail`` helpers
- ``versions``: installed versions from metadata, and version-specifier matching
- ``packages``: Python, the required and optional packages, known and declared conflicts
- ``accelerators``: the torch build, GPUs, MPS, the NVIDIA driver
- ``cpu``: CPU model, usable cores, instruction sets, bf16 speed
- ``resources``: RAM (with any container limit) and free disk space
- ``hf_cache``: Hugging Face cache paths, size, writability, stale locks, partial downloads
- ``hub``: offline mode, the Hub endpoint and whether it answers, the token

This module only re-exports them. Patching a name here (``monkeypatch.setattr(c, ...)``) changes what
``run_doctor`` calls, not what a check calls inside its own module: patch the defining module for that
(``hf_cache.lock_state`` for ``scan_cache``). Only ``accelerators.probe_torch`` imports torch, inside
the function; nothing here imports torch, transformers or huggingface_hub at import time.
``report.run_doctor`` sets each line's category; the checks of a run config against the machine are in
``config_fit.py``.
"""

from __future__ import annotations

from llmft.doctor.accelerators import GpuInfo, TorchInfo, check_torch, nvidia_driver, probe_torch
from llmft.doctor.cpu import CpuInfo, check_cpu, parse_cpuinfo, usable_cores
from llmft.doctor.hf_cache import CacheScan, HfPaths, check_cache, hf_paths, lock_state, scan_cache
from llmft.doctor.hub import (
    DEFAULT_ENDPOINT,
    OFFLINE_VARS,
    TRUE_VALUES,
    check_hub,
    check_offline,
    check_token,
    hub_endpoint,
    hub_offline,
    is_true,
    probe_hub,
)
from llmft.doctor.packages import (
    KNOWN_CONFLICTS,
    OPTIONAL,
    REQUIRED,
    STACK,
    USED_EXTRAS,
    Conflict,
    check_conflicts,
    check_declared,
    check_optional,
    check_python,
    check_required,
    check_transformers_peft,
    declared_conflicts,
    transformers_min_peft,
)
from llmft.doctor.resources import (
    MemInfo,
    cgroup_headroom,
    check_disk,
    check_ram,
    existing_parent,
    parse_meminfo,
    read_memory,
    writable,
)
from llmft.doctor.result import Check, Status, fail, ok, warn
from llmft.doctor.versions import Versions, canonical, fallback_satisfies, installed_versions, satisfies

__all__ = [
    # result
    "Check",
    "Status",
    "fail",
    "ok",
    "warn",
    # versions
    "Versions",
    "canonical",
    "fallback_satisfies",
    "installed_versions",
    "satisfies",
    # packages
    "KNOWN_CONFLICTS",
    "OPTIONAL",
    "REQUIRED",
    "STACK",
    "USED_EXTRAS",
    "Conflict",
    "check_conflicts",
    "check_declared",
    "check_optional",
    "check_python",
    "check_required",
    "check_transformers_peft",
    "declared_conflicts",
    "transformers_min_peft",
    # accelerators
    "GpuInfo",
    "TorchInfo",
    "check_torch",
    "nvidia_driver",
    "probe_torch",
    # cpu
    "CpuInfo",
    "check_cpu",
    "parse_cpuinfo",
    "usable_cores",
    # resources
    "MemInfo",
    "cgroup_headroom",
    "check_disk",
    "check_ram",
    "existing_parent",
    "parse_meminfo",
    "read_memory",
    "writable",
    # hf_cache
    "CacheScan",
    "HfPaths",
    "check_cache",
    "hf_paths",
    "lock_state",
    "scan_cache",
    # hub
    "DEFAULT_ENDPOINT",
    "OFFLINE_VARS",
    "TRUE_VALUES",
    "check_hub",
    "check_offline",
    "check_token",
    "hub_endpoint",
    "hub_offline",
    "is_true",
    "probe_hub",
]
