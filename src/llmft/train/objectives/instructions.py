"""What sft, classification and seq2seq share: their rows are encoded for the model's task and padded
into batches (packing, when asked, is applied to these batches by train/parts.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.data.collate import PadCollator
from llmft.train.objectives.base import pad_id

if TYPE_CHECKING:
    from llmft.config.schema import DataConfig, PreferenceConfig, TokenizationConfig
    from llmft.data.build import EncodedData, PreparedData


def encode(
    prepared: PreparedData, data: DataConfig, preference: PreferenceConfig, tokenizer: object, task: str
) -> EncodedData:
    """Every split tokenized for ``task`` (prompt, completion and labels as the data section says)."""
    from llmft.data.build import encode_splits

    return encode_splits(prepared, data, tokenizer, task)


def collate(tokenization: TokenizationConfig, tokenizer: object, task: str) -> PadCollator:
    """Right-padding to the batch's longest row (or to max_length with padding: max_length)."""
    tok = tokenization
    fixed = tok.max_length if tok.padding == "max_length" else None
    return PadCollator(
        pad_id(tokenizer), tok.pad_to_multiple_of, fixed, label_is_sequence=task != "sequence_classification"
    )
