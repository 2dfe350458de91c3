"""The data builder: source → columns → format → canonical rows, then → tokens per split.

Two steps, because the task (and so the tokenizer and model) is only known once the format is:
``prepare_rows`` needs no tokenizer; ``encode_splits`` does.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from llmft.config.schema import DataConfig
from llmft.data import cache
from llmft.data.formats import CONVERSATIONAL, FormatReport, format_rows, prepare_columns
from llmft.data.mixture import Mixture, build_mixture
from llmft.data.rows import check_columns, detect_format
from llmft.data.sources import load_splits
from llmft.data.templates import choose_template
from llmft.data.tokenize import Encoder, TokenStats, encode_rows
from llmft.errors import DataError

SPLITS = ("train", "validation", "test")


@dataclass
class PreparedData:
    """Canonical rows per split, the detected format, and what formatting dropped or changed."""

    format: str
    rows: dict[str, list[dict[str, object]]]
    reports: dict[str, FormatReport]
    origin: str
    validation_carved: bool = False
    fingerprint: str = ""
    # data.datasets: each named set prepared on its own (the rows above are theirs, concatenated in order)
    parts: list[tuple[str, PreparedData]] = field(default_factory=list)

    @property
    def has_labels(self) -> bool:
        return self.format == "classification"

    def label_names(self, declared: list[str] | None) -> list[str] | None:
        """Class names in id order: the declared ones, or the sorted training labels (stable across runs)."""
        if not self.has_labels:
            return None
        found = {str(r["label"]) for r in self.rows["train"]}
        if declared:
            # prepare_rows already reported (or skipped) such rows by file and row; this guards rows built
            # some other way.
            unknown = sorted(found - set(declared))
            if unknown:
                raise DataError(
                    f"labels {unknown} are not in data.preprocessing.label_names {declared}",
                    fix="add them to label_names or fix the rows",
                )
            return list(declared)
        ints = all(str(r["label"]).lstrip("-").isdigit() for r in self.rows["train"])
        return sorted(found, key=int) if ints else sorted(found)


@dataclass
class EncodedData:
    """Token ids/labels per split, with token statistics and the label map."""

    examples: dict[str, list[dict[str, object]]]
    stats: dict[str, TokenStats] = field(default_factory=dict)
    label_names: list[str] | None = None
    template: str | None = None
    from_cache: bool = False
    cache_key: str = ""
    # data.datasets: per split, each set's (name, start, end) slice of the examples; and the training mix
    sources: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)
    mixture: Mixture | None = None
    objective: str = "sft"  # what the examples are shaped for: sft, or a preference objective (pairs)


def _rows_of(split: object | None) -> list[dict[str, object]] | None:
    return None if split is None else split.to_list()  # type: ignore[attr-defined]


def prepare_rows(cfg: DataConfig, seed: int, token: str | None = None) -> PreparedData:
    """Load and canonicalise every split. Raises DataError with the file and row for bad input."""
    if cfg.datasets is not None:
        return _prepare_sets(cfg, seed, token)
    raw = load_splits(cfg.dataset, seed, token)
    pre = cfg.preprocessing
    rows: dict[str, list[dict[str, object]]] = {}
    reports: dict[str, FormatReport] = {}
    fmt = ""
    for name, split in zip(SPLITS, (raw.train, raw.validation, raw.test)):
        data = _rows_of(split)
        if data is None:
            continue
        where = raw.where(name)
        data = prepare_columns(data, pre, where)
        columns = list(dict.fromkeys(k for r in data[:1000] for k in r))
        fmt = fmt or detect_format(columns, pre, where)
        check_columns(columns, fmt, pre, where)
        rows[name], reports[name] = format_rows(data, fmt, pre, where, raw.row_numbers.get(name))
    if not rows.get("train"):
        dropped = reports["train"].summary() if "train" in reports else "no rows"
        raise DataError(
            f"no training rows left after preprocessing ({dropped})",
            fix="loosen data.preprocessing filters (min_length/max_length) or check the data file",
        )
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return PreparedData(fmt, rows, reports, raw.origin, raw.validation_carved, digest)


def _prepare_sets(cfg: DataConfig, seed: int, token: str | None) -> PreparedData:
    """data.datasets: each set prepared with its own source and preprocessing, then concatenated.

    Sets whose tasks cannot share a model (classification rows beside text or chat rows) are refused.
    """
    parts = [(str(name), prepare_rows(view, seed, token)) for name, view in cfg.sets()]
    labelled = [name for name, part in parts if part.has_labels]
    if labelled and len(labelled) != len(parts):
        others = [name for name, part in parts if not part.has_labels]
        raise DataError(
            f"data sets {', '.join(labelled)} are classification data and {', '.join(others)} are not: "
            "one model cannot be trained as a classifier and a generator at once",
            fix="train them in separate runs, or list only sets of one kind under data.datasets",
        )
    formats = {part.format for _, part in parts}
    rows: dict[str, list[dict[str, object]]] = {}
    reports: dict[str, FormatReport] = {}
    for split in SPLITS:
        present = [part for _, part in parts if split in part.rows]
        if present:
            rows[split] = [r for part in present for r in part.rows[split]]
            reports[split] = _merged_report([part.reports[split] for part in present])
    digest = hashlib.sha256(
        json.dumps([(name, part.fingerprint) for name, part in parts]).encode()
    ).hexdigest()[:16]
    return PreparedData(
        formats.pop() if len(formats) == 1 else "mixed",
        rows,
        reports,
        "; ".join(f"{name}: {part.origin}" for name, part in parts),
        any(part.validation_carved for _, part in parts),
        digest,
        parts,
    )


def _merged_report(reports: list[FormatReport]) -> FormatReport:
    merged = FormatReport(reports[0].format if len({r.format for r in reports}) == 1 else "mixed")
    for report in reports:
        merged.rows_in += report.rows_in
        merged.kept += report.kept
        merged.dropped.update(report.dropped)
        merged.changed.update(report.changed)
    return merged


def encode_splits(prepared: PreparedData, cfg: DataConfig, tokenizer: object, task: str) -> EncodedData:
    """Tokenize every split for the task (each set of data.datasets with its own template)."""
    labels = (
        prepared.label_names(cfg.preprocessing.label_names) if task == "sequence_classification" else None
    )
    if task == "sequence_classification" and labels is None:
        raise DataError(
            "the task is sequence_classification but the data has no labels",
            fix=f"add a `{cfg.preprocessing.label_column}` column or set data.preprocessing.label_column",
        )
    _quiet_length_warning(tokenizer)
    if not prepared.parts:
        out = _encode_set(prepared, cfg, tokenizer, task, labels)
    else:
        views = dict(cfg.sets())
        encoded = [(n, _encode_set(p, views[n], tokenizer, task, labels)) for n, p in prepared.parts]
        out = _concatenated(encoded, labels)
        sizes = [end - start for _, start, end in out.sources["train"]]
        weights = [d.weight for d in cfg.datasets or []]
        out.mixture = build_mixture(
            [n for n, _ in encoded], sizes, cfg.mixing, weights, cfg.mixing_temperature
        )
    if not out.examples["train"]:
        raise DataError(
            "no training examples left after tokenization (all too long or nothing to learn)",
            fix="raise data.tokenization.max_length or enable truncation",
        )
    return out


def _encode_set(
    prepared: PreparedData, cfg: DataConfig, tokenizer: object, task: str, labels: list[str] | None
) -> EncodedData:
    """One set's splits, through the tokenization cache."""
    template = None
    if task == "causal_lm" and prepared.format in CONVERSATIONAL:
        template = choose_template(cfg.preprocessing.template, tokenizer, prepared.format)
    encoder = Encoder(
        task,
        tokenizer,
        cfg.tokenization,
        cfg.preprocessing,
        template,
        {name: i for i, name in enumerate(labels)} if labels else None,
    )
    out = EncodedData(examples={}, label_names=labels, template=template.name if template else None)
    key = cache.cache_key(
        prepared.fingerprint,
        cache.tokenizer_fingerprint(tokenizer),
        out.template,
        task,
        labels,
        cfg.tokenization.model_dump(exclude={"num_proc"}),
        cfg.preprocessing.model_dump(),
    )
    hit = cache.load(key)
    if hit is not None:
        out.examples, out.stats, _ = hit
        out.from_cache = True
    else:
        workers = cfg.tokenization.num_proc or min(4, os.cpu_count() or 1)
        for name, split_rows in prepared.rows.items():
            out.examples[name], out.stats[name] = encode_parallel(split_rows, encoder, workers)
        cache.store(key, out.examples, out.stats, {})
    out.cache_key = key
    return out


