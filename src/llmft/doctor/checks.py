"""The doctor's checks of this machine. Each takes plain facts (versions, parsed files, env) and returns
``Check`` lines, so every one can be tested with made-up inputs; gathering the facts is kept apart
(``installed_versions``, ``probe_torch``, ``read_memory``, ``scan_cache``, ``probe_hub``).

Versions come from ``importlib.metadata``: no package is imported to learn its version; only
``probe_torch`` imports torch. ``report.run_doctor`` sets each line's category; the checks of a run
config against the machine are in ``doctor/report.py``.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llmft.doctor.memory import GIB, MIB, format_bytes

Status = Literal["ok", "warn", "fail"]
Versions = Mapping[str, str | None]


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, the verdict, what was found and how to fix it."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    category: str = ""

    def to_dict(self) -> dict[str, str | None]:
        keys = ("name", "status", "detail", "fix", "category")
        return {key: getattr(self, key) for key in keys}


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warn(name: str, detail: str, fix: str | None) -> Check:
    return Check(name, "warn", detail, fix)


def fail(name: str, detail: str, fix: str | None) -> Check:
    return Check(name, "fail", detail, fix)


# --------------------------------------------------------------------------------------- versions
# Keep in sync with pyproject.toml's [project] dependencies (a test compares them).
REQUIRED: dict[str, str] = {
    "torch": ">=2.4,<3",
    "transformers": ">=5.0,<6",
    "peft": ">=0.18,<1",
    "datasets": ">=3.0,<6",
    "accelerate": ">=1.0,<2",
    "safetensors": ">=0.4",
    "tokenizers": ">=0.21",
    "pydantic": ">=2.6,<3",
    "pyyaml": ">=6.0",
    "typer": ">=0.12",
    "rich": ">=13.0",
}
# Optional package → (how to install it, what needs it).
OPTIONAL: dict[str, tuple[str, str]] = {
    "optuna": ("pip install 'llmft[optuna]'", "hpo.backend: optuna"),
    "ray": ("pip install 'llmft[ray]'", "hpo.backend: ray"),
    "trl": ("pip install 'llmft[bench]'", "benchmarks against TRL"),
    "psutil": ("pip install 'llmft[bench]'", "memory figures on non-Linux systems"),
    "bitsandbytes": ("pip install bitsandbytes", "model.adapter.type: qlora (CUDA only)"),
}


@dataclass(frozen=True)
class Conflict:
    """``package`` in ``when`` needs ``other`` in ``needs``. Only for what installed metadata cannot say:
    an older package cannot declare that a later release of another breaks it."""

    package: str
    when: str
    other: str
    needs: str
    why: str


KNOWN_CONFLICTS: tuple[Conflict, ...] = (
    Conflict(
        "transformers", ">=5", "peft", ">=0.18",
        "transformers v5 removed internals that older peft imports; its own minimum for v5 is peft 0.18.0 "
        "(huggingface/transformers#41889)",
    ),
)  # fmt: skip
# The packages whose declared requirements (Requires-Dist) are checked against each other, and the
# extras of theirs llmft uses (transformers declares its torch requirement under the "torch" extra).
STACK: tuple[str, ...] = (*REQUIRED, "huggingface-hub", "numpy")
USED_EXTRAS: dict[str, tuple[str, ...]] = {"transformers": ("torch",)}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions(
    names: list[str] | tuple[str, ...], version_of: Callable[[str], str] = importlib.metadata.version
) -> dict[str, str | None]:
    """Installed version of each distribution (None when missing), read from metadata, not imports."""
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[canonical(name)] = version_of(name)
        except importlib.metadata.PackageNotFoundError:
            found[canonical(name)] = None
    return found


def _release(version: str) -> tuple[int, ...]:
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


_OPS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def fallback_satisfies(version: str, spec: str) -> bool | None:
    """Release-number comparison (>=, <=, >, <, ==, !=) for when `packaging` is not installed."""
    have = _release(version)
    for clause in filter(None, (part.strip() for part in spec.split(","))):
        match = re.match(r"(>=|<=|==|!=|>|<)\s*([\w.]+)$", clause)
        if not match or not have:
            return None
        want = _release(match.group(2))
        width = max(len(have), len(want))
        if not _OPS[match.group(1)](have + (0,) * (width - len(have)), want + (0,) * (width - len(want))):
            return False
    return True


def satisfies(version: str, spec: str) -> bool | None:
    """Whether ``version`` meets ``spec`` (e.g. ">=2.4,<3"); None when either cannot be parsed.

    Pre-releases and local builds count: a torch nightly or ``2.13.0+cpu`` satisfies ``>=2.4``.
    """
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion, Version
    except ImportError:  # pragma: no cover - packaging comes with transformers
        return fallback_satisfies(version, spec)
    try:
        return SpecifierSet(spec).contains(Version(version), prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return None


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    text = ".".join(map(str, version))
    if version[:2] >= (3, 10):
        return ok("Python", f"{text} ({sys.executable})")
    return fail("Python", f"{text}: llmft needs 3.10 or newer", "install Python >= 3.10 in a new environment")


def check_required(versions: Versions) -> list[Check]:
    checks = []
    for name, spec in REQUIRED.items():
        version, fix = versions.get(canonical(name)), f"pip install '{name}{spec}'"
        if version is None:
            checks.append(fail(name, "not installed", fix))
        elif satisfies(version, spec) is False:
            checks.append(fail(name, f"{version} does not satisfy {spec}", fix))
        else:
            checks.append(ok(name, version))
    return checks


def check_optional(versions: Versions, *, cuda: bool) -> list[Check]:
    checks = []
    for name, (install, used_for) in OPTIONAL.items():
        version = versions.get(canonical(name))
        if version is not None:
            checks.append(ok(name, f"{version} (optional, for {used_for})"))
        elif name == "bitsandbytes" and not cuda:
            checks.append(ok(name, f"not installed; only needed for {used_for}"))
        else:
            checks.append(warn(name, f"not installed (needed for {used_for})", install))
    return checks


def check_conflicts(versions: Versions, rules: tuple[Conflict, ...] = KNOWN_CONFLICTS) -> list[Check]:
    """Known-bad combinations from ``rules``: one FAIL line each, or one OK line when none applies."""
    checks = []
    for rule in rules:
        have, other = versions.get(canonical(rule.package)), versions.get(canonical(rule.other))
        if have is None or other is None or not satisfies(have, rule.when):
            continue
        if satisfies(other, rule.needs) is False:
            detail = f"{rule.package} {have} needs {rule.other}{rule.needs}, found {other}: {rule.why}"
            checks.append(
                fail(f"{rule.package} + {rule.other}", detail, f"pip install -U '{rule.other}{rule.needs}'")
            )
    return checks or [ok("known conflicts", f"none of the {len(rules)} known-bad combinations")]


def declared_conflicts(
    versions: Versions, requires: Callable[[str], list[str] | None] = importlib.metadata.requires
) -> list[str]:
    """Requirements the installed stack packages declare (Requires-Dist) that other installed ones miss."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover
        return []
    problems = []
    for name in STACK:
        if versions.get(canonical(name)) is None:
            continue
        extras = ("", *USED_EXTRAS.get(canonical(name), ()))
        for line in requires(name) or []:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras):
                continue
            found = versions.get(canonical(req.name))
            if found is not None and str(req.specifier) and satisfies(found, str(req.specifier)) is False:
                problems.append(
                    f"{name} {versions[canonical(name)]} requires {req.name}{req.specifier}, found {found}"
                )
    return problems


