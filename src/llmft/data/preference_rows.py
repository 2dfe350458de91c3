"""Preference rows in the layouts people have, brought to one canonical shape.

Pairs (format ``preference``): a prompt from one of ``prompt`` (a string or a message list),
``conversations`` (sharegpt, from/value), ``messages`` (role/content) or ``instruction`` + ``input``
(alpaca), with ``chosen`` and ``rejected`` each a string, one turn object (``{"from": "gpt", "value"}`` or
``{"role": "assistant", "content"}``) or a list holding one such turn.
Unpaired (format ``kto``): ``prompt`` / ``completion`` / ``label``, or a ``messages`` conversation whose
last assistant turn is judged by a boolean ``label`` or ``kto_tag``.

Canonical rows keep ``messages`` (the prompt turns and the chosen, or judged, answer last), so supervised
fine-tuning on pairs learns the chosen answer, and add ``rejected`` (pairs) or ``desirable`` (unpaired).
"""

from __future__ import annotations

import json

from llmft.config.schema import PreprocessingConfig
from llmft.data.conversation import ROLES, ROLES_SHAREGPT, BadRow, check_turn_order, content_text
from llmft.data.rows import (
    JUDGEMENT_KEYS,
    PAIRED,
    UNPAIRED,
    Row,
    instruction_turn,
    row_system,
    string,
    with_system,
)

PREFERENCE_FORMATS = (PAIRED, UNPAIRED)
PROMPT_SOURCES = ("prompt", "conversations", "messages", "instruction")
STRUCTURED = ("prompt", "chosen", "rejected", "completion", "conversations", "messages")


def structured(value: object) -> object:
    """A turn or a list of turns that a local file's reader kept as JSON text (data/sources.py keeps
    object-holding columns as text) decoded; any other string is an answer and is left as it is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(decoded, dict) or (
            isinstance(decoded, list) and all(isinstance(t, dict) for t in decoded)
        ):
            return decoded
    return value


def preference_row(row: Row, fmt: str, cfg: PreprocessingConfig) -> Row:
    """One raw row → ``{"messages", "rejected"}`` (pairs) or ``{"messages", "desirable"}`` (unpaired)."""
    row = {k: structured(v) if k in STRUCTURED else v for k, v in row.items()}
    if fmt == PAIRED:
        chosen, rejected = answer(row.get("chosen"), "chosen"), answer(row.get("rejected"), "rejected")
        if chosen.strip() == rejected.strip():
            raise BadRow("chosen and rejected are identical")
        prompt = with_system(prompt_turns(row, cfg), row_system(row, cfg))
        return {"messages": _checked(prompt, chosen), "rejected": rejected}
    if "completion" in row:
        prompt = with_system(prompt_turns(row, cfg), row_system(row, cfg))
        completion = answer(row.get("completion"), "completion")
        return {"messages": _checked(prompt, completion), "desirable": judgement(row)}
    turns = _turns(row.get("messages"), "messages")
    if turns[-1]["role"] != "assistant":
        last = turns[-1]["role"]
        raise BadRow(f"the conversation must end with the judged assistant turn (it ends with {last})")
    prompt = with_system(turns[:-1], row_system(row, cfg))
    return {"messages": _checked(prompt, turns[-1]["content"]), "desirable": judgement(row)}


def answer(value: object, what: str) -> str:
    """A completion: a string, one assistant turn object, or a list holding one."""
    if isinstance(value, list):
        if len(value) != 1:
            raise BadRow(f"{what} must hold one assistant turn, found {len(value)}")
        value = value[0]
    if isinstance(value, dict):
        role = value.get("role", value.get("from"))
        if role is not None and ROLES_SHAREGPT.get(str(role).lower()) != "assistant":
            raise BadRow(f"{what} is a `{role}` turn, not an assistant turn")
        value = value.get("content", value.get("value"))
    if isinstance(value, list):  # the turn's content as text parts
        return content_text(value, what)
    return string(value, what)


def judgement(row: Row) -> bool:
    """The boolean verdict of an unpaired row (`label` or `kto_tag`); 0/1 and "true"/"false" count too."""
    key = next((k for k in JUDGEMENT_KEYS if k in row and row[k] is not None), None)
    if key is None:
        raise BadRow("missing label (a boolean `label` or `kto_tag`)")
    value = row[key]
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRow(f"{key} is not a boolean (`{str(value)[:20]}`)")


def prompt_turns(row: Row, cfg: PreprocessingConfig) -> list[dict[str, str]]:
    """The prompt as message turns, from the first prompt column the row has."""
    if row.get("prompt") is not None:
        value = row["prompt"]
        if isinstance(value, list):
            return _turns(value, "prompt")
        return [{"role": "user", "content": string(value, "prompt")}]
    for column in ("conversations", "messages"):
        if row.get(column) is not None:
            return _turns(row[column], column)
    if row.get("instruction") is not None:
        return [instruction_turn(string(row["instruction"], "instruction"), row.get("input"))]
    raise BadRow(f"no prompt (one of {', '.join(PROMPT_SOURCES)})")


def _turns(value: object, what: str) -> list[dict[str, str]]:
    """Message turns in either spelling (role/content or from/value)."""
    if not isinstance(value, list) or not value:
        raise BadRow(f"{what} is empty or not a list")
    out = []
    for turn in value:
        if not isinstance(turn, dict):
            raise BadRow(f"a turn of {what} is not an object")
        role = str(turn.get("role", turn.get("from", "")))
        mapped = ROLES_SHAREGPT.get(role.lower()) if "from" in turn else role.lower()
        if mapped not in ROLES:
            raise BadRow(f"unknown role `{role}` in {what}")
        out.append(
            {"role": mapped, "content": content_text(turn.get("content", turn.get("value")), "turn content")}
        )
    return out


def _checked(prompt: list[dict[str, str]], completion: str) -> list[dict[str, str]]:
    """The prompt turns with the answer appended, checked: the prompt must end on a user turn."""
    if not prompt or prompt[-1]["role"] != "user":
        last = prompt[-1]["role"] if prompt else "nothing"
        raise BadRow(f"the prompt must end with a user turn (it ends with {last})")
    messages = [*prompt, {"role": "assistant", "content": completion}]
    check_turn_order(messages)
    return messages
