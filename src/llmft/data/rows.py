"""Rows → turns: the rules every reader of data rows shares.

Training data (``formats.py``), preference data (``preference_rows.py``) and ``llmft generate``'s prompt
files (``generate/prompts.py``) all take them from here:
- format detection: which format a split's columns are, and the columns each format needs;
- alpaca: ``instruction`` and an optional ``input`` become one user turn (the input after a blank line);
- sharegpt (``conversations``, from/value) and ``messages`` (role/content): the conversation's turns, read
  as ``conversation.py`` reads them;
- the system prompt: an alpaca or preference row's own ``system`` column wins over the configured one (a
  conversation carries its own as a system turn); it goes first unless the turns start with a system turn.
This module imports no other row module, so each of those can import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmft.data.conversation import BadRow, Message, conversation
from llmft.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import PreprocessingConfig

Row = dict[str, object]
PAIRED, UNPAIRED, PROMPT_ONLY = "preference", "kto", "prompt"
JUDGEMENT_KEYS = ("label", "kto_tag")
CONVERSATION_COLUMNS = {"sharegpt": "conversations", "messages": "messages"}


def string(value: object, what: str) -> str:
    """A non-blank string field of a row; anything else is a bad row saying why."""
    if value is None:
        raise BadRow(f"missing {what}")
    if not isinstance(value, str):
        raise BadRow(f"{what} is not a string ({type(value).__name__})")
    if not value.strip():
        raise BadRow(f"empty {what}")
    return value


# ------------------------------------------------------------------------------------------- detection
def preference_format(columns: set[str]) -> str | None:
    """`preference` for chosen/rejected columns, `kto` for judged completions, else None."""
    if {"chosen", "rejected"} <= columns:
        return PAIRED
    if {"prompt", "completion", "label"} <= columns:
        return UNPAIRED
    if "messages" in columns and columns & set(JUDGEMENT_KEYS):
        return UNPAIRED
    return None


def detect_format(columns: list[str], cfg: PreprocessingConfig, where: str | None = None) -> str:
    """Pick the format from the column names; explicit ``format`` wins. ``where`` names the data in errors."""
    if cfg.format != "auto":
        return cfg.format
    cols = set(columns)
    paired = preference_format(cols)
    if paired:
        return paired
    if "prompt" in cols and not cols & {"completion", "chosen", "rejected"}:
        return PROMPT_ONLY  # online RL's rows: a prompt and the columns its rewards read
    if "conversations" in cols:
        return "sharegpt"
    if "messages" in cols:
        return "messages"
    if {"instruction", "output"} <= cols:
        return "alpaca"
    if cfg.text_column in cols and cfg.label_column in cols:
        return "classification"
    if cfg.input_column in cols and cfg.target_column in cols:
        return "seq2seq"
    if cfg.text_column in cols:
        return "text"
    raise DataError(
        f"cannot tell the data format from the columns: {', '.join(columns) or '(none)'}",
        fix="name the columns as one format expects (text; text+label; instruction/input/output; messages; "
        "conversations; prompt/chosen/rejected; prompt/completion/label; prompt alone; input+target), "
        "map them with "
        "data.preprocessing.column_mapping, or set data.preprocessing.text_column / label_column",
        where=where,
    )


def required_columns(fmt: str, cfg: PreprocessingConfig) -> list[str]:
    return {
        "text": [cfg.text_column],
        "classification": [cfg.text_column, cfg.label_column],
        "alpaca": ["instruction", "output"],
        "sharegpt": ["conversations"],
        "messages": ["messages"],
        "preference": ["chosen", "rejected"],
        "kto": [],
        "prompt": ["prompt"],
        "seq2seq": [cfg.input_column, cfg.target_column],
    }[fmt]


def check_columns(columns: list[str], fmt: str, cfg: PreprocessingConfig, where: str) -> None:
    missing = [c for c in required_columns(fmt, cfg) if c not in columns]
    if missing:
        raise DataError(
            f"column{'s' if len(missing) > 1 else ''} {', '.join(f'`{c}`' for c in missing)} not found for "
            f"format {fmt}; the columns there are: {', '.join(columns)}",
            where=where,
            fix="rename with data.preprocessing.column_mapping ({old: new}) or set text_column/label_column",
        )


# ----------------------------------------------------------------------------------------------- turns
def instruction_turn(instruction: str, extra: object) -> dict[str, str]:
    """alpaca's instruction, and its ``input`` when that is a non-blank string, as one user turn."""
    text = instruction if not (isinstance(extra, str) and extra.strip()) else f"{instruction}\n\n{extra}"
    return {"role": "user", "content": text}


def conversation_turns(row: Row, fmt: str) -> list[Message]:
    """The turns of a sharegpt (``conversations``) or ``messages`` row, as ``conversation.py`` reads them."""
    return conversation(row.get(CONVERSATION_COLUMNS[fmt]), fmt)


def row_system(row: Row, cfg: PreprocessingConfig | None = None) -> str | None:
    """The system prompt a row gets: its own ``system``, else the configured one; None unless that is a
    non-blank string."""
    system = row.get("system") or (cfg.system_prompt if cfg is not None else None)
    return system if isinstance(system, str) and system.strip() else None


def with_system(messages: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    """The turns with ``system`` first, unless there is none or they start with a system turn of their own."""
    if system and (not messages or messages[0]["role"] != "system"):
        return [{"role": "system", "content": system}, *messages]
    return messages
