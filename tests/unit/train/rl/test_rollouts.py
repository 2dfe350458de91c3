"""The rollout source on a tiny llama with a LoRA adapter: prompts rendered where SFT would train the
answer, windows that are a function of the source's state (a state_dict round trip gives the same
completions), one generation batch serving num_iterations steps, and loss units that give each loss_type
its per-step meaning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmft.config.schema import TrainingConfig
from llmft.config.schema.rl import REWARD_PATH_ARGS
from llmft.data.collate import PadCollator
from llmft.data.templates import choose_template
from llmft.generate.batch import Sampling
from llmft.rewards import BUILTINS, RewardSpec, build_rewards
from llmft.rewards.args import arg_fields
from llmft.train.batches import FixedBatches
from llmft.train.objectives.online import UNITS, OnlineRun, _grpo
from llmft.train.rl.forward import no_grad_logps, reference_logps
from llmft.train.rl.generator import LocalGenerator
from llmft.train.rl.metrics import RolloutStats, Samples
from llmft.train.rl.policy_loss import PolicySettings
from llmft.train.rl.prompts import prompt_ids
from llmft.train.rl.rollouts import RolloutSettings, RolloutSource, Scoring

G = 4  # completions per prompt


@pytest.fixture(scope="module")
def policy(tiny_model) -> tuple[torch.nn.Module, object]:  # noqa: ANN001
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model("llama")
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(path)
    model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    return model, AutoTokenizer.from_pretrained(path)


def _source(policy: tuple[torch.nn.Module, object], iterations: int = 1, beta: float = 0.0) -> RolloutSource:
    model, tokenizer = policy
    template = choose_template("chatml", tokenizer, "prompt")
    examples = [
        {"input_ids": prompt_ids([{"role": "user", "content": f"say {i}"}], tokenizer, template),
         "prompt": f"say {i}", "columns": {"answer": str(i)}}
        for i in range(8)
    ]  # fmt: skip
    cfg = TrainingConfig(max_steps=4, batch_size=2, gradient_accumulation_steps=2)
    fixed = FixedBatches(examples, PadCollator(0), cfg, seed=3, group_by_length=False)
    rewards = build_rewards([RewardSpec("length", args={"target": 3})], ".")
    pad = int(tokenizer.pad_token_id or 0)
    scoring = Scoring(
        rewards,
        tokenizer,
        model,
        pad,
        old_logps=no_grad_logps(1.0) if iterations > 1 else None,
        reference=reference_logps(model, 1.0) if beta > 0 else None,
    )
    generator = LocalGenerator(model, tokenizer, Sampling(max_new_tokens=5, temperature=1.0))
    return RolloutSource(fixed, generator, scoring, RolloutSettings("grpo", G, iterations, beta=beta, seed=7))


@pytest.mark.slow  # generates with a tiny model: seconds on a shared CPU
def test_a_prompt_is_the_chat_rendering_up_to_the_opened_assistant_turn(policy) -> None:  # noqa: ANN001
    _, tokenizer = policy
    template = choose_template("chatml", tokenizer, "prompt")
    ids = prompt_ids([{"role": "user", "content": "hello"}], tokenizer, template)
    assert tokenizer.decode(ids).endswith("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.slow  # generates with a tiny model: seconds on a shared CPU
def test_a_window_is_prompts_times_generations_scored_in_groups(policy) -> None:  # noqa: ANN001
    source = _source(policy)
    window = source.window(0, 0)
    assert window.size == 2 and len(window.mine) == 2  # two micro-batches of 2 prompts × G completions
    for batch in window.mine:
        assert batch["input_ids"].shape[0] == 2 * G
        assert batch["completion_mask"].shape == (2 * G, batch["input_ids"].shape[1] - _prompt_width(batch))
        groups = batch["advantages"].view(2, G)
        assert torch.allclose(groups.sum(1), torch.zeros(2), atol=1e-5)  # centred per prompt
    report = source.stats.report()
    assert {"reward", "reward_std", "rewards/length/mean", "completions/mean_length"} <= report.keys()
    assert report["completions/max_length"] <= 5


def _prompt_width(batch: dict[str, torch.Tensor]) -> int:
    return int(batch["input_ids"].shape[1] - batch["completion_mask"].shape[1])


@pytest.mark.slow  # generates with a tiny model: seconds on a shared CPU
def test_a_state_dict_round_trip_gives_the_same_completions(policy) -> None:  # noqa: ANN001
    first = _source(policy)
    first.window(0, 0)
    state = first.state_dict()
    expected = first.window(0, 1).mine
    again = _source(policy)
    again.load_state_dict(state)
    got = again.window(0, 1).mine
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert torch.equal(mine["input_ids"], theirs["input_ids"])
        assert torch.equal(mine["advantages"], theirs["advantages"])
    fresh = _source(policy).window(0, 1).mine  # without the state: another stream, other completions
    assert not all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(fresh, expected, strict=False))


@pytest.mark.slow  # generates with a tiny model: seconds on a shared CPU
def test_one_generation_serves_num_iterations_steps_and_travels_in_the_state(policy) -> None:  # noqa: ANN001
    source = _source(policy, iterations=2, beta=0.1)
    assert source.total_steps() == 4 and source.window_count(0) == 2 * 2
    first = source.window(0, 0).mine
    assert all({"old_logps", "ref_logps"} <= batch.keys() for batch in first)
    state = source.state_dict()
    again = _source(policy, iterations=2, beta=0.1)
    again.load_state_dict(state)
    second = again.window(0, 1).mine  # the same generation batch, not a new one
    assert again.state_dict()["generations"] == 1
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, second, strict=True))
    # the adapter's reference is the base: with LoRA weights that are not zero the two log-probs differ
    assert not torch.equal(first[0]["old_logps"], first[0]["ref_logps"])


class _FixedLogits(torch.nn.Module):
    """A 'model' whose logits are a parameter: the loss over it is plain arithmetic on known values."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(logits)

    def forward(self, **kwargs: torch.Tensor) -> object:
        return type("Out", (), {"logits": self.logits})()


