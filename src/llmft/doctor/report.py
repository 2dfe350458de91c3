"""`llmft doctor`: gather the machine's facts, run every check, and, given a config, whether it fits.

The checks themselves are in ``checks.py`` (the machine, one module per area) and ``config_fit.py``
(a run config against the machine); this module runs them in report order and tags each line.

``run_doctor`` never raises for what it finds: a broken torch, an invalid config or an unreachable Hub
become FAIL/WARN lines. The Hub probe runs in a background thread while the local checks run, so the
report takes about as long as importing torch (a few seconds offline), and at most ~2 s more online.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.doctor import checks as c
from llmft.doctor.checks import Check, fail
from llmft.doctor.config_fit import Machine, check_config_fit
from llmft.doctor.config_fit import check_memory_fit as check_memory_fit  # still importable from here
from llmft.doctor.memory import estimate_from_config
from llmft.errors import ConfigError
from llmft.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import RunConfig

HUB_TIMEOUT_S = 2.0
CACHE_BUDGET_S = 1.5
CATEGORIES = ("python", "packages", "torch", "cpu", "resources", "hf-cache", "hub", "config")

DOCTOR_JSON_SCHEMA: dict[str, object] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/llmft/llmft/schemas/doctor.json",
    "title": "llmft doctor --json",
    "description": "Checks of this machine (and optionally a run config) against what llmft needs.",
    "type": "object",
    "required": ["llmft_version", "ok", "checks"],
    "additionalProperties": False,
    "properties": {
        "llmft_version": {"type": "string"},
        "ok": {"type": "boolean", "description": "False when any check has status `fail` (exit code 1)."},
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "status", "detail", "fix", "category"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "status": {"enum": ["ok", "warn", "fail"]},
                    "detail": {"type": "string"},
                    "fix": {"type": ["string", "null"], "description": "What to do; null when nothing is."},
                    "category": {"enum": list(CATEGORIES)},
                },
            },
        },
    },
}


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    llmft_version: str = __version__

    @property
    def ok(self) -> bool:
        return not any(check.status == "fail" for check in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for check in self.checks if check.status == s) for s in ("ok", "warn", "fail")}

    def summary(self) -> str:
        n = self.counts()
        warnings = f"{n['warn']} warning{'' if n['warn'] == 1 else 's'}"
        return f"{n['ok']} ok, {warnings}, {n['fail']} failure{'' if n['fail'] == 1 else 's'}"

    def to_dict(self) -> dict[str, object]:
        return {
            "llmft_version": self.llmft_version,
            "ok": self.ok,
            "checks": [x.to_dict() for x in self.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# ------------------------------------------------------------------------------------------- running
class _HubProbe:
    """The Hub reachability check in a daemon thread, so a hanging DNS lookup cannot hold the report."""

    def __init__(self, endpoint: str) -> None:
        self.result: list[str | None] = []
        target = lambda: self.result.append(c.probe_hub(endpoint, HUB_TIMEOUT_S))  # noqa: E731
        self.thread = threading.Thread(target=target, daemon=True, name="llmft-doctor-hub")
        self.thread.start()

    def outcome(self) -> str | None:
        self.thread.join(HUB_TIMEOUT_S + 0.5)
        return self.result[0] if self.result else f"no answer within {HUB_TIMEOUT_S:.0f} s"


def _load(config_path: str | Path, overrides: list[str]) -> tuple[RunConfig | None, Check | None]:
    from llmft.config.load import load_config

    try:
        return load_config(config_path, overrides), None
    except ConfigError as err:
        return None, fail("config", err.render(), f"run `llmft validate {config_path}` and fix what it lists")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _tag(category: str, checks: list[Check]) -> list[Check]:
    return [dataclasses.replace(check, category=category) for check in checks]


def _package_lines(versions: c.Versions, cuda: bool) -> list[Check]:
    lines = [
        *c.check_required(versions),
        *c.check_optional(versions, cuda=cuda),
        *c.check_conflicts(versions),
    ]
    lines.append(c.check_declared(versions, c.declared_conflicts(versions)))
    adapter_api = c.check_transformers_peft(versions, c.transformers_min_peft(versions))
    return lines + ([adapter_api] if adapter_api else [])


def run_doctor(
    config_path: str | Path | None = None,
    *,
    overrides: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    network: bool = True,
) -> DoctorReport:
    """Every check, in report order. ``network=False`` skips the Hub probe, as HF_HUB_OFFLINE=1 does.

    ``env`` stands in for ``os.environ`` for the HF cache, offline, token and endpoint checks.
    """
    env = dict(os.environ if env is None else env)
    endpoint = c.hub_endpoint(env)
    probe = _HubProbe(endpoint) if network and not c.hub_offline(env) else None
    versions = c.installed_versions([*c.REQUIRED, *c.OPTIONAL, *c.STACK])
    torch_info = c.probe_torch()
    machine = Machine(torch_info, c.parse_cpuinfo(_read("/proc/cpuinfo")), c.read_memory())
    config, problem = _load(config_path, overrides or []) if config_path is not None else (None, None)
    paths = c.hf_paths(env)
    output_dir = Path(config.output_dir) if config is not None else Path.cwd()
    disks = [c.check_disk("output dir", output_dir), c.check_disk("HF cache", paths.hub_cache)]
    scan = c.scan_cache([paths.hub_cache, paths.datasets_cache], budget_s=CACHE_BUDGET_S)
    hub = c.check_hub(endpoint, probe.outcome() if probe else None, skipped=probe is None)
    checks = [
        *_tag("python", [c.check_python()]),
        *_tag("packages", _package_lines(versions, cuda=torch_info.device == "cuda")),
        *_tag("torch", c.check_torch(torch_info)),
        *_tag("cpu", c.check_cpu(machine.cpu, c.usable_cores())),
        *_tag("resources", [c.check_ram(machine.memory), *disks]),
        *_tag("hf-cache", c.check_cache(paths, scan)),
        *_tag("hub", [c.check_offline(env), c.check_token(env, paths), hub]),
    ]
    if problem is not None:
        checks += _tag("config", [problem])
    elif config is not None:
        estimate = estimate_from_config(config, device=torch_info.device)
        checks += _tag("config", check_config_fit(config, machine, estimate))
    return DoctorReport(checks)