def _concatenated(encoded: list[tuple[str, EncodedData]], labels: list[str] | None) -> EncodedData:
    """The sets' examples one after another per split, with where each set's slice is."""
    templates = sorted({e.template for _, e in encoded if e.template})
    out = EncodedData(examples={}, label_names=labels, template=", ".join(templates) or None)
    for split in SPLITS:
        present = [(name, e) for name, e in encoded if split in e.examples]
        if not present:
            continue
        out.examples[split], out.sources[split], stats = [], [], TokenStats()
        for name, e in present:
            start = len(out.examples[split])
            out.examples[split].extend(e.examples[split])
            out.sources[split].append((name, start, len(out.examples[split])))
            _add_stats(stats, e.stats[split])
        out.stats[split] = stats
    out.from_cache = all(e.from_cache for _, e in encoded)
    out.cache_key = "+".join(e.cache_key for _, e in encoded)
    return out


def _add_stats(total: TokenStats, part: TokenStats) -> None:
    total.rows += part.rows
    total.truncated += part.truncated
    total.dropped_too_long += part.dropped_too_long
    total.lengths += part.lengths
    total.trained_tokens += part.trained_tokens


def _quiet_length_warning(tokenizer: object) -> None:
    """Long rows are expected here (they are truncated and counted); transformers' warning would mislead."""
    flags = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(flags, dict):
        flags["sequence-length-is-longer-than-the-specified-maximum"] = True


PARALLEL_MIN_ROWS = 4000


def encode_parallel(
    rows: list[dict[str, object]], encoder: Encoder, workers: int
) -> tuple[list[dict[str, object]], TokenStats]:
    """Encode in ``workers`` processes when there are enough rows to pay for starting them."""
    if workers <= 1 or len(rows) < PARALLEL_MIN_ROWS:
        return encode_rows(rows, encoder)
    size = -(-len(rows) // (workers * 4))
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(encode_rows, chunks, [encoder] * len(chunks)))
    examples = [e for part, _ in parts for e in part]
    stats = TokenStats()
    for _, part in parts:
        _add_stats(stats, part)
    return examples, stats