@pytest.mark.numeric
@pytest.mark.parametrize("loss_type", ["dapo", "grpo", "dr_grpo", "bnpo"])
def test_loss_units_give_each_loss_type_its_meaning_per_optimizer_step(loss_type: str) -> None:
    """With one update per generation the ratio is 1, so each token's loss is -advantage; the loop's
    sum(loss sums) / sum(units) over a window of two micro-batches must then be the loss_type's mean."""
    gen = torch.Generator().manual_seed(0)
    masks = [
        torch.tensor([[1.0, 1, 1, 0], [1, 0, 0, 0]]),
        torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]]),
    ]
    advantages = [torch.randn(m.shape[0], generator=gen) for m in masks]
    run = OnlineRun(
        "grpo",
        {},
        PolicySettings(loss_type=loss_type, max_completion_length=4),
        RolloutStats(),
        Samples(None),
    )
    loss = _grpo(run, temperature=1.0)
    total, units = 0.0, 0
    for mask, adv in zip(masks, advantages, strict=True):
        rows, width = mask.shape
        batch = {
            "input_ids": torch.randint(0, 7, (rows, width + 2), generator=gen),
            "completion_mask": mask,
            "advantages": adv,
            "attention_mask": torch.ones(rows, width + 2),
            "position_ids": torch.zeros(1),
        }
        value, count = loss(_FixedLogits(torch.randn(rows, width + 2, 7, generator=gen)), batch)
        assert count == UNITS[loss_type](batch)
        total, units = total + float(value.detach()), units + count
    per_row = [(-a[:, None] * m).sum(1) for a, m in zip(advantages, masks, strict=True)]
    token_sum = sum(float(r.sum()) for r in per_row)
    expected = {
        "dapo": token_sum / sum(float(m.sum()) for m in masks),
        "grpo": float(torch.cat([r / m.sum(1) for r, m in zip(per_row, masks, strict=True)]).mean()),
        "dr_grpo": token_sum / (sum(m.shape[0] for m in masks) * 4),
        "bnpo": sum(float(r.sum() / m.sum()) for r, m in zip(per_row, masks, strict=True)) / len(masks),
    }[loss_type]
    assert total / units == pytest.approx(expected, rel=1e-6)  # float32 sums of ≤ 12 terms: ~10 ulps


def test_the_config_knows_which_builtin_arguments_are_paths() -> None:
    """config/ may not import the rewards, so it keeps its own table; it must match the built-ins'."""
    marked = {name: tuple(f.name for f in arg_fields(name) if f.metadata.get("path")) for name in BUILTINS}
    assert REWARD_PATH_ARGS == {name: paths for name, paths in marked.items() if paths}


