"""Row formats: bring every row to one canonical shape (detection and the rules rows share: ``rows.py``).

Canonical rows (what templates and tokenization see):
- ``{"text": str}``                              plain text (causal LM)
- ``{"text": str, "label": str|int}``            classification
- ``{"messages": [{"role", "content"}, ...]}``   alpaca, sharegpt, chat messages and preference (chosen)
- ``{"input": str, "target": str}``              seq2seq
- ``{"prompt": str | [messages], **columns}``     prompt-only rows (online RL; the columns go to the rewards)
Bad rows are collected with their row number and reason; ``on_bad_rows`` decides whether they stop the
run or are skipped and counted.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from llmft.config.schema import PreprocessingConfig
from llmft.data.conversation import BadRow, check_turn_order, text_length, tools_column
from llmft.data.preference_rows import preference_row
from llmft.data.rows import Row, conversation_turns, instruction_turn, row_system, string, with_system
from llmft.errors import DataError

CONVERSATIONAL = {"alpaca", "sharegpt", "messages", "preference", "kto", "prompt"}


@dataclass
class FormatReport:
    """What formatting did to one split: rows kept, dropped (by reason) and changed (by cleaning step)."""

    format: str
    rows_in: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    changed: Counter[str] = field(default_factory=Counter)
    bad_rows: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.kept}/{self.rows_in} rows kept"]
        if self.dropped:
            parts.append("dropped: " + ", ".join(f"{n} {reason}" for reason, n in self.dropped.most_common()))
        if self.changed:
            parts.append("changed: " + ", ".join(f"{n} by {step}" for step, n in self.changed.most_common()))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {
            "format": self.format,
            "rows_in": self.rows_in,
            "kept": self.kept,
            "dropped": dict(self.dropped),
            "changed": dict(self.changed),
        }


# ------------------------------------------------------------------------------------------- cleaning
TAG = re.compile(r"<[^>]+>")
SPACES = re.compile(r"\s+")


def clean_text(text: str, cfg: PreprocessingConfig, changed: Counter[str]) -> str:
    """Apply the configured cleaning steps, counting which ones changed the text."""
    steps = (
        ("placeholders", bool(cfg.placeholders), lambda t: fill_placeholders(t, cfg.placeholders)),
        ("remove_html", cfg.remove_html, lambda t: html.unescape(TAG.sub(" ", t))),
        ("fix_unicode", cfg.fix_unicode, _fix_unicode),
        ("normalize_whitespace", cfg.normalize_whitespace, lambda t: SPACES.sub(" ", t).strip()),
    )
    for name, enabled, step in steps:
        if enabled:
            new = step(text)
            if new != text:
                changed[name] += 1
                text = new
    return text


def fill_placeholders(text: str, values: dict[str, str]) -> str:
    """``{{key}}`` → its value; other braces are left alone (a template or JSON in the text stays intact)."""
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _fix_unicode(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


# ------------------------------------------------------------------------------------ per-format rows
def _alpaca(row: Row, cfg: PreprocessingConfig) -> Row:
    prompt = instruction_turn(string(row.get("instruction"), "instruction"), row.get("input"))
    answer = string(row.get("output"), "output")
    return {"messages": with_system([prompt, {"role": "assistant", "content": answer}], row_system(row, cfg))}


def _conversation(row: Row, fmt: str, cfg: PreprocessingConfig) -> Row:
    """A conversation's messages (see conversation.py), with the row's tool schemas when it has some."""
    messages = with_system(conversation_turns(row, fmt), cfg.system_prompt)
    check_turn_order(messages)
    tools = tools_column(row.get("tools"))
    return {"messages": messages, "tools": tools} if tools else {"messages": messages}


def _classification(row: Row, cfg: PreprocessingConfig) -> Row:
    label = row.get(cfg.label_column)
    if label is None or (isinstance(label, str) and not label.strip()):
        raise BadRow("missing label")
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    if not isinstance(label, (str, int)) or isinstance(label, bool):
        raise BadRow(f"label is not a string or integer ({type(label).__name__})")
    if cfg.label_names and str(label) not in cfg.label_names:
        shown = ", ".join(cfg.label_names[:10]) + (", ..." if len(cfg.label_names) > 10 else "")
        raise BadRow(f"label not in label_names (`{_clip(str(label))}`; declared: {shown})")
    return {"text": string(row.get(cfg.text_column), "text"), "label": label}


def _prompt_row(row: Row) -> Row:
    """A prompt (text, or a conversation that ends before the answer) and every other column unchanged:
    the rewards read them (an `answer`, test cases) as TRL passes a data set's columns."""
    prompt = row.get("prompt")
    if isinstance(prompt, list):
        messages = [m for m in prompt if isinstance(m, dict)]
        if not messages or len(messages) != len(prompt) or any("role" not in m for m in messages):
            raise BadRow("prompt is a list but not of messages with a role and content")
        if messages[-1]["role"] == "assistant":
            raise BadRow("prompt conversation ends with an assistant turn (the answer is what is sampled)")
    else:
        string(prompt, "prompt")
    return dict(row)


