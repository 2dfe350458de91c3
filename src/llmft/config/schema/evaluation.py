"""The `evaluation` section: the metrics reported, and evaluation by generation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from llmft.config.schema.base import Section

Metric = Literal["loss", "perplexity", "accuracy", "precision", "recall", "f1", "f1_macro"]


class GenerationEvalConfig(Section):
    """Evaluation by generation: answers generated for validation/test rows, scored against the references."""

    max_new_tokens: PositiveInt = Field(64, description="Longest answer generated per row, in tokens.")
    max_rows: PositiveInt | None = Field(
        200, description="Generate for at most this many rows per split (the first ones); null: all."
    )
    when: Literal["end", "every_eval"] = Field(
        "end",
        description="`end`: on the final model only; `every_eval`: also at each evaluation during training "
        "(then the scores can drive early stopping and save_best_metric).",
    )
    do_sample: bool = Field(
        False, description="Sample (temperature 1, the run's seed) instead of greedy decoding."
    )
    batch_size: PositiveInt | None = Field(
        None, description="Prompts generated at once; defaults to training.eval_batch_size or batch_size."
    )


class EvaluationConfig(Section):
    metrics: list[Metric] | None = Field(
        None,
        description="Metrics to report; default: loss+perplexity (LM) "
        "or accuracy/precision/recall/f1 (classification).",
    )
    on_test: bool = Field(True, description="Evaluate on the test split at the end when there is one.")
    generate: GenerationEvalConfig | None = Field(
        None,
        description="Also generate answers for the validation/test rows and score them against the "
        "references (exact match, ROUGE-1/2/L, BLEU, chrF) into eval_results.json, with the samples in "
        "generations.jsonl. Needs the `eval` extra (rouge-score, sacrebleu).",
    )