def test_config_makes_reward_files_and_paths_absolute(tmp_path: Path) -> None:
    from llmft.config.load import load_config

    (tmp_path / "c.yaml").write_text(
        "model: {name_or_path: m}\ndata: {dataset: {train_file: t.jsonl}}\ntraining:\n  objective: grpo\n"
        "  rl:\n    rewards:\n      - {function: r/my.py:f}\n      - {function: pkg.mod:g}\n"
        "      - {function: reward_model, args: {run: ../rm}}\n",
        encoding="utf-8",
    )
    rewards = load_config(tmp_path / "c.yaml").training.rl.rewards  # type: ignore[union-attr]
    assert rewards[0].function == f"{tmp_path / 'r' / 'my.py'}:f"
    assert rewards[1].function == "pkg.mod:g"
    assert rewards[2].args["run"] == str(tmp_path.parent / "rm")


def test_prompt_only_rows_are_detected_and_keep_their_columns() -> None:
    from llmft.config.schema import PreprocessingConfig
    from llmft.data.formats import format_rows
    from llmft.data.rows import detect_format

    cfg = PreprocessingConfig()
    assert detect_format(["prompt", "answer"], cfg) == "prompt"
    assert detect_format(["prompt", "completion", "label"], cfg) == "kto"
    rows = [
        {"prompt": "2+2?", "answer": "4"},
        {"prompt": [{"role": "user", "content": "hi"}], "tests": ["x"]},
        {"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
    ]
    kept, report = format_rows(rows, "prompt", cfg.model_copy(update={"on_bad_rows": "skip"}), "train")
    assert kept == rows[:2]
    assert report.bad_rows == [
        (3, "prompt conversation ends with an assistant turn (the answer is what is sampled)")
    ]


@pytest.mark.slow  # generates with a tiny model: seconds on a shared CPU
def test_a_reward_that_returns_too_few_values_stops_the_run_naming_it(policy, tmp_path: Path) -> None:  # noqa: ANN001
    from llmft.errors import TrainingError

    (tmp_path / "bad.py").write_text(
        "def short(completions, **kwargs):\n    return [1.0]\n", encoding="utf-8"
    )
    source = _source(policy)
    source.scoring.rewards = build_rewards([RewardSpec(f"{tmp_path / 'bad.py'}:short")], tmp_path)
    with pytest.raises(
        TrainingError, match=r"reward `short` .* returned 1 rewards for 16 completions"
    ) as err:
        source.window(0, 0)
    assert "say " in str(err.value)  # the prompt it failed on
    assert err.value.where == "training.rl.rewards[0]"


@pytest.mark.slow  # generates with a tiny model
@pytest.mark.numeric
def test_the_training_forward_scores_completions_as_generation_sampled_them(policy) -> None:  # noqa: ANN001
    """Left-padded prompts of different lengths: the loss's log-probs must be those of the distributions
    the tokens were drawn from (positions counted over real tokens, as generate counts them)."""
    from llmft.generate.batch import _pad, generation_config
    from llmft.train.rl.collate import rollout_batch
    from llmft.train.rl.forward import token_logps

    model, tokenizer = policy
    prompts = [tokenizer("say one two three four five")["input_ids"], tokenizer("hi")["input_ids"]]
    config = generation_config(model, tokenizer, Sampling(max_new_tokens=6, temperature=1.0))
    config.min_new_tokens = 6  # no stop inside: every generated position is a completion token
    pad = int(tokenizer.pad_token_id or 0)
    ids, mask = _pad(prompts, pad, left=True)
    model.eval()
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            generation_config=config,
            output_logits=True,
            return_dict_in_generate=True,
        )
        new = out.sequences[:, ids.shape[1] :]
        sampled = torch.stack([torch.log_softmax(x.float(), -1) for x in out.logits], 1)
        expected = sampled.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        got, _ = token_logps(model, rollout_batch(prompts, new.tolist(), pad), 1.0)
    # float32 log-softmax over ~1000 logits computed through another attention path (cache vs full):
    # ~1e-6 measured; 1e-5 leaves ~80 ulps of a value near 1 (tests/tolerances.py's LOSS_REL reasoning)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
