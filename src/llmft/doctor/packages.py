"""Python and package checks: what llmft requires and optionally uses, and known-bad combinations.

The requirement tables (``REQUIRED``, ``OPTIONAL``, ``KNOWN_CONFLICTS``, ``STACK``) live here next to
the checks that read them. Every check works from a ``Versions`` mapping (see ``versions.py``) or from
installed metadata and source text, so none imports the packages it checks.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmft.doctor.result import Check, fail, ok, warn
from llmft.doctor.versions import Versions, canonical, satisfies

# Keep in sync with pyproject.toml's [project] dependencies (a test compares them).
REQUIRED: dict[str, str] = {
    "torch": ">=2.4,<3",
    "transformers": ">=5.0,<6",
    "peft": ">=0.18,<0.23",
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
    "bitsandbytes": (
        "pip install 'llmft[quant]'",
        "model.adapter.type: qlora or model.quantization (CUDA and CPU), training.optimizer: adamw_8bit",
    ),
    "gguf": ("pip install 'llmft[export]'", "llmft export --format gguf"),
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
