"""Search spaces: config paths and the values to try, parsed from `hpo.parameters`.

Imports nothing heavy: `llmft validate` checks spaces before any trial runs.
Forms accepted for a parameter's space:
- a list of values (categorical; the grid takes each),
- ``{low, high, log?}`` (float) or ``{low, high, step?}`` with integer bounds (int),
- the legacy lists ``["float", lo, hi, "log"]``, ``["int", lo, hi]``, ``["choice", a, b, ...]``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# Short names of the legacy format, resolved to their section.
SHORT_NAMES: dict[str, str] = {
    "learning_rate": "training.learning_rate",
    "lr": "training.learning_rate",
    "batch_size": "training.batch_size",
    "weight_decay": "training.weight_decay",
    "epochs": "training.epochs",
    "num_train_epochs": "training.epochs",
    "max_steps": "training.max_steps",
    "warmup_steps": "training.warmup_steps",
    "warmup_ratio": "training.warmup_ratio",
    "gradient_accumulation_steps": "training.gradient_accumulation_steps",
    "lr_scheduler": "training.lr_scheduler",
    "max_grad_norm": "training.max_grad_norm",
    "r": "model.adapter.r",
    "lora_r": "model.adapter.r",
    "alpha": "model.adapter.alpha",
    "lora_alpha": "model.adapter.alpha",
    "dropout": "model.adapter.dropout",
    "lora_dropout": "model.adapter.dropout",
    "max_length": "data.tokenization.max_length",
}


@dataclass(frozen=True)
class Space:
    """One parameter's space. ``kind`` is "choice", "float" or "int"."""

    path: str
    kind: str
    choices: tuple[object, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None

    def probe_values(self) -> list[object]:
        """Values to validate against the schema: every choice, or both bounds."""
        if self.kind == "choice":
            return list(self.choices)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]

    def grid_values(self, points: int = 3) -> list[object]:
        """Values a grid search tries: the choices, or ``points`` values spread over the range."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            step = int(self.step or max(1, (self.high - self.low) // max(points - 1, 1)))
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.log:
            ratio = (self.high / self.low) ** (1 / max(points - 1, 1))
            return [self.low * ratio**i for i in range(points)]
        width = (self.high - self.low) / max(points - 1, 1)
        return [self.low + width * i for i in range(points)]

    def sample(self, rng: random.Random) -> object:
        """One random value (the random backend): uniform, log-uniform, or on the integer step grid."""
        if self.kind == "choice":
            return rng.choice(self.choices)
        if self.kind == "int":
            step = int(self.step or 1)
            return rng.randrange(int(self.low), int(self.high) + 1, step)
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        if self.step:
            return self.low + self.step * rng.randint(0, int((self.high - self.low) // self.step))
        return rng.uniform(self.low, self.high)

    def describe(self) -> str:
        """How the space reads in messages and result files."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        extra = " log" if self.log else (f" step {self.step:g}" if self.step else "")
        return f"{self.kind} in [{self.low:g}, {self.high:g}]{extra}"


class SpaceError(ValueError):
    """A space that cannot be read; the message says what to write."""


def resolve_path(name: str) -> str:
    """Short legacy names → dotted config paths; dotted paths pass through."""
    return SHORT_NAMES.get(name, name)


def _legacy_list(path: str, spec: list[object]) -> Space | None:
    head = spec[0] if spec else None
    if head in ("float", "loguniform", "uniform") and len(spec) >= 3:
        log = head == "loguniform" or (len(spec) > 3 and spec[3] == "log")
        return Space(path, "float", low=float(spec[1]), high=float(spec[2]), log=log)  # type: ignore[arg-type]
    if head in ("int", "randint") and len(spec) >= 3:
        step = float(spec[3]) if len(spec) > 3 and isinstance(spec[3], (int, float)) else None  # type: ignore[arg-type]
        return Space(path, "int", low=float(spec[1]), high=float(spec[2]), step=step)  # type: ignore[arg-type]
    if head in ("choice", "categorical") and len(spec) >= 2:
        rest = spec[1:]
        choices = rest[0] if len(rest) == 1 and isinstance(rest[0], list) else rest
        return Space(path, "choice", choices=tuple(choices))
    return None


def parse_space(name: str, spec: object) -> Space:
    """Read one ``hpo.parameters`` entry; raises SpaceError saying what forms are allowed."""
    path = resolve_path(name)
    if isinstance(spec, list):
        if not spec:
            raise SpaceError("an empty list has nothing to try")
        legacy = _legacy_list(path, spec)
        return legacy if legacy is not None else Space(path, "choice", choices=tuple(spec))
    if isinstance(spec, dict):
        if "values" in spec or "choices" in spec:
            values = spec.get("values", spec.get("choices"))
            if isinstance(values, list) and values:
                return Space(path, "choice", choices=tuple(values))
        low, high = spec.get("low"), spec.get("high")
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low <= high:
            is_int = isinstance(low, int) and isinstance(high, int) and not spec.get("log") and "step" in spec
            is_int = is_int or (isinstance(low, int) and isinstance(high, int) and spec.get("type") == "int")
            kind = "int" if is_int else "float"
            log = bool(spec.get("log", False))
            if log and low <= 0:
                raise SpaceError("a log range needs low > 0")
            step = spec.get("step")
            return Space(
                path,
                kind,
                low=float(low),
                high=float(high),
                log=log,
                step=float(step) if isinstance(step, (int, float)) else None,
            )
    raise SpaceError(
        f"cannot read the space {spec!r}: write a list of values, {{low, high, log}} for floats, "
        '{low, high, step} for integers, or ["float", lo, hi, "log"]'
    )
