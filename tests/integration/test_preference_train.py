"""Preference training end to end on a tiny model and the learnable synthetic pairs (`llmft synth data
--task preference` / `--task kto`): DPO, SimPO, ORPO and KTO separate held-out chosen from rejected answers,
a reward model ranks them, every data layout trains, and the search runs over preference.beta."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from tests.matrix import THREADS

from llmft.config.load import load_config
from llmft.data.pair_collate import PairCollator
from llmft.hpo.search import run_search
from llmft.pipeline import run
from llmft.train.preference.logps import sequence_logps


def _config(
    tmp_path: Path, model: Path, files: dict[str, Path], training: dict, adapter: str = "none"
) -> Path:
    config = {
        "output_dir": str(tmp_path / "run"),
        "data": {
            "dataset": {"train_file": str(files["train"]), "validation_file": str(files["validation"])},
            "tokenization": {"max_length": 64},
        },
        "model": {"name_or_path": str(model), "adapter": {"type": adapter}},
        "training": {
            "num_threads": THREADS,
            "batch_size": 16,
            "learning_rate": 1e-3,
            "epochs": 3,
            "logging_steps": 5,
            "eval_steps": 20,
            "save_strategy": "no",
            **training,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _train(path: Path, overrides: list[str] | None = None):  # noqa: ANN202
    lines: list[str] = []
    return run(load_config(path, overrides or []), say=lines.append, progress=False), lines


def _evals(run_dir: Path) -> list[dict[str, float]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "eval_loss" in r]


def _base_preference_accuracy(model_dir: Path, encoded_examples: list[dict[str, object]]) -> float:
    """How often the untrained model itself gives the chosen answer the higher log-prob."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logps = sequence_logps(model, PairCollator(0)(encoded_examples)).sums
    chosen, rejected = logps.chunk(2)
    return float((chosen > rejected).float().mean())


def test_dpo_takes_held_out_preference_accuracy_from_chance_to_090_with_a_growing_margin(
    tiny_model, synth_data, tmp_path: Path
) -> None:
    model, files = tiny_model("llama"), synth_data("preference", rows=400)
    path = _config(tmp_path, model, files, {"preference": {"beta": 0.5}})
    result, lines = _train(path)
    assert any("objective: dpo (preference pairs and no training.objective)" in line for line in lines)
    assert any("reference: a frozen copy of the model" in line for line in lines)

    held_out = _held_out_pairs(path, result.tokenizer)
    assert 0.25 <= _base_preference_accuracy(model, held_out) <= 0.75, "the untrained model is near chance"
    evals = _evals(tmp_path / "run")
    assert result.metrics["eval_rewards/accuracies"] >= 0.9
    margins = [e["eval_rewards/margins"] for e in evals]
    assert len(margins) >= 3 and margins[-1] > margins[0] > 0, margins
    train_logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"rewards/chosen", "rewards/accuracies", "logps/rejected"} <= set(train_logs[0])


def _held_out_pairs(
    path: Path, tokenizer: object, overrides: list[str] | None = None
) -> list[dict[str, object]]:
    from llmft.data.build import prepare_rows
    from llmft.train.objectives.choose import encode_for_objective

    config = load_config(path, overrides or [])
    prepared = prepare_rows(config.data, config.seed)
    preference = config.training.preference
    encoded = encode_for_objective("dpo", prepared, config.data, preference, tokenizer, "causal_lm")
    return encoded.examples["validation"]


def _implied_pair_accuracy(policy: torch.nn.Module, base_dir: Path, pairs: list[dict[str, object]]) -> float:
    """DPO's implied reward accuracy of a trained model: chosen log-ratio above the rejected one."""
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    batch = PairCollator(0)(pairs)
    with torch.no_grad():
        ratios = sequence_logps(policy.eval(), batch).sums - sequence_logps(base, batch).sums
    chosen, rejected = ratios.chunk(2)
    return float((chosen > rejected).float().mean())


