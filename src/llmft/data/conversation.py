"""Conversation turns, from the shapes data comes in, to the messages chat templates take.

What a turn may hold, and what it becomes:
- ``content``: a string, or a list of parts ``[{"type": "text", "text": ...}]`` (some sets spell the key
  ``value``), joined in order with a newline, as vLLM and the OpenAI API render text parts. Image or audio
  parts are refused: llmft trains text-only models, and dropping them would train on half a turn.
- ``loss_weight``: 0 or 1 on a turn overrides the default (assistant turns carry loss, nothing else).
  The mask is per token and binary, so other weights are refused rather than rounded.
- tool calls: an assistant turn's ``tool_calls`` (the OpenAI / transformers shape) and ``tool`` turns with
  the results; sharegpt spells them as ``function_call`` turns (JSON ``{"name", "arguments"}``, or a list of
  them) and ``observation`` turns. Arguments become a dict, the shape chat templates render with ``tojson``.
- Hub datasets stored in Arrow fill the keys one row lacks with None (a struct has every row's keys);
  such keys count as absent (local files keep such columns as JSON text, see sources.py).
"""

from __future__ import annotations

import json

Message = dict[str, object]

ROLES_SHAREGPT = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
}
ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
# Keys a tool turn may carry through to the template (Llama 3 and Mistral templates read them).
TOOL_TURN_KEYS = ("name", "tool_call_id")


class BadRow(ValueError):
    """A row that cannot be used; the message is the reason shown to the user."""


def decode_json(value: object, what: str) -> object:
    """A value given as JSON text (a `tools` column, a conversation stored as a string) decoded."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise BadRow(f"{what} is not valid JSON ({err.msg} at char {err.pos})") from None


def present(mapping: dict[str, object]) -> dict[str, object]:
    """The keys that hold a value: Arrow fills a key another row has with None."""
    return {k: v for k, v in mapping.items() if v is not None}


def deep_present(value: object) -> object:
    """``present`` all the way down, for tool schemas and call arguments, whose keys differ from row to row
    (so a JSON null there counts as absent too: after Arrow, the two cannot be told apart)."""
    if isinstance(value, dict):
        return {k: deep_present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [deep_present(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------- content
def content_text(value: object, what: str, *, allow_empty: bool = False) -> str:
    """A turn's text: a string, or its text parts joined in order."""
    if isinstance(value, list):
        value = "\n".join(_part_text(part, what) for part in value)
    if value is None:
        if allow_empty:
            return ""
        raise BadRow(f"missing {what}")
    if not isinstance(value, str):
        raise BadRow(f"{what} is not a string or a list of parts ({type(value).__name__})")
    if not value.strip() and not allow_empty:
        raise BadRow(f"empty {what}")
    return value


def _part_text(part: object, what: str) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        raise BadRow(f"a part of the {what} is not an object ({type(part).__name__})")
    part = present(part)
    kind = part.get("type", "text")
    if kind != "text":
        raise BadRow(
            f"non-text part in {what} (`{kind}`): llmft trains text-only models, so only `text` parts "
            "are allowed"
        )
    text = part.get("text", part.get("value"))
    if not isinstance(text, str):
        raise BadRow(f"a text part of the {what} has no `text` (or `value`) string")
    return text


def loss_weight(turn: dict[str, object]) -> int | None:
    """A turn's 0/1 loss_weight, None when it has none."""
    weight = turn.get("loss_weight")
    if weight is None:
        return None
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight not in (0, 1):
        raise BadRow(f"loss_weight must be 0 or 1 (got `{weight}`)")
    return int(weight)


# ------------------------------------------------------------------------------------------ tool calls
def tool_call(call: object) -> Message:
    """One call in the transformers shape: {"type": "function", "function": {"name", "arguments": dict}}."""
    call = decode_json(call, "a tool call")
    if not isinstance(call, dict):
        raise BadRow(f"a tool call is not an object ({type(call).__name__})")
    call = present(call)
    inner = present(call["function"]) if isinstance(call.get("function"), dict) else call
    name = inner.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRow("a tool call has no function name")
    arguments = deep_present(decode_json(inner.get("arguments", {}), f"the arguments of tool call `{name}`"))
    if not isinstance(arguments, dict):
        raise BadRow(f"the arguments of tool call `{name}` are not a JSON object")
    out: Message = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if isinstance(call.get("id"), str):
        out["id"] = call["id"]
    return out


def tool_calls(value: object) -> list[Message]:
    """A turn's calls: a list, or one call (sharegpt's `function_call` value is often a single object)."""
    value = decode_json(value, "the tool calls")
    calls = value if isinstance(value, list) else [value]
    if not calls:
        raise BadRow("a turn's tool_calls list is empty")
    return [tool_call(c) for c in calls]