def check_declared(versions: Versions, problems: list[str]) -> Check:
    if not problems:
        count = sum(1 for name in STACK if versions.get(canonical(name)))
        return ok("declared requirements", f"the {count} installed stack packages agree with each other")
    fixes = "; ".join(re.sub(r".* requires (\S+), found .*", r"pip install -U '\1'", p) for p in problems)
    return fail("declared requirements", "; ".join(problems), fixes)


def transformers_min_peft(versions: Versions) -> str | None:
    """``MIN_PEFT_VERSION`` of the installed transformers' PEFT integration, read from its source text."""
    if versions.get("transformers") is None:
        return None
    try:
        dist = importlib.metadata.distribution("transformers")
        text = Path(str(dist.locate_file("transformers/integrations/peft.py"))).read_text(encoding="utf-8")
    except (OSError, importlib.metadata.PackageNotFoundError):
        return None
    match = re.search(r'^MIN_PEFT_VERSION\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    return match.group(1) if match else None


def check_transformers_peft(versions: Versions, minimum: str | None) -> Check | None:
    """transformers' own adapter methods refuse an older peft; llmft builds adapters with peft itself."""
    peft = versions.get("peft")
    if minimum is None or peft is None or satisfies(peft, f">={minimum}") is not False:
        return None
    detail = (
        f"transformers {versions.get('transformers')} wants peft>={minimum} for its adapter methods "
        f"(model.load_adapter, add_adapter), found {peft}; llmft builds adapters with peft directly"
    )
    return warn("transformers adapter API", detail, f"pip install -U 'peft>={minimum}' to use those methods")


# ------------------------------------------------------------------------------------------- torch
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


# --------------------------------------------------------------------------------------------- CPU
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


# ------------------------------------------------------------------------------------- RAM and disk
@dataclass(frozen=True)
class MemInfo:
    total: int
    available: int
    limit: int | None = None  # what is left under a cgroup (container) memory limit, when there is one

    @property
    def usable(self) -> int:
        return min(self.available, self.limit) if self.limit is not None else self.available


def parse_meminfo(text: str) -> MemInfo | None:
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    if "MemTotal" not in values:
        return None
    available = values.get("MemAvailable", values.get("MemFree", 0) + values.get("Cached", 0))
    return MemInfo(values["MemTotal"], available)


def cgroup_headroom(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Memory left under a cgroup limit (v2 ``memory.max``, or v1), None when there is no limit."""
    pairs = (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    )
    for limit_file, usage_file in pairs:
        try:
            limit, usage = (root / limit_file).read_text().strip(), (root / usage_file).read_text().strip()
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit() and int(limit) < 1 << 60:  # v1 writes "no limit" as ~2^63
            return max(0, int(limit) - int(usage))
    return None


def read_memory() -> MemInfo | None:
    """RAM from /proc/meminfo (Linux), else psutil when installed; with any cgroup limit applied."""
    try:
        info = parse_meminfo(Path("/proc/meminfo").read_text())
    except OSError:
        info = None
    if info is None:
        try:
            import psutil
        except ImportError:
            return None
        memory = psutil.virtual_memory()
        info = MemInfo(int(memory.total), int(memory.available))
    return MemInfo(info.total, info.available, cgroup_headroom())


def check_ram(info: MemInfo | None) -> Check:
    if info is None:
        return warn("RAM", "unknown: no /proc/meminfo and psutil is not installed", "pip install psutil")
    detail = f"{format_bytes(info.total)} total, {format_bytes(info.available)} available"
    if info.limit is not None:
        detail += f", {format_bytes(info.limit)} left under the container's memory limit"
    if info.usable < 2 * GIB:
        return warn(
            "RAM", f"{detail}: little room for training", "close other programs, or train something smaller"
        )
    return ok("RAM", detail)


def existing_parent(path: Path) -> Path:
    """The path itself or its nearest existing ancestor (where a later mkdir would write)."""
    path = path.expanduser().absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def writable(path: Path) -> bool:
    """Whether ``path`` (or, when it does not exist yet, the ancestor it would be made in) is writable."""
    where = existing_parent(path)
    return where.is_dir() and os.access(where, os.W_OK | os.X_OK)


def check_disk(label: str, path: Path, *, warn_below: int = 5 * GIB, fail_below: int = 500 * MIB) -> Check:
    name, where = f"disk: {label}", existing_parent(path)
    try:
        free = shutil.disk_usage(where).free
    except OSError as err:
        return warn(name, f"cannot read the free space at {path}: {err}", None)
    detail, fix = f"{format_bytes(free)} free at {path}", f"free space on the disk holding {where}"
    if free < fail_below:
        return fail(name, f"{detail}: too little to save a model", fix)
    if free < warn_below:
        return warn(name, f"{detail}: checkpoints and downloads may not fit", fix)
    return ok(name, detail)


# ------------------------------------------------------------------------------- Hugging Face cache
TRUE_VALUES = {"1", "ON", "YES", "TRUE"}  # huggingface_hub.constants.ENV_VARS_TRUE_VALUES
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
DEFAULT_ENDPOINT = "https://huggingface.co"


def is_true(value: str | None) -> bool:
    return value is not None and value.upper() in TRUE_VALUES


@dataclass(frozen=True)
class HfPaths:
    home: Path
    hub_cache: Path
    datasets_cache: Path
    token: Path


def hf_paths(env: Mapping[str, str]) -> HfPaths:
    """The cache locations by ``huggingface_hub.constants``' (and ``datasets.config``'s) rules, from ``env``.

    HF_HOME defaults to ``$XDG_CACHE_HOME/huggingface`` (``~/.cache/huggingface``); the hub cache is
    HF_HUB_CACHE, else the legacy HUGGINGFACE_HUB_CACHE, else ``$HF_HOME/hub``; the token file is
    HF_TOKEN_PATH or ``$HF_HOME/token``. Computed here because the constants freeze at import time.
    """

    def expand(value: str) -> Path:
        return Path(os.path.expandvars(os.path.expanduser(value)))

    xdg = env.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    home = expand(env.get("HF_HOME", os.path.join(xdg, "huggingface")))
    hub = expand(env.get("HF_HUB_CACHE", env.get("HUGGINGFACE_HUB_CACHE", str(home / "hub"))))
    datasets = expand(env.get("HF_DATASETS_CACHE", str(home / "datasets")))
    return HfPaths(home, hub, datasets, expand(env.get("HF_TOKEN_PATH", str(home / "token"))))


@dataclass
class CacheScan:
    """What a time-bounded walk of the caches found; ``complete`` is False when it was cut short.

    ``stale_locks``: lock files older than the threshold that still block: held by a live process
    (a hung download), or on a filesystem without flock, where the file itself is the lock. Other old
    lock files are ``leftover_locks``: huggingface_hub and datasets lock with flock and never delete
    the files, so they pile up harmlessly.
    """

    size: int = 0
    files: int = 0
    complete: bool = True
    stale_locks: list[Path] = field(default_factory=list)
    leftover_locks: int = 0
    incomplete: list[Path] = field(default_factory=list)


def lock_state(path: Path) -> str:
    """Whether a lock file is "held" (a flock on it by another open file), "free", or "unsupported"."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: filelock deletes its files there
        return "free"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return "free"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return "free"
    except BlockingIOError:
        return "held"
    except OSError:
        return "unsupported"
    finally:
        os.close(fd)


def scan_cache(
    roots: list[Path], *, budget_s: float = 1.5, stale_after_s: float = 3600, now: float | None = None
) -> CacheScan:
    """Walk ``roots`` (symlinks not followed, so a blob counts once) until done or ``budget_s`` is spent.

    Partial downloads count when not written to for 10 minutes (a running download keeps writing).
    """
    deadline, now = time.monotonic() + budget_s, time.time() if now is None else now
    scan, stack = CacheScan(), [root for root in dict.fromkeys(roots) if root.is_dir()]
    while stack:
        if time.monotonic() > deadline:
            scan.complete = False
            break
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            scan.size, scan.files, age = scan.size + stat.st_size, scan.files + 1, now - stat.st_mtime
            if entry.name.endswith(".lock") and age > stale_after_s:
                if lock_state(Path(entry.path)) == "free":
                    scan.leftover_locks += 1
                else:
                    scan.stale_locks.append(Path(entry.path))
            elif entry.name.endswith(".incomplete") and age > 600:
                scan.incomplete.append(Path(entry.path))
    return scan


def _sample(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths[:2]) + (f" (+{len(paths) - 2} more)" if len(paths) > 2 else "")


def check_cache(paths: HfPaths, scan: CacheScan) -> list[Check]:
    """Location, size, writability, stale locks and partial downloads of the Hugging Face caches."""
    size = f"{format_bytes(scan.size)} in {scan.files} files" + ("" if scan.complete else " (walk cut short)")
    checks = [
        ok("HF cache", f"HF_HOME {paths.home}; hub cache {paths.hub_cache}; with the datasets cache {size}")
    ]
    where = existing_parent(paths.hub_cache)
    if writable(paths.hub_cache):
        checks.append(ok("HF cache writable", f"{where} is writable"))
    else:
        checks.append(
            warn("HF cache writable", f"cannot write to {where}", "set HF_HOME to a writable directory")
        )
    roots = " ".join(f"'{p}'" for p in dict.fromkeys((paths.hub_cache, paths.datasets_cache)))
    if scan.stale_locks:
        detail = (
            f"{len(scan.stale_locks)} lock(s) older than 1 h still block downloads (held by a hung process, "
            f"or left by a crash on a filesystem without flock): {_sample(scan.stale_locks)}"
        )
        fix = (
            "stop any stuck download (`fuser -v FILE` names it), then: "
            f"find {roots} -name '*.lock' -mmin +60 -delete"
        )
        checks.append(warn("stale locks", detail, fix))
    else:
        leftover = f"; {scan.leftover_locks} old unheld lock files (harmless)" if scan.leftover_locks else ""
        checks.append(ok("stale locks", f"no lock older than 1 h blocks downloads{leftover}"))
    if scan.incomplete:
        detail = f"{len(scan.incomplete)} abandoned partial download(s): {_sample(scan.incomplete)}"
        fix = (
            f"when no download is running: find {roots} -name '*.incomplete' -delete (re-fetched when needed)"
        )
        checks.append(warn("incomplete downloads", detail, fix))
    else:
        checks.append(ok("incomplete downloads", "none"))
    return checks


# ------------------------------------------------------------------------------------ Hub and token
def hub_offline(env: Mapping[str, str]) -> bool:
    """huggingface_hub's rule: HF_HUB_OFFLINE, or the older TRANSFORMERS_OFFLINE."""
    return is_true(env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE"))


def hub_endpoint(env: Mapping[str, str]) -> str:
    try:
        from huggingface_hub import constants

        default = constants.ENDPOINT
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        default = DEFAULT_ENDPOINT
    return env.get("HF_ENDPOINT", default).rstrip("/")


def check_offline(env: Mapping[str, str]) -> Check:
    shown = ", ".join(f"{name}={env[name]}" if name in env else f"{name} unset" for name in OFFLINE_VARS)
    mode = "offline: only cached models and data sets can be used" if hub_offline(env) else "online"
    return ok("offline mode", f"{mode} ({shown})")


def probe_hub(endpoint: str, timeout: float = 2.0) -> str | None:
    """None when ``endpoint`` answers (with any HTTP status), else why not. Never raises."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(endpoint, method="HEAD", headers={"User-Agent": "llmft-doctor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - the configured Hub endpoint
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except Exception as err:  # noqa: BLE001 - DNS, TLS, proxy, timeout: all mean "unreachable"
        reason = getattr(err, "reason", err)
        return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def check_hub(endpoint: str, failure: str | None, *, skipped: bool = False) -> Check:
    if skipped:
        return ok("Hub", f"not contacted ({endpoint}): offline mode or --no-network")
    if failure is None:
        return ok("Hub", f"{endpoint} reachable")
    detail = f"{endpoint} unreachable ({failure}): Hub models and data sets cannot be downloaded"
    return warn(
        "Hub", detail, "check the network or proxy (HTTPS_PROXY), or set HF_HUB_OFFLINE=1 to use the cache"
    )


def check_token(env: Mapping[str, str], paths: HfPaths) -> Check:
    """Whether a Hub token is configured, and where from. The token itself is never read."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if env.get(name, "").strip():
            return ok("Hub token", f"set (environment variable {name})")
    try:
        present = paths.token.is_file() and paths.token.stat().st_size > 0
    except OSError:
        present = False
    if present:
        return ok("Hub token", f"set (token file {paths.token})")
    return ok("Hub token", "none; only private or gated models need one (`hf auth login` or HF_TOKEN)")
