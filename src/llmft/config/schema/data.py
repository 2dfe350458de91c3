"""The `data` section: where rows come from, their format and cleaning, tokenization, several sets mixed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from llmft.config.schema.base import Fraction, PositiveFloat, RuleError, Section


class SplitNames(Section):
    train: str = Field(
        "train", description="Split (slice syntax allowed, e.g. `train[:1000]`) used for training."
    )
    validation: str | None = Field(
        None, description="Split used for validation; when absent one is carved off the training split."
    )
    test: str | None = Field(None, description="Split used for the final test evaluation.")


class DatasetConfig(Section):
    source: Literal["auto", "files", "disk", "hub"] = Field(
        "auto",
        description="Where data comes from: local `files`, a `datasets` dir saved with `save_to_disk` "
        "(`disk`), or the Hugging Face `hub`. `auto` infers it from the keys that are set.",
    )
    train_file: str | None = Field(None, description="Training file (json, jsonl, csv, parquet or txt).")
    validation_file: str | None = Field(None, description="Validation file; optional.")
    test_file: str | None = Field(None, description="Test file; optional.")
    dir: str | None = Field(
        None, description="Directory that `train_file`/`validation_file`/`test_file` are in."
    )
    file_format: Literal["json", "jsonl", "csv", "parquet", "text"] | None = Field(
        None, description="Format of the local files; inferred from the file extension when absent."
    )
    path: str | None = Field(None, description="A dataset directory written by `datasets.save_to_disk`.")
    name: str | None = Field(None, description="Hub dataset id, e.g. `imdb` or `glue`.")
    subset: str | None = Field(None, description="Hub dataset configuration, e.g. `sst2` for `glue`.")
    split: SplitNames = Field(default_factory=SplitNames, description="Which splits to use.")
    validation_fraction: Fraction = Field(
        0.1,
        description="Fraction of the training rows held out for validation "
        "when no validation split is given.",
    )
    max_train_rows: PositiveInt | None = Field(None, description="Use at most this many training rows.")
    max_eval_rows: PositiveInt | None = Field(None, description="Use at most this many validation/test rows.")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        kinds = [k for k, v in (("files", self.train_file), ("disk", self.path), ("hub", self.name)) if v]
        if len(kinds) > 1:
            keys = {"files": "train_file", "disk": "path", "hub": "name"}
            raise RuleError(
                f"set only one data source, found {', '.join(kinds)} "
                "(train_file for local files, path for a saved dataset, name for the Hub)",
                fix=f"keep one of {', '.join(f'`{keys[k]}`' for k in kinds)} under `data.dataset:`",
            )
        if not kinds:
            raise RuleError(
                "no data source: set `train_file` (local file), `path` (saved dataset) or `name` (Hub)",
                fix="add e.g. `train_file: data/train.jsonl` under `data.dataset:`",
            )
        return self

    def resolved_source(self) -> str:
        """The source `auto` stands for, decided by which key is set."""
        if self.source != "auto":
            return self.source
        if self.train_file:
            return "files"
        return "disk" if self.path else "hub"


DataFormat = Literal[
    "auto",
    "text",
    "alpaca",
    "sharegpt",
    "messages",
    "classification",
    "preference",
    "kto",
    "seq2seq",
    "prompt",
]


class PreprocessingConfig(Section):
    format: DataFormat = Field(
        "auto",
        description="Row format. `auto` detects it from the columns: "
        "text, alpaca (instruction/input/output), "
        "sharegpt (conversations), messages (role/content), classification (text + label), "
        "preference (chosen/rejected with prompt, instruction/input, conversations or messages), "
        "kto (prompt/completion/label, or messages with label or kto_tag), seq2seq (input/target), "
        "prompt (a `prompt` string or message list, other columns kept for the rewards: grpo, rloo).",
    )
    text_column: str = Field("text", description="Column holding the text (text and classification formats).")
    label_column: str = Field("label", description="Column holding the label (classification).")
    input_column: str = Field("input", description="Source column for seq2seq rows.")
    target_column: str = Field("target", description="Target column for seq2seq rows.")
    column_mapping: dict[str, str] = Field(
        default_factory=dict, description="Rename columns before anything else: `{old_name: new_name}`."
    )
    filter_columns: list[str] | None = Field(None, description="Keep only these columns (after renaming).")
    placeholders: dict[str, str] = Field(
        default_factory=dict,
        description="Fill `{{key}}` in every text field with its value, e.g. `{name: Llamalo, author: the "
        "llmft team}` for identity data whose answers say `I am {{name}}`.",
    )
    remove_html: bool = Field(False, description="Strip HTML tags from text fields.")
    fix_unicode: bool = Field(
        False, description="Normalise text to Unicode NFKC and drop control characters."
    )
    normalize_whitespace: bool = Field(False, description="Collapse runs of whitespace to one space.")
    min_length: int | None = Field(None, ge=0, description="Drop rows whose text has fewer characters.")
    max_length: PositiveInt | None = Field(None, description="Drop rows whose text has more characters.")
    template: Literal["auto", "tokenizer", "chatml", "alpaca"] = Field(
        "auto",
        description="How instruction/chat rows become text: the tokenizer's chat template (`tokenizer`), "
        "a built-in one (`chatml`, `alpaca`), or `auto` (the tokenizer's when it has one, else chatml).",
    )
    system_prompt: str | None = Field(None, description="System message added to rows that have none.")
    train_on_inputs: bool = Field(
        False, description="Compute the loss on prompt tokens too (default: only on the responses)."
    )
    label_names: list[str] | None = Field(
        None, description="Class names in id order; inferred (sorted) from the training labels when absent."
    )
    on_bad_rows: Literal["error", "skip"] = Field(
        "error",
        description="What to do with rows that cannot be used: stop with an error, or skip and count them.",
    )


class TokenizationConfig(Section):
    tokenizer: str | None = Field(None, description="Tokenizer id or path; defaults to `model.name_or_path`.")
    max_length: PositiveInt = Field(
        512, description="Longest tokenized row; longer rows are truncated (or dropped, see `truncation`)."
    )
    truncation: bool = Field(True, description="Truncate rows longer than `max_length` (else drop them).")
    padding: Literal["longest", "max_length"] = Field(
        "longest", description="Pad each batch to its longest row (`longest`) or always to `max_length`."
    )
    pad_to_multiple_of: PositiveInt | None = Field(8, description="Round padded lengths up to this multiple.")
    add_eos: bool = Field(True, description="Append the end-of-sequence token to plain-text rows.")
    num_proc: PositiveInt | None = Field(
        None, description="Processes for tokenization; default: one per core, max 4."
    )


class NamedDataset(Section):
    """One data set of several trained together (``data.datasets``)."""

    name: str = Field(
        description="Short name: metrics of this set are `eval_<name>_loss`, ...",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
    )
    dataset: DatasetConfig = Field(description="Where this set's rows come from.")
    preprocessing: PreprocessingConfig = Field(
        default_factory=PreprocessingConfig, description="This set's row format, template and cleaning."
    )
    weight: PositiveFloat = Field(
        1.0, description="Share of this set in each epoch under `data.mixing: weighted` (relative)."
    )


class DataConfig(Section):
    dataset: DatasetConfig | None = Field(
        None, description="Where the rows come from (one data set; for several use `datasets`)."
    )
    datasets: list[NamedDataset] | None = Field(
        None,
        description="Several data sets trained together, each with its own format and template; mixed as "
        "`mixing` says and evaluated each on its own (`eval_<name>_loss`) and together (`eval_loss`).",
        min_length=1,
    )
    mixing: Literal["concat", "weighted", "temperature"] = Field(
        "concat",
        description="How `datasets` share an epoch: every row once (`concat`), rows drawn in proportion to "
        "each set's `weight` (`weighted`), or in proportion to size^(1/mixing_temperature) "
        "(`temperature`, which lifts small sets); the draw is fixed by the seed and the epoch.",
    )
    mixing_temperature: PositiveFloat = Field(
        2.0, description="Temperature of `mixing: temperature` (1 = by size; larger flattens toward equal)."
    )
    preprocessing: PreprocessingConfig = Field(
        default_factory=PreprocessingConfig, description="Row format and cleaning."
    )
    tokenization: TokenizationConfig = Field(
        default_factory=TokenizationConfig, description="Tokenizer and lengths."
    )
    packing: bool = Field(
        False,
        description="Pack rows into `max_length` sequences (causal LM) with attention kept within each row; "
        "with a preference objective, each batch's sequences (prompt + chosen, prompt + rejected) become "
        "documents of one packed row: no padding, the same log-probs.",
    )
    group_by_length: bool = Field(
        True,
        description="Batch rows of similar length together (order still shuffled) to waste less on padding.",
    )

    @model_validator(mode="after")
    def _one_kind_of_source(self) -> DataConfig:
        if (self.dataset is None) == (self.datasets is None):
            raise RuleError(
                "set either `dataset` (one data set) or `datasets` (several), "
                + ("not both" if self.dataset else "found neither"),
                fix="e.g. `dataset: {train_file: data/train.jsonl}` under `data:`"
                if self.dataset is None
                else "move `dataset` into `datasets` as `- {name: main, dataset: {...}}`",
            )
        for problem, fix in _mixture_problems(self):
            raise RuleError(problem, fix=fix)
        return self

    def sets(self) -> list[tuple[str | None, DataConfig]]:
        """Each data set as a one-set DataConfig (its own dataset and preprocessing, the shared tokenization),
        with its name; one unnamed entry for a plain `dataset`."""
        if self.datasets is None:
            return [(None, self)]
        return [
            (
                item.name,
                self.model_copy(
                    update={"dataset": item.dataset, "preprocessing": item.preprocessing, "datasets": None}
                ),
            )
            for item in self.datasets
        ]


def _mixture_problems(data: DataConfig) -> list[tuple[str, str]]:
    """Rules of `datasets`: unique names, weights only where they act, no packing of a drawn mix."""
    if data.datasets is None:
        if data.mixing != "concat":
            return [(f"mixing `{data.mixing}` needs `datasets`", "list the sets under `data.datasets`")]
        return []
    names = [d.name for d in data.datasets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return [(f"data set names must differ: {', '.join(repeated)}", "give each set its own `name`")]
    weighted = [d.name for d in data.datasets if d.weight != 1.0]
    if weighted and data.mixing != "weighted":
        return [
            (
                f"`weight` is set on {', '.join(weighted)} but mixing is `{data.mixing}`, which ignores it",
                "set `data.mixing: weighted`, or remove the weights",
            )
        ]
    if data.packing and data.mixing != "concat":
        return [
            (
                f"packing packs the rows once, but mixing `{data.mixing}` draws other rows each epoch",
                "use `data.mixing: concat` with packing, or set `data.packing: false`",
            )
        ]
    return []
