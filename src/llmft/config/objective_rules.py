"""What an objective refuses, worded once for `llmft validate` (an explicit training.objective against the
declared data format) and for the run (the objective chosen against the data actually read).

Each rule reads the table in config/objectives.py and returns ``(message, fix)`` or None; callers turn that
into a Problem (validate) or a ConfigError (run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.config.objectives import (
    DESCRIBED,
    JUDGED,
    PAIRS,
    PROMPTS,
    ROWS,
    auto_choice,
    kind_of,
    settings_read,
)

if TYPE_CHECKING:
    from llmft.config.schema import PreferenceConfig

Refusal = tuple[str, str] | None
LEARNS_TOO = {  # an instruction objective on preference data: what it would learn as well as the good rows
    JUDGED: "judged (kto) rows would learn the undesirable completions too",
    PAIRS: "preference pairs would learn the rejected completions too",
    PROMPTS: "prompt-only rows has no answers to learn from (they are prompts for online RL)",
}
DATA_FIX = {
    PAIRS: "use data with chosen and rejected columns",
    JUDGED: "use data with a boolean label per completion",
}


def data_refusal(name: str, data_format: str, declared: bool) -> Refusal:
    """Objective ``name`` against data of ``data_format``. ``declared``: the format is
    data.preprocessing.format as written (validate), not the data read (run); the two texts differ only
    in how they name the data, and tests hold both."""
    row, kind = ROWS[name], kind_of(data_format)
    if kind is None or kind in row.data:
        return None
    if not row.preference:
        better = auto_choice(data_format)[0]
        return f"{name} on {LEARNS_TOO[kind]}", f"set training.objective: {better} (or auto)"
    if declared:
        message = f"objective {name} needs preference data, but data.preprocessing.format is {data_format}"
        return message, "set data.preprocessing.format: auto"
    needs = " or ".join(DESCRIBED[k] for k in row.data)
    fix = f"{DATA_FIX[row.data[0]]}, or set training.objective: sft"
    return f"training.objective {name} needs {needs}, but the data is {data_format}", fix


def train_refusal(name: str) -> Refusal:
    """Objective ``name`` is in the table but llmft's loop cannot train it yet (online RL awaits its rollout
    loop): `llmft validate` warns with this, a run refuses with it rather than train something else."""
    row = ROWS[name]
    if row.trains:
        return None
    what = "learns from completions it generates as it trains (online RL)" if row.rollouts else "is planned"
    return (
        f"objective {name} {what}, and llmft's training loop cannot train it yet: `llmft validate` checks "
        "the config, `llmft train` refuses it",
        f"to train {name} now use TRL's {name.upper()}Trainer; keep this config for llmft's online RL "
        "loop (a later release)",
    )


def task_refusal(name: str, task: str) -> Refusal:
    """Objective ``name`` against a model ``task`` (`auto`: decided from the model later)."""
    needed = ROWS[name].model_task
    if needed is None or task in ("auto", needed):
        return None
    return (
        f"objective {name} trains a {needed} model, not {task}",
        f"set model.task: auto (or {needed}), with a model that has that form",
    )


def unused_settings(name: str, cfg: PreferenceConfig) -> list[str]:
    """The training.preference settings that are set but that objective ``name`` does not read: a setting
    that would do nothing is refused rather than ignored."""
    read = settings_read(name)
    return [f for f in type(cfg).model_fields if f not in read and getattr(cfg, f) not in (None, False)]


def unused_message(name: str, settings: list[str]) -> tuple[str, str]:
    """(message, fix) for settings objective ``name`` would ignore, naming the objectives that read them."""
    readers = sorted({row for row in ROWS if any(s in settings_read(row) for s in settings)})
    return (
        f"training.preference.{', '.join(settings)} {'is' if len(settings) == 1 else 'are'} not read by "
        f"objective `{name}` (only by {', '.join(readers)})",
        f"delete {', '.join(settings)} from training.preference, or set training.objective to one that "
        "reads it",
    )