def tools_column(value: object) -> list[object] | None:
    """The row's tool schemas (a list, or a JSON string of one); None when the row has none."""
    if isinstance(value, str) and not value.strip():
        return None
    value = decode_json(value, "the tools column")
    if value is None or value == []:
        return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise BadRow("the tools column is not a list of function schemas")
    return [deep_present(t) for t in value]


# ------------------------------------------------------------------------------------------ turns
def conversation(turns: object, fmt: str) -> list[Message]:
    """The messages of a `messages` (role/content) or `sharegpt` (from/value) conversation."""
    if isinstance(turns, str):  # a local file's conversation column is kept as JSON text (see sources.py)
        try:
            turns = json.loads(turns)
        except json.JSONDecodeError:
            raise BadRow("conversation is empty or not a list (a string that is not JSON)") from None
    if not isinstance(turns, list) or not turns:
        raise BadRow("conversation is empty or not a list")
    sharegpt = fmt == "sharegpt"
    return [_message(t, sharegpt) for t in turns]


def _message(turn: object, sharegpt: bool) -> Message:
    if not isinstance(turn, dict):
        raise BadRow("a turn is not an object")
    turn = present(turn)
    role_key, text_key, roles = ("from", "value", ROLES_SHAREGPT) if sharegpt else ("role", "content", ROLES)
    spelled = str(turn.get(role_key, ""))
    if spelled.lower() not in roles:
        raise BadRow(f"unknown role `{spelled}` (expected one of {', '.join(sorted(set(roles)))})")
    role = roles[spelled.lower()]
    if sharegpt and spelled.lower() == "function_call":
        message: Message = {"role": role, "content": "", "tool_calls": tool_calls(turn.get(text_key))}
    elif role == "assistant" and turn.get("tool_calls"):
        text = content_text(turn.get(text_key), "turn content", allow_empty=True)
        message = {"role": role, "content": text, "tool_calls": tool_calls(turn["tool_calls"])}
    else:
        message = {"role": role, "content": content_text(turn.get(text_key), "turn content")}
    if role == "tool":
        message.update({k: turn[k] for k in TOOL_TURN_KEYS if isinstance(turn.get(k), str)})
    weight = loss_weight(turn)
    if weight is not None:
        message["loss_weight"] = weight
    return message


def check_turn_order(messages: list[Message], *, prompt: bool = False) -> None:
    """system? then user, assistant, user, ... ; an assistant turn with tool calls may be followed by tool
    results, and those by the assistant; at least one turn carries loss. A ``prompt`` (what a server answers)
    ends with a user turn or tool results instead: the answer is the assistant turn that comes next."""
    body = messages[1:] if messages[0]["role"] == "system" else messages
    if any(m["role"] == "system" for m in body):
        raise BadRow("wrong turn order: a system turn after the start")
    if not body or body[0]["role"] != "user":
        raise BadRow("wrong turn order: the conversation must start with a user turn")
    for prev, cur in zip(body, body[1:], strict=False):
        _check_pair(prev, cur)
    if prompt:
        if body[-1]["role"] not in ("user", "tool"):
            raise BadRow(f"wrong turn order: the last turn is {body[-1]['role']}, not user (or tool results)")
        return
    if not any(m["role"] == "assistant" for m in body):
        raise BadRow("no assistant turn to learn from")
    weights = [m.get("loss_weight", 1 if m["role"] == "assistant" else 0) for m in messages]
    if not any(weights):
        raise BadRow("no turn carries loss (every assistant turn has loss_weight 0)")


def _check_pair(prev: Message, cur: Message) -> None:
    before, role = prev["role"], cur["role"]
    if role == "tool" and not (before == "tool" or (before == "assistant" and prev.get("tool_calls"))):
        raise BadRow(f"wrong turn order: a tool result after a {before} turn without tool calls")
    if before == "tool" and role not in ("tool", "assistant"):
        raise BadRow(f"wrong turn order: a {role} turn right after a tool result (expected the assistant)")
    if before == role and role != "tool":
        raise BadRow(f"wrong turn order: two {role} turns in a row")


def text_length(message: Message) -> int:
    """Characters of a turn, tool calls included, for min_length/max_length filtering."""
    calls = message.get("tool_calls")
    extra = len(json.dumps(calls, ensure_ascii=False)) if calls else 0
    return len(str(message["content"])) + extra


__all__ = [
    "BadRow",
    "Message",
    "check_turn_order",
    "content_text",
    "conversation",
    "decode_json",
    "text_length",
    "tools_column",
]
