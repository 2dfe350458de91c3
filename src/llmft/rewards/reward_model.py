"""The `reward_model` built-in: scores completions with a reward model llmft trained (``training.objective:
reward``), as GRPO/RLOO need when the task has no verifier.

The run's model is a sequence-classification head with one output (a full model, or an adapter with its
head). Each prompt + completion is encoded exactly as the run's training pairs were (data/preference.py:
the run's chat template or chatml/alpaca, its system prompt, its length limits, the prompt cut from the
left first), right-padded as its batches were, and the head's output is the reward. Everything that can
be checked without loading weights (the folder is a finished reward run) is checked torch-free, so
``llmft validate`` can say so; torch, transformers and the weights are loaded on the first call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmft.errors import ExportError, ModelError
from llmft.rewards.text import completion_text, prompt_messages
from llmft.run_dir import RunDir, read_json

OBJECTIVE = "reward"
RUN_FIX = "name the output_dir of a finished run trained with `training.objective: reward`"
DEFAULT_MAX_LENGTH = 1024  # a model folder without its run's config: the limits training would not know


def run_problem(run: Path) -> str | None:
    """What makes ``run`` unusable as a reward model (torch-free), None when it is a finished reward run."""
    folder = RunDir(run)
    if not run.exists():
        return f"`{run}` does not exist"
    if not folder.finished():
        return f"`{run}` is not a finished llmft run (it needs model/ and run.json)"
    record = read_json(folder.record_file) or {}
    if record.get("objective") != OBJECTIVE:
        return f"`{run}` was trained with objective `{record.get('objective')}`, not `{OBJECTIVE}`"
    return None


@dataclass
class Scorer:
    """A loaded reward model: the model, its tokenizer and how the run encoded a prompt and an answer."""

    model: object
    tokenizer: object
    encoder: object  # data.preference.PromptEncoder
    limits: object  # data.preference.PairLimits
    system: str | None


@dataclass
class RewardModel:
    """The score of a reward model trained by llmft (a `training.objective: reward` run directory)."""

    run: str = field(
        metadata={"doc": "the reward run's output_dir (relative to the config file)", "path": True}
    )
    batch_size: int = field(default=16, metadata={"doc": "completions scored per forward pass"})
    device: str | None = field(default=None, metadata={"doc": "where it runs; default: CUDA when present"})
    _scorer: Scorer | None = field(default=None, init=False, repr=False, compare=False)

    def problems(self) -> list[tuple[str, str, str | None]]:
        issues: list[tuple[str, str, str | None]] = []
        if self.batch_size < 1:
            issues.append(("batch_size", f"`batch_size` must be >= 1, got {self.batch_size}", None))
        problem = run_problem(Path(self.run))
        return issues + ([("run", problem, RUN_FIX)] if problem else [])

    def __call__(self, prompts: list[object], completions: list[object], **kwargs: object) -> list[float]:
        scorer = self._scorer or self._load()
        ids = [encode(scorer, p, c) for p, c in zip(prompts, completions, strict=True)]
        return [
            s
            for start in range(0, len(ids), self.batch_size)
            for s in self._forward(ids[start : start + self.batch_size])
        ]

    def _forward(self, rows: list[list[int]]) -> list[float]:
        """One right-padded batch through the head (the padder the run's training batches used)."""
        import torch

        from llmft.data.pair_collate import SequencePadder
        from llmft.train.objectives.base import pad_id

        scorer = self._scorer
        batch = SequencePadder(pad_id(scorer.tokenizer), None)(rows, [[] for _ in rows])  # type: ignore[union-attr]
        device = next(scorer.model.parameters()).device  # type: ignore[union-attr]
        with torch.inference_mode():
            out = scorer.model(  # type: ignore[union-attr,operator]
                input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
            )
        return out.logits[:, 0].float().tolist()

    def _load(self) -> Scorer:
        self._scorer = load_scorer(Path(self.run), self.device)
        return self._scorer


def encode(scorer: Scorer, prompt: object, completion: object) -> list[int]:
    """Prompt + completion ids as the run's training encoded a pair's chosen row, cut to its limits."""
    from llmft.data.preference import fit
    from llmft.data.rows import with_system

    turns = with_system(prompt_messages(prompt), scorer.system)
    messages = [*turns, {"role": "assistant", "content": completion_text(completion)}]
    prompt_ids, answer_ids = scorer.encoder.split(messages)  # type: ignore[attr-defined]
    prompt_ids, (answer_ids,), _ = fit(prompt_ids, [answer_ids], scorer.limits)  # type: ignore[arg-type]
    return prompt_ids + answer_ids


def load_scorer(run: Path, device: str | None) -> Scorer:
    """The run's model (an adapter merged into its base) on ``device``, in eval mode, with its encoder."""
    import torch

    from llmft.data.preference import PairLimits, PromptEncoder
    from llmft.data.templates import choose_template
    from llmft.export.load import load_merged, load_tokenizer
    from llmft.export.source import resolve_source

    problem = run_problem(run)
    if problem:
        raise ModelError(problem, fix=RUN_FIX)
    try:
        source = resolve_source(run)
        model, tokenizer = load_merged(source, dtype="auto"), load_tokenizer(source)
    except ExportError as err:
        raise ModelError(err.message, fix=err.fix, where=str(run)) from None
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    config = RunDir(run).config()
    data = _section(config, "data")
    record = RunDir(run).record()
    template = choose_template(
        str(_section(data, "preprocessing").get("template") or "auto"),
        tokenizer,
        str(record.get("data_format") or "preference"),
    )
    system = _section(data, "preprocessing").get("system_prompt")
    return Scorer(
        model, tokenizer, PromptEncoder.build(tokenizer, template), _limits(config, PairLimits), system
    )


def _section(config: dict[str, object], name: str) -> dict[str, object]:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def _limits(config: dict[str, object], limits: type) -> object:
    """The run's pair limits (train/objectives/pairs.py's rule), always truncating: a reward needs a score."""
    preference = _section(_section(config, "training"), "preference")
    tokenization = _section(_section(config, "data"), "tokenization")
    longest = int(preference.get("max_length") or tokenization.get("max_length") or DEFAULT_MAX_LENGTH)  # type: ignore[call-overload]
    prompt = int(preference.get("max_prompt_length") or longest // 2)  # type: ignore[call-overload]
    return limits(longest, prompt, True)
