"""Prompts for generation: from the command line, a file, or a split of the run's own data.

A prompt is either a conversation that ends with a user turn (rendered with the run's chat template) or
plain text (a text run's continuation, a seq2seq source). Rows of any data format llmft trains on work: a
row's final answer, when it has one, becomes the reference the output is compared with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmft.data.rows import conversation_turns, instruction_turn, row_system, with_system
from llmft.errors import DataError
from llmft.run_dir import RunDir

Message = dict[str, str]


@dataclass
class Prompt:
    messages: list[Message] | None = None
    text: str | None = None
    reference: str | None = None

    def shown(self) -> str:
        """The prompt as a person reads it: the text, or the last user turn."""
        if self.text is not None:
            return self.text
        users = [m["content"] for m in self.messages or [] if m["role"] == "user"]
        return users[-1] if users else ""

    def conversation(self, system_prompt: str | None) -> list[Message]:
        """The prompt as chat turns, with the run's system prompt when it has none of its own."""
        messages = list(self.messages) if self.messages else [{"role": "user", "content": self.text or ""}]
        return with_system(messages, system_prompt)

    def source_text(self) -> str:
        """The prompt as plain text, as seq2seq training joins a conversation's turns."""
        if self.text is not None:
            return self.text
        return "\n".join(m["content"] for m in self.messages or [] if m["role"] != "assistant")


def from_canonical(row: dict[str, object]) -> Prompt:
    """A canonical training row (``llmft.data.formats``): the last answer is the reference."""
    if "messages" in row:
        messages = list(row["messages"])  # type: ignore[call-overload]
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None:
            return Prompt(messages=messages)
        return Prompt(messages=messages[:last], reference=messages[last]["content"])
    if "input" in row:
        return Prompt(text=str(row["input"]), reference=str(row.get("target", "")) or None)
    return Prompt(text=str(row.get("text", "")))


def _turns(row: dict[str, object], fmt: str) -> list[Message]:
    """The conversation as training reads it (content parts joined, tool calls kept)."""
    messages = conversation_turns(row, fmt)
    return [{k: v for k, v in m.items() if k != "loss_weight"} for m in messages]  # type: ignore[misc]


def from_raw(row: dict[str, object]) -> Prompt:
    """A row as it is written in a data file (alpaca, sharegpt, messages, preference, seq2seq, text, or a
    bare ``prompt``); the answer is optional."""
    if "instruction" in row:
        messages = with_system([instruction_turn(str(row["instruction"]), row.get("input"))], row_system(row))
        return Prompt(messages=messages, reference=_optional(row.get("output")))
    if isinstance(row.get("messages"), list) or isinstance(row.get("conversations"), list):
        return from_canonical({"messages": _turns(row, "messages" if "messages" in row else "sharegpt")})
    if "prompt" in row:
        return Prompt(
            messages=[{"role": "user", "content": str(row["prompt"])}], reference=_optional(row.get("chosen"))
        )
    if "input" in row:
        return Prompt(text=str(row["input"]), reference=_optional(row.get("target")))
    if "text" in row:
        return Prompt(text=str(row["text"]))
    raise ValueError(f"no prompt column among {', '.join(row) or 'none'}")


def _optional(value: object) -> str | None:
    return str(value) if isinstance(value, str) and value.strip() else None


def read_prompt_file(path: str | Path) -> list[Prompt]:
    """JSON/JSONL rows in any data format llmft reads, or plain text with one prompt per line."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"prompt file {file} does not exist", fix="pass an existing file to --file")
    text = file.read_text(encoding="utf-8")
    rows = _json_rows(text)
    if rows is None:
        return [Prompt(text=line) for line in text.splitlines() if line.strip()]
    prompts = []
    for number, row in enumerate(rows, start=1):
        try:
            prompts.append(from_raw(row))
        except (ValueError, TypeError, AttributeError) as err:
            raise DataError(
                f"row {number} is not a prompt: {err}",
                where=str(file),
                fix="give rows with instruction (alpaca), messages/conversations, prompt, input or text",
            ) from None
    return prompts


def _json_rows(text: str) -> list[dict[str, object]] | None:
    """Rows of a JSON list or JSONL file; None when the file is plain text."""
    stripped = text.strip()
    try:
        if stripped.startswith("["):
            data = json.loads(stripped)
            return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else None
        lines = [line for line in stripped.splitlines() if line.strip()]
        rows = [json.loads(line) for line in lines]
    except json.JSONDecodeError:
        return None
    return rows if rows and all(isinstance(r, dict) for r in rows) else None


def split_prompts(run_dir: Path, split: str, max_rows: int | None = None) -> list[Prompt]:
    """The rows of the run's own validation or test split, prepared exactly as training prepared them."""
    from llmft.config.load import load_config
    from llmft.data.build import prepare_rows

    config_file = RunDir(run_dir).config_file
    if not config_file.is_file():
        raise DataError(
            f"--split needs the run's config.yaml, and {run_dir} has none",
            fix="pass a run dir written by `llmft train`, or give prompts with --prompt/--file",
        )
    config = load_config(config_file, [])
    prepared = prepare_rows(config.data, config.seed, config.hf_token)
    if not prepared.rows.get(split):
        have = ", ".join(s for s, rows in prepared.rows.items() if rows)
        raise DataError(
            f"the run has no {split} split (it has: {have})",
            fix="use --split "
            + ("validation" if split == "test" else "test")
            + " or give prompts with --file",
        )
    rows = prepared.rows[split][:max_rows] if max_rows else prepared.rows[split]
    return [from_canonical(row) for row in rows]