@pytest.mark.parametrize(
    ("objective", "settings", "metric", "goal"),
    [
        ("simpo", {}, "eval_rewards/accuracies", 0.8),
        ("orpo", {"beta": 0.5}, "eval_rewards/accuracies", 0.8),
        ("reward", {}, "eval_accuracy", 0.9),
    ],
)
def test_simpo_orpo_and_reward_models_learn_the_rule(
    tiny_model, synth_data, tmp_path: Path, objective: str, settings: dict, metric: str, goal: float
) -> None:
    files = synth_data("preference", rows=400)
    path = _config(tmp_path, tiny_model("llama"), files, {"objective": objective, "preference": settings})
    result, _ = _train(path)
    assert result.metrics[metric] >= goal, result.metrics
    assert json.loads((tmp_path / "run" / "run.json").read_text())["objective"] == objective


def test_kto_on_judged_rows_learns_to_prefer_held_out_chosen_answers(
    tiny_model, synth_data, tmp_path: Path
) -> None:
    model = tiny_model("llama")
    path = _config(tmp_path, model, synth_data("kto", rows=640), {"preference": {"beta": 0.5}})
    result, lines = _train(path)
    assert any("objective: kto (unpaired judged rows" in line for line in lines)
    assert "eval_kl" in result.metrics and "eval_rewards/margins" in result.metrics
    pairs = synth_data("preference", rows=400)
    files = [
        f"data.dataset.train_file={pairs['train']}",
        f"data.dataset.validation_file={pairs['validation']}",
    ]
    held_out = _held_out_pairs(path, result.tokenizer, files)
    assert _implied_pair_accuracy(result.model, model, held_out) >= 0.8


ROWS = [
    ("Sky colour?", "Blue.", "Green."),
    ("Grass colour?", "Green.", "Red."),
    ("Snow colour?", "White.", "Black."),
]


def _layout(name: str, prompt: str, good: str, bad: str, index: int) -> dict[str, object]:
    user, answer = {"role": "user", "content": prompt}, {"role": "assistant", "content": good}
    return {
        "strings": {"prompt": prompt, "chosen": good, "rejected": bad},
        "messages": {
            "prompt": [user],
            "chosen": [answer],
            "rejected": [{"role": "assistant", "content": bad}],
        },
        "alpaca": {"instruction": prompt, "input": "", "chosen": good, "rejected": bad},
        "sharegpt": {
            "conversations": [{"from": "human", "value": prompt}],
            "chosen": {"from": "gpt", "value": good},
            "rejected": {"from": "gpt", "value": bad},
        },
        "kto": {"prompt": prompt, "completion": good if index % 2 else bad, "label": bool(index % 2)},
        "kto_messages": {
            "messages": [user, {"role": "assistant", "content": good if index % 2 else bad}],
            "kto_tag": bool(index % 2),
        },
    }[name]


@pytest.mark.parametrize("layout", ["strings", "messages", "alpaca", "sharegpt", "kto", "kto_messages"])
def test_every_layout_trains_from_a_file_written_in_it(tiny_model, tmp_path: Path, layout: str) -> None:
    rows = [_layout(layout, *row, index=i) for i, row in enumerate(ROWS * 4)]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = _config(
        tmp_path,
        tiny_model("llama"),
        {"train": train, "validation": train},
        {"max_steps": 2, "epochs": None, "logging_steps": 1},
        "lora",
    )
    result, lines = _train(path, ["training.batch_size=4"])
    expected = "kto" if layout.startswith("kto") else "dpo"
    assert json.loads((tmp_path / "run" / "run.json").read_text())["objective"] == expected
    assert any("reference: the base model (adapter disabled" in line for line in lines)
    assert len(result.train_losses) == 2 and all(loss == loss for _, loss in result.train_losses)