def _clip(text: str, limit: int = 40) -> str:
    """A value short enough to quote in a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def canonical_row(row: Row, fmt: str, cfg: PreprocessingConfig) -> Row:
    if fmt == "text":
        return {"text": string(row.get(cfg.text_column), "text")}
    if fmt == "classification":
        return _classification(row, cfg)
    if fmt == "alpaca":
        return _alpaca(row, cfg)
    if fmt in ("sharegpt", "messages"):
        return _conversation(row, fmt, cfg)
    if fmt in ("preference", "kto"):
        return preference_row(row, fmt, cfg)
    if fmt == "prompt":
        return _prompt_row(row)
    return {
        "input": string(row.get(cfg.input_column), "input"),
        "target": string(row.get(cfg.target_column), "target"),
    }


def _clean_row(row: Row, cfg: PreprocessingConfig, changed: Counter[str]) -> Row:
    """Clean every text field of a row; ``changed`` counts rows (not fields) per cleaning step."""
    fields: Counter[str] = Counter()
    if "messages" in row:
        for message in row["messages"]:  # type: ignore[union-attr]
            if message["content"]:  # empty beside tool calls
                message["content"] = clean_text(message["content"], cfg, fields)
    for key in ("text", "input", "target", "rejected"):
        if key in row:
            row[key] = clean_text(str(row[key]), cfg, fields)
    changed.update(fields.keys())
    return row


def row_length(row: Row) -> int:
    """Characters of a canonical row, for min_length/max_length filtering."""
    if "messages" in row:
        return sum(text_length(m) for m in row["messages"])  # type: ignore[union-attr]
    if isinstance(row.get("prompt"), list):
        return sum(text_length(m) for m in row["prompt"])  # type: ignore[union-attr]
    return sum(len(str(row[k])) for k in ("text", "input", "target", "prompt") if k in row)


def _length_reason(row: Row, cfg: PreprocessingConfig) -> str | None:
    n = row_length(row)
    if not n:
        return "empty after cleaning"
    if cfg.min_length is not None and n < cfg.min_length:
        return f"shorter than min_length ({cfg.min_length} chars)"
    if cfg.max_length is not None and n > cfg.max_length:
        return f"longer than max_length ({cfg.max_length} chars)"
    return None


def format_rows(
    rows: list[Row], fmt: str, cfg: PreprocessingConfig, where: str, numbers: list[int] | None = None
) -> tuple[list[Row], FormatReport]:
    """Canonicalise, clean and filter rows. Bad rows raise (listing the first few) unless skipped.

    ``numbers`` are the rows' 1-based numbers in their file when they are not simply 1, 2, 3, ... (rows
    reordered when validation was carved off train); messages about bad rows use them.
    """
    report = FormatReport(format=fmt, rows_in=len(rows))
    out: list[Row] = []
    for number, row in zip(numbers or range(1, len(rows) + 1), rows, strict=True):
        try:
            item = canonical_row(row, fmt, cfg)
        except BadRow as bad:
            report.bad_rows.append((number, str(bad)))
            report.dropped[_reason_key(str(bad))] += 1
            continue
        item = _clean_row(item, cfg, report.changed)
        if fmt in ("preference", "kto"):  # a row dropped at tokenization (no room) is named by its number
            item["row"] = number
        reason = _length_reason(item, cfg)
        if reason:
            report.dropped[reason] += 1
            continue
        out.append(item)
    report.kept = len(out)
    if report.bad_rows and cfg.on_bad_rows == "error":
        first = "; ".join(f"row {n}: {why}" for n, why in sorted(report.bad_rows)[:5])
        more = f" (and {len(report.bad_rows) - 5} more)" if len(report.bad_rows) > 5 else ""
        raise DataError(
            f"{len(report.bad_rows)} bad row(s) in {fmt} data: {first}{more}",
            where=where,
            fix="fix those rows, or set data.preprocessing.on_bad_rows: skip to drop and count them",
        )
    return out, report


def _reason_key(reason: str) -> str:
    """Group reasons for counting: `unknown role `x`` and `unknown role `y`` count together."""
    return reason.split(" (")[0].split("`")[0].strip()


def prepare_columns(rows: list[Row], cfg: PreprocessingConfig, where: str) -> list[Row]:
    """Apply column_mapping (rename) then filter_columns (keep) to raw rows."""
    if cfg.column_mapping:
        columns = set().union(*(r.keys() for r in rows[:100])) if rows else set()
        unknown = [old for old in cfg.column_mapping if old not in columns]
        if unknown:
            raise DataError(
                f"column_mapping renames {', '.join(map(repr, unknown))}, not in the data; "
                f"the columns there are: {', '.join(sorted(columns))}",
                where=where,
                fix="fix data.preprocessing.column_mapping",
            )
        rows = [{cfg.column_mapping.get(k, k): v for k, v in r.items()} for r in rows]
    if cfg.filter_columns:
        keep = set(cfg.filter_columns)
        rows = [{k: v for k, v in r.items() if k in keep} for r in rows]
    return rows
