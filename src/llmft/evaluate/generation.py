"""Evaluation by generation: answers generated for validation/test rows, scored against the references.

Scores are computed locally: exact match (after trimming whitespace), ROUGE-1/2/L F-measure (``rouge-score``,
0–1), corpus BLEU and chrF (``sacrebleu``, 0–100), plus the share of answers that ended at an end-of-turn
token. Causal and seq2seq models (what the legacy framework called predict-with-generate) share this path.
``rouge-score`` and ``sacrebleu`` come with the ``eval`` extra; they are imported only when scoring.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.config.metrics import GENERATION_SCORES, missing_scoring_packages
from llmft.errors import ConfigError, EnvironmentProblem
from llmft.run_dir import RunDir

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import EvaluationConfig, GenerationEvalConfig, TrainingConfig

# Names after the `eval_`/`test_` prefix; all higher-is-better (the table is config/metrics.py's).
SCORE_NAMES: tuple[str, ...] = GENERATION_SCORES
missing_packages = missing_scoring_packages


def _require_packages() -> None:
    missing = missing_packages()
    if missing:
        raise EnvironmentProblem(
            f"evaluation.generate needs {' and '.join(missing)}, which "
            + ("is" if len(missing) == 1 else "are")
            + " not installed",
            fix="pip install 'llmft[eval]' (or remove evaluation.generate)",
        )


def scores(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Exact match, ROUGE-1/2/L, BLEU and chrF of predictions against one reference each."""
    _require_packages()
    import sacrebleu
    from rouge_score import rouge_scorer

    preds = [p.strip() for p in predictions]
    refs = [r.strip() for r in references]
    n = max(len(refs), 1)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    rouge = {k: 0.0 for k in ("rouge1", "rouge2", "rougeL")}
    for pred, ref in zip(preds, refs):
        for key, value in scorer.score(ref, pred).items():
            rouge[key] += value.fmeasure / n
    return {
        "exact_match": sum(p == r for p, r in zip(preds, refs)) / n,
        **rouge,
        "bleu": float(sacrebleu.corpus_bleu(preds, [refs]).score),
        "chrf": float(sacrebleu.corpus_chrf(preds, [refs]).score),
    }


def generation_metrics(
    model: object,
    tokenizer: object,
    rows: list[dict[str, object]],
    cfg: GenerationEvalConfig,
    prefix: str,
    *,
    seed: int = 0,
    batch_size: int = 16,
) -> tuple[dict[str, float], list[dict[str, object]]]:
    """Generate for canonical ``rows`` (the first ``cfg.max_rows``) and score against their answers.

    Returns ``{prefix}_exact_match``, ``..._rouge1/2/L``, ``..._bleu``, ``..._chrf``, ``..._stopped_at_eos``
    (share of answers ended by an end-of-turn token) and ``..._generated_rows``; and the samples.
    """
    from llmft.generate.batch import Sampling, generate_ids, prompt_ids
    from llmft.generate.prompts import from_canonical

    _require_packages()
    prompts = [p for p in (from_canonical(r) for r in rows) if p.reference is not None][: cfg.max_rows]
    if not prompts:
        return {}, []
    chat = not getattr(getattr(model, "config", None), "is_encoder_decoder", False)
    ids = [prompt_ids(p, tokenizer, chat=chat and p.messages is not None) for p in prompts]
    sampling = Sampling(
        max_new_tokens=cfg.max_new_tokens,
        temperature=1.0 if cfg.do_sample else 0.0,
        seed=seed,
        batch_size=cfg.batch_size or batch_size,
    )
    outputs = generate_ids(model, tokenizer, ids, sampling)
    references = [str(p.reference) for p in prompts]
    metrics = {f"{prefix}_{k}": v for k, v in scores([o.text for o in outputs], references).items()}
    metrics[f"{prefix}_stopped_at_eos"] = sum(o.stop_reason == "eos" for o in outputs) / len(outputs)
    metrics[f"{prefix}_generated_rows"] = float(len(outputs))
    samples = [
        {
            "split": prefix,
            "prompt": p.shown(),
            "reference": p.reference,
            "prediction": o.text,
            "new_tokens": o.new_tokens,
            "stop_reason": o.stop_reason,
        }
        for p, o in zip(prompts, outputs)
    ]
    return metrics, samples


@dataclass
class GenerationEval:
    """``evaluation.generate`` for one run: on the final model, and at every evaluation when asked."""

    cfg: GenerationEvalConfig
    tokenizer: object
    rows: dict[str, list[dict[str, object]]]
    out: Path
    seed: int = 0
    batch_size: int = 16
    on_test: bool = True

    def _run(
        self, model: object, split: str, prefix: str
    ) -> tuple[dict[str, float], list[dict[str, object]]]:
        rows = self.rows.get(split) or []
        return generation_metrics(
            model, self.tokenizer, rows, self.cfg, prefix, seed=self.seed, batch_size=self.batch_size
        )

    def during(self) -> Callable[[object], dict[str, float]] | None:
        """``when: every_eval``: what each in-training evaluation adds (scores on validation), so they can
        steer early stopping, save_best_metric and a search; None with ``when: end``."""
        if self.cfg.when != "every_eval":
            return None
        return lambda model: self._run(model, "validation", "eval")[0]

    def final(self, model: object) -> dict[str, float]:
        """Scores of the final model on validation (``eval_*``) and test (``test_*``); samples written to
        ``generations.jsonl`` in the run dir."""
        metrics: dict[str, float] = {}
        samples: list[dict[str, object]] = []
        for split, prefix in (("validation", "eval"), ("test", "test")):
            if split == "test" and not self.on_test:
                continue
            found, made = self._run(model, split, prefix)
            metrics.update(found)
            samples.extend(made)
        with RunDir(self.out).generations_file.open("w", encoding="utf-8") as handle:
            for sample in samples:
                handle.write(json.dumps(sample, ensure_ascii=False) + "\n")
        return metrics


def generation_eval(
    evaluation: EvaluationConfig,
    training: TrainingConfig,
    seed: int,
    task: str,
    tokenizer: object,
    rows: dict[str, list[dict[str, object]]],
    out: Path,
) -> GenerationEval | None:
    """The run's ``evaluation.generate``, or None when it is not configured; ``training`` gives the
    default batch size (its evaluation batch size), ``seed`` the sampling seed."""
    cfg = evaluation.generate
    if cfg is None:
        return None
    if task not in ("causal_lm", "seq2seq_lm"):
        raise ConfigError(
            f"evaluation.generate needs a model that generates text, and this run's task is {task}",
            fix="remove evaluation.generate (classification is scored by evaluation.metrics)",
        )
    _require_packages()
    if not any(
        "messages" in r or "target" in r for split in ("validation", "test") for r in rows.get(split, [])
    ):
        raise ConfigError(
            "evaluation.generate has nothing to score: there are no validation or test rows with answers "
            "(instruction, chat, preference or seq2seq rows)",
            fix="add a validation_file/test_file with answers, or remove evaluation.generate (plain text has "
            "no reference answers)",
        )
    return GenerationEval(
        cfg,
        tokenizer,
        rows,
        out,
        seed=seed,
        batch_size=training.eval_batch_size or training.batch_size,
        on_test=evaluation.on_test,
    )