def test_search_over_beta_ranks_trials_by_eval_reward_accuracy(
    tiny_model, synth_data, tmp_path: Path
) -> None:
    files = synth_data("preference", rows=200)
    path = _config(
        tmp_path, tiny_model("llama"), files, {"epochs": 1, "eval_steps": None, "eval_strategy": "epoch"}
    )
    overrides = [
        "hpo.enabled=true",
        "hpo.metric=eval_rewards/accuracies",
        "hpo.direction=maximize",
        "hpo.parameters={training.preference.beta: [0.05, 0.5]}",
    ]
    result = run_search(load_config(path, overrides), say=lambda _: None, progress=False)
    assert [t.state for t in result.trials] == ["complete", "complete"]
    assert sorted(t.params["training.preference.beta"] for t in result.trials) == [0.05, 0.5]
    values = [t.value for t in result.trials]
    assert all(v is not None and 0 <= v <= 1 for v in values)
    assert result.best is not None and result.best.value == max(values)


def test_preview_shows_each_pair_with_its_scored_completions(tiny_model, synth_data, tmp_path: Path) -> None:
    from llmft.preview import build_preview

    path = _config(tmp_path, tiny_model("llama"), synth_data("preference", rows=40), {})
    result = build_preview(load_config(path), rows=2)
    assert result.objective == "dpo" and result.titles == ["chosen", "rejected", "chosen", "rejected"]
    rows = [json.loads(line) for line in synth_data("preference", rows=40)["train"].read_text().splitlines()]
    for (segments, _), title in zip(result.examples[:2], ("chosen", "rejected"), strict=True):
        scored = "".join(text for text, on in segments if on)
        assert scored == rows[0][title] + "<|im_end|>", "only the completion and its end marker are scored"
        assert rows[0]["prompt"] in "".join(text for text, on in segments if not on)


@pytest.mark.parametrize("reference", ["copy", "other model"])
def test_full_fine_tune_reference_starts_equal_to_the_policy(
    tiny_model, synth_data, tmp_path: Path, reference: str
) -> None:
    """Without an adapter the reference is a frozen copy, or the model `reference_model` names (here the same
    weights): either way the first step's DPO loss is exactly log 2, the policy not having moved yet."""
    import math

    model = tiny_model("llama")
    settings = {"reference_model": str(model)} if reference == "other model" else {}
    training = {"max_steps": 2, "epochs": None, "logging_steps": 1, "preference": settings}
    path = _config(tmp_path, model, synth_data("preference", rows=40), training)
    result, lines = _train(
        path, ["training.eval_strategy=no", "training.eval_steps=null", "training.batch_size=4"]
    )
    note = f"reference: {model} (frozen)" if settings else "reference: a frozen copy of the model"
    assert any(note in line for line in lines), lines
    assert result.train_losses[0][1] == pytest.approx(math.log(2), abs=1e-5)


@pytest.mark.numeric
@pytest.mark.parametrize(("objective", "data"), [("dpo", "preference"), ("kto", "kto")])
def test_packed_preference_batches_train_the_steps_of_padded_ones(
    tiny_model, synth_data, tmp_path: Path, objective: str, data: str
) -> None:
    """data.packing with a LoRA adapter (the reference: the adapter disabled, over the same packed rows):
    SGD steps on packed batches give the padded run's losses (SGD carries a rounding difference in the
    gradient unamplified, tests/tolerances.py), and the run says how it packed."""
    from tests.tolerances import LOSS_REL

    files = synth_data(data, rows=96)
    training = {"objective": objective, "optimizer": "sgd", "learning_rate": 0.05, "epochs": 1}
    losses = {}
    for packing in (False, True):
        out = tmp_path / f"packing-{packing}"
        out.mkdir()
        path = _config(out, tiny_model("llama"), files, training, adapter="lora")
        _, lines = _train(path, [f"data.packing={str(packing).lower()}", "training.logging_steps=1"])
        records = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
        losses[packing] = [r["loss"] for r in records if "loss" in r]
        packed_note = [line for line in lines if line.startswith("packing:")]
        how = "one row per batch, attention per document (causal SDPA)"
        assert packed_note == ([f"packing: each batch's sequences as documents, {how}"] if packing else [])
    assert len(losses[True]) == len(losses[False]) >= 5
    torch.testing.assert_close(torch.tensor(losses[True]), torch.tensor(losses[False]), rtol=LOSS_REL, atol=0)
