"""Row formats: detect them from the columns and bring every row to one canonical shape.

Canonical rows (what templates and tokenization see):
- ``{"text": str}``                              plain text (causal LM)
- ``{"text": str, "label": str|int}``            classification
- ``{"messages": [{"role", "content"}, ...]}``   alpaca, sharegpt, chat messages and preference (chosen)
- ``{"input": str, "target": str}``              seq2seq
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
from llmft.data.conversation import BadRow, check_turn_order, conversation, text_length, tools_column
from llmft.errors import DataError

Row = dict[str, object]
CONVERSATIONAL = {"alpaca", "sharegpt", "messages", "preference", "kto"}


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


def detect_format(columns: list[str], cfg: PreprocessingConfig, where: str | None = None) -> str:
    """Pick the format from the column names; explicit ``format`` wins. ``where`` names the data in errors."""
    if cfg.format != "auto":
        return cfg.format
    cols = set(columns)
    from llmft.data.preference_rows import preference_format  # (it imports this module)

    paired = preference_format(cols)
    if paired:
        return paired
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
        "conversations; prompt/chosen/rejected; prompt/completion/label; input+target), map them with "
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


# ------------------------------------------------------------------------------------------- cleaning
TAG = re.compile(r"<[^>]+>")
SPACES = re.compile(r"\s+")


def clean_text(text: str, cfg: PreprocessingConfig, changed: Counter[str]) -> str:
    """Apply the configured cleaning steps, counting which ones changed the text."""
    steps = (
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


def _fix_unicode(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


# ------------------------------------------------------------------------------------ per-format rows
def _string(value: object, what: str) -> str:
    if value is None:
        raise BadRow(f"missing {what}")
    if not isinstance(value, str):
        raise BadRow(f"{what} is not a string ({type(value).__name__})")
    if not value.strip():
        raise BadRow(f"empty {what}")
    return value


def _alpaca(row: Row, cfg: PreprocessingConfig) -> Row:
    instruction = _string(row.get("instruction"), "instruction")
    extra = row.get("input")
    prompt = instruction if not (isinstance(extra, str) and extra.strip()) else f"{instruction}\n\n{extra}"
    answer = _string(row.get("output"), "output")
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    system = row.get("system") or cfg.system_prompt
    if isinstance(system, str) and system.strip():
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages}


def _conversation(row: Row, fmt: str, cfg: PreprocessingConfig) -> Row:
    """A conversation's messages (see conversation.py), with the row's tool schemas when it has some."""
    messages = conversation(row.get("conversations" if fmt == "sharegpt" else "messages"), fmt)
    if cfg.system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": cfg.system_prompt})
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
    return {"text": _string(row.get(cfg.text_column), "text"), "label": label}


def _clip(text: str, limit: int = 40) -> str:
    """A value short enough to quote in a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def canonical_row(row: Row, fmt: str, cfg: PreprocessingConfig) -> Row:
    if fmt == "text":
        return {"text": _string(row.get(cfg.text_column), "text")}
    if fmt == "classification":
        return _classification(row, cfg)
    if fmt == "alpaca":
        return _alpaca(row, cfg)
    if fmt in ("sharegpt", "messages"):
        return _conversation(row, fmt, cfg)
    if fmt in ("preference", "kto"):
        from llmft.data.preference_rows import preference_row  # (it imports this module)

        return preference_row(row, fmt, cfg)
    return {
        "input": _string(row.get(cfg.input_column), "input"),
        "target": _string(row.get(cfg.target_column), "target"),
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
    return sum(len(str(row[k])) for k in ("text", "input", "target") if k in row)


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
