"""Several processes, the parts that need no second process: where a process is, which batches it trains
on, what a resume on another number of processes may change, how torchrun is called and its failures
read, the DeepSpeed config translation and what the sharded strategies refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from pydantic import ValidationError

from llmft.config.distributed import check_distributed, deepspeed_config, read_deepspeed
from llmft.config.load import validate_dict
from llmft.config.schema import DistributedConfig, FsdpConfig, TrainingConfig
from llmft.errors import CheckpointError, ConfigError, EnvironmentProblem
from llmft.train.batches import FixedBatches, steps_per_epoch
from llmft.train.distributed.group import Distribution, Place, backend_for, detect, threads_per_process
from llmft.train.distributed.launch import LaunchSpec, check_spec, failure_error, torchrun_args
from llmft.train.distributed.multiprocess import resume_world_changes
from llmft.train.distributed.strategies import check_strategy


# ----------------------------------------------------------------------------------- where am I
def test_detect_reads_torchrun_and_accelerate_variables() -> None:
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert detect(env) == Place(3, 4, 1, 2, "torchrun")


def test_detect_reads_slurm_variables() -> None:
    env = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NTASKS_PER_NODE": "4(x2)"}
    assert detect(env) == Place(5, 8, 1, 4, "slurm")


def test_no_launcher_is_one_process() -> None:
    assert detect({}) == Place()
    assert detect({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) == Place()  # `srun llmft` with one task


def test_a_broken_launcher_variable_is_named() -> None:
    with pytest.raises(EnvironmentProblem, match="WORLD_SIZE='two' is not a number"):
        detect({"RANK": "0", "WORLD_SIZE": "two"})


def test_threads_are_the_cores_divided_among_local_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    assert threads_per_process(None, 4) == 4
    assert threads_per_process(None, 32) == 1
    assert threads_per_process(3, 4) == 3  # training.num_threads wins


def test_nccl_without_a_gpu_is_refused() -> None:
    assert backend_for("auto", cuda=False) == "gloo"
    assert backend_for("auto", cuda=True) == "nccl"
    with pytest.raises(EnvironmentProblem, match="nccl needs GPUs"):
        backend_for("nccl", cuda=False)


# ------------------------------------------------------------------------------ which batches
def _batches(accumulation: int, world: int, group_by_length: bool) -> FixedBatches:
    lengths = [5 + (i * 7) % 23 for i in range(37)]
    return FixedBatches(
        examples=[{"input_ids": [0] * n} for n in lengths],
        collate=lambda rows: {},  # type: ignore[arg-type,return-value]
        cfg=TrainingConfig(batch_size=3, gradient_accumulation_steps=accumulation),
        seed=7,
        group_by_length=group_by_length,
        dist=Distribution(world_size=world),
    )


@pytest.mark.parametrize("group_by_length", [False, True])
def test_a_step_has_the_same_batches_on_2_processes_as_on_1_with_twice_the_accumulation(
    group_by_length: bool,
) -> None:
    for epoch in range(3):
        one = _batches(2, 1, group_by_length).windows(epoch)
        two = _batches(1, 2, group_by_length).windows(epoch)
        assert one == two
    assert steps_per_epoch(37, TrainingConfig(batch_size=3, gradient_accumulation_steps=2), 1) == 7
    assert steps_per_epoch(37, TrainingConfig(batch_size=3, gradient_accumulation_steps=1), 2) == 7


def test_each_rank_takes_every_other_batch_of_a_window_and_together_all() -> None:
    window = [[0, 1], [2, 3], [4, 5], [6, 7], [8]]
    ranks = [Distribution(rank=r, world_size=2) for r in range(2)]
    assert ranks[0].share(window) == [[0, 1], [4, 5], [8]]
    assert ranks[1].share(window) == [[2, 3], [6, 7]]
    assert Distribution().share(window) == window
    last = [[9]]  # a part-full last window: rank 1 has nothing to train on, and only adds zeros
    assert ranks[1].share(last) == []


def test_one_process_needs_no_process_group() -> None:
    import torch

    one = Distribution()
    assert not one.active and one.is_main
    assert one.sum_counts(3, 4) == [3, 4]
    assert one.max_value(1.5) == 1.5
    loss = torch.tensor(2.0)
    assert one.reduce_step(torch.nn.Linear(2, 2), loss) is loss


def test_a_rank_after_the_first_says_only_its_warnings() -> None:
    said: list[str] = []
    Distribution(rank=0, world_size=2).say(said.append)("data: 48 rows")
    rank_one = Distribution(rank=1, world_size=2).say(said.append)
    rank_one("data: 48 rows")  # rank 0's line again: not repeated
    rank_one("warning: tracking failed")  # its own
    assert said == ["data: 48 rows", "[rank 1] warning: tracking failed"]


# ------------------------------------------------------------------- resume on another world size
def _checkpoint(folder: Path, world: int, batch: int, accumulation: int) -> Path:
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({"step": 3, "world_size": world}))
    training = {"batch_size": batch, "gradient_accumulation_steps": accumulation}
    (folder / "config.yaml").write_text(yaml.safe_dump({"training": training}))
    return folder


def test_resume_on_one_process_may_double_the_accumulation(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path / "step-3", world=2, batch=4, accumulation=1)
    said: list[str] = []
    training = TrainingConfig(batch_size=4, gradient_accumulation_steps=2)
    assert resume_world_changes(folder, training, 1, said.append) == ("training.gradient_accumulation_steps",)
    assert said == [
        "resume: 2 → 1 processes, gradient_accumulation_steps 1 → 2: the same global batch of 8 rows, "
        "so the same steps"
    ]
    assert resume_world_changes(folder, TrainingConfig(batch_size=4), 2, said.append) == ()


def test_resume_that_would_change_the_global_batch_says_what_keeps_it(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path / "step-3", world=2, batch=4, accumulation=1)
    with pytest.raises(CheckpointError) as err:
        resume_world_changes(folder, TrainingConfig(batch_size=4, gradient_accumulation_steps=1), 1, print)
    assert "written by 2 process(es) with batch_size 4" in err.value.message
    assert err.value.fix == "set training.gradient_accumulation_steps=2 (and keep batch_size)"
    with pytest.raises(CheckpointError) as err:
        resume_world_changes(folder, TrainingConfig(batch_size=4), 4, print)
    assert "divides 2" in str(err.value.fix)


def test_a_checkpoint_from_before_world_sizes_counts_as_one_process(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({"step": 3}))
    (folder / "config.yaml").write_text(yaml.safe_dump({"training": {"batch_size": 2}}))
    assert resume_world_changes(folder, TrainingConfig(batch_size=2), 1, print) == ()


# -------------------------------------------------------------------------------------- launch
def test_torchrun_parses_the_launch_command() -> None:
    from torch.distributed.run import get_args_parser

    args = get_args_parser().parse_args(torchrun_args(LaunchSpec(2), ["train", "c.yaml", "--quiet"]))
    assert (args.nproc_per_node, args.standalone, args.module) == ("2", True, True)
    assert (args.training_script, args.training_script_args) == ("llmft", ["train", "c.yaml", "--quiet"])
    two = LaunchSpec(4, nnodes=2, node_rank=1, rdzv_endpoint="head:29400", run_id="r")
    args = get_args_parser().parse_args(torchrun_args(two, ["train", "c.yaml"]))
    assert (args.nnodes, args.node_rank, args.rdzv_backend, args.rdzv_endpoint) == (
        "2",
        1,
        "c10d",
        "head:29400",
    )
    static = LaunchSpec(2, nnodes=2, node_rank=0, master_addr="10.0.0.1", master_port=1234)
    args = get_args_parser().parse_args(torchrun_args(static, ["train", "c.yaml"]))
    assert (args.master_addr, args.master_port, args.standalone) == ("10.0.0.1", 1234, False)


def test_several_machines_need_a_meeting_point() -> None:
    with pytest.raises(ConfigError, match="--nnodes 2 needs to know where rank 0 is"):
        torchrun_args(LaunchSpec(2, nnodes=2), ["train", "c.yaml"])
    with pytest.raises(ConfigError, match="--node-rank 2 is not one of the 2 machines"):
        check_spec(LaunchSpec(2, nnodes=2, node_rank=2))


def test_nproc_inside_a_launched_process_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="inside a process a launcher already started"):
        check_spec(LaunchSpec(2))


def test_the_first_failed_rank_is_named_with_its_signal_or_exit_code(tmp_path: Path) -> None:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    killed = ProcessFailure(local_rank=1, pid=4242, exitcode=-9, error_file=str(tmp_path / "none"))
    killed.timestamp = 1
    stopped = ProcessFailure(local_rank=0, pid=4241, exitcode=-15, error_file=str(tmp_path / "none"))
    stopped.timestamp = 2
    error = failure_error(ChildFailedError("llmft", {1: killed, 0: stopped}))
    assert error.message == (
        "rank 1 (pid 4242) was killed by SIGKILL; the other processes were stopped (also ended: rank 0)"
    )
    bad_input = ProcessFailure(local_rank=0, pid=7, exitcode=2, error_file=str(tmp_path / "none"))
    error = failure_error(ChildFailedError("llmft", {0: bad_input}))
    assert error.message.startswith("rank 0 (pid 7) exited with code 2") and error.exit_code == 2


# ------------------------------------------------------------------------ strategies and schema
def test_strategies_by_process_count_and_what_is_refused() -> None:
    assert check_strategy(DistributedConfig(), 2, cuda=False) == "ddp"
    assert check_strategy(DistributedConfig(), 1, cuda=False) == "none"
    assert check_strategy(DistributedConfig(strategy="fsdp"), 2, cuda=False) == "fsdp"
    assert check_strategy(DistributedConfig(strategy="fsdp"), 1, cuda=False) == "none"  # nothing to shard
    deepspeed = DistributedConfig(strategy="deepspeed", deepspeed={"zero_optimization": {"stage": 2}})
    assert check_strategy(deepspeed, 2, cuda=False) == "deepspeed"
    offload = DistributedConfig(strategy="fsdp", fsdp=FsdpConfig(cpu_offload=True))
    with pytest.raises(EnvironmentProblem, match="this machine has no GPU: its shards are in CPU memory"):
        check_strategy(offload, 2, cuda=False)
    assert check_strategy(offload, 2, cuda=True) == "fsdp"


def test_deepspeed_auto_values_follow_the_training_section(tmp_path: Path) -> None:
    path = tmp_path / "ds.json"
    zero = {"stage": 2, "offload_optimizer": {"device": "cpu"}}
    path.write_text(
        json.dumps(
            {
                "train_micro_batch_size_per_gpu": "auto",
                "bf16": {"enabled": "auto"},
                "train_batch_size": "auto",
                "zero_optimization": zero,
            }
        )
    )
    training = TrainingConfig(batch_size=4, gradient_accumulation_steps=2, max_grad_norm=0.5)
    ds = deepspeed_config(str(path), training, "bf16")
    assert ds == {
        "train_micro_batch_size_per_gpu": 4,
        "gradient_accumulation_steps": 2,
        "gradient_clipping": 0.5,
        "bf16": {"enabled": True},
        "zero_optimization": zero,
    }
    with pytest.raises(ConfigError, match="train_micro_batch_size_per_gpu is 8 but training.batch_size is 4"):
        deepspeed_config({"train_micro_batch_size_per_gpu": 8}, training, "no")


def test_a_deepspeed_file_that_does_not_parse_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ds.json"
    path.write_text('{\n  "zero_optimization": {"stage": 2},\n  "bf16": {enabled: true}\n}\n')
    with pytest.raises(ConfigError) as err:
        read_deepspeed(str(path))
    assert f"{path}:3:12 is not valid JSON" in err.value.message
    raw = {
        "data": {"dataset": {"train_file": "t.jsonl"}},
        "model": {"name_or_path": "m"},
        "training": {"distributed": {"strategy": "deepspeed", "deepspeed": str(path)}},
    }
    config, problems = validate_dict(raw)
    assert config is not None
    found = check_distributed(config)
    assert found[0].path == "training.distributed.deepspeed" and found[0].severity == "error"
    assert f"{path}:3:12 is not valid JSON" in found[0].message
    assert len(found) == 1  # DeepSpeed trains: nothing else to say of this config


def test_deepspeed_leaves_optimizer_schedule_and_unset_clipping_to_the_training_section() -> None:
    no_clip = TrainingConfig(batch_size=2, max_grad_norm=None)
    assert deepspeed_config({}, no_clip, "no")["gradient_clipping"] == 0.0  # DeepSpeed's default clips at 1
    for section, ours in (("optimizer", "training.optimizer"), ("scheduler", "training.lr_scheduler")):
        with pytest.raises(ConfigError, match=f"its `{section}` section would replace {ours}"):
            deepspeed_config({section: {"type": "AdamW"}}, no_clip, "no")
        raw = {
            "data": {"dataset": {"train_file": "t.jsonl"}},
            "model": {"name_or_path": "m"},
            "training": {"distributed": {"strategy": "deepspeed", "deepspeed": {section: {}}}},
        }
        _, problems = validate_dict(raw)
        assert [p.path for p in problems] == ["training.distributed.deepspeed"], problems


def test_distributed_section_rules() -> None:
    with pytest.raises(ValidationError, match="deepspeed is set but strategy is `auto`"):
        DistributedConfig(deepspeed={"zero_optimization": {"stage": 2}})
    with pytest.raises(ValidationError, match="strategy `deepspeed` needs a DeepSpeed config"):
        DistributedConfig(strategy="deepspeed")
    raw = {
        "data": {"dataset": {"train_file": "t.jsonl"}},
        "model": {"name_or_path": "m"},
        "training": {"distributed": {"stratgy": "ddp"}},
    }
    _, problems = validate_dict(raw)
    assert any(p.path == "training.distributed.stratgy" and "strategy" in p.render() for p in problems)


@pytest.mark.parametrize(
    ("setting", "path", "said"),
    [
        ({"training": {"optimizer": "adafactor"}}, "training.optimizer", "need whole weights, not shards"),
        ({"training": {"compile": True}}, "training.compile", "torch.compile"),
        ({"model": {"adapter": {"type": "qlora"}}}, "model.quantization", "cannot be sharded"),
        ({"training": {"mixed_precision": "fp16"}}, "training.mixed_precision", "a sharded gradient scaler"),
        (
            {"evaluation": {"generate": {"when": "every_eval"}}},
            "evaluation.generate.when",
            "whole model on one process at every evaluation",
        ),
    ],
)
@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed"])
def test_sharded_strategies_refuse_what_they_cannot_honour_at_validation(
    strategy: str, setting: dict, path: str, said: str
) -> None:
    chosen: dict = {"strategy": strategy}
    if strategy == "deepspeed":
        chosen["deepspeed"] = {"zero_optimization": {"stage": 3}}
    raw: dict = {
        "data": {"dataset": {"train_file": "t.jsonl"}, "validation_split": 0.1},
        "model": {"name_or_path": "m"},
        "training": {"distributed": chosen},
    }
    for section, values in setting.items():
        raw.setdefault(section, {}).update(values)
    _, problems = validate_dict(raw)
    found = [p for p in problems if p.path == path]
    assert len(found) == 1 and found[0].severity == "error", problems
    assert said in found[0].message and f"strategy: {strategy}" in found[0].message
    raw["training"]["distributed"] = {"strategy": "ddp"}
    _, problems = validate_dict(raw)
    assert [p for p in problems if p.path == path] == []  # the same setting is fine without FSDP


def test_fsdp_layer_classes_the_model_lacks_are_named_with_those_it_has(tiny_model) -> None:
    from transformers import AutoModelForCausalLM

    from llmft.errors import ConfigError
    from llmft.train.distributed.sharding import _layers, layer_class_names

    model = AutoModelForCausalLM.from_pretrained(tiny_model("llama"))
    assert layer_class_names(model, None) == ["LlamaDecoderLayer"]  # the model's own _no_split_modules
    assert len(_layers(model, ["LlamaDecoderLayer"])) == model.config.num_hidden_layers
    with pytest.raises(ConfigError, match="no module of class Qwen2DecoderLayer") as err:
        _layers(model, ["Qwen2DecoderLayer"])
    assert "LlamaDecoderLayer" in str(err.value.fix)


@pytest.mark.parametrize(
    ("variable", "strategy"), [("ACCELERATE_USE_DEEPSPEED", "deepspeed"), ("ACCELERATE_USE_FSDP", "fsdp")]
)
def test_accelerates_engine_flags_are_refused_for_the_run_configs_strategy(
    variable: str, strategy: str
) -> None:
    from llmft.train.distributed.group import start

    with pytest.raises(ConfigError, match=f"launched with accelerate's {strategy}") as err:
        start(DistributedConfig(), lambda _: None, {variable: "true"})
    assert f"training.distributed.strategy: {strategy}" in str(err.value.fix)
    assert start(DistributedConfig(), lambda _: None, {variable: "false"}).world_size == 1


def test_deepspeed_settings_that_would_disagree_with_the_training_section_are_refused() -> None:
    training = TrainingConfig(batch_size=4)
    with pytest.raises(ConfigError, match="train_batch_size is set"):
        deepspeed_config({"train_batch_size": 64}, training, "no")
    with pytest.raises(ConfigError, match="bf16.enabled is True but the run's precision is 'no'"):
        deepspeed_config({"bf16": {"enabled": True}}, training, "no")
    with pytest.raises(ConfigError, match="fp16.enabled is False but the run's precision is 'fp16'"):
        deepspeed_config({"fp16": {"enabled": False}}, training, "fp16")
    assert deepspeed_config({"bf16": {"enabled": True}}, training, "bf16")["bf16"] == {"enabled": True}


def test_llmft_validate_refuses_a_deepspeed_config_that_disagrees_with_the_training_section() -> None:
    """The translation the run makes is checked before it starts; the precision only when the config
    decides it (`auto` is decided by the device the run finds)."""
    zero2 = {"zero_optimization": {"stage": 2}}
    cases = [
        ({**zero2, "train_batch_size": 64}, {}, "train_batch_size is set"),
        (
            {**zero2, "train_micro_batch_size_per_gpu": 8},
            {"batch_size": 4},
            "is 8 but training.batch_size is 4",
        ),
        ({**zero2, "bf16": {"enabled": True}}, {"mixed_precision": "no"}, "bf16.enabled is True"),
    ]
    for ds, training, said in cases:
        found = _distributed_problems({"strategy": "deepspeed", "deepspeed": ds}, **training)
        assert [p.path for p in found] == ["training.distributed.deepspeed"], found
        assert said in found[0].message and not found[0].message.startswith("training.distributed")
    bf16 = {"strategy": "deepspeed", "deepspeed": {**zero2, "bf16": {"enabled": True}}}
    assert _distributed_problems(bf16) == []  # mixed_precision auto: bf16 on a GPU that has it


def _distributed_problems(distributed: dict, **training: object) -> list:
    raw = {
        "data": {"dataset": {"train_file": "t.jsonl"}},
        "model": {"name_or_path": "m"},
        "training": {"distributed": distributed, **training},
    }
    return validate_dict(raw)[1]


def test_deepspeed_needs_a_zero_stage_and_refuses_skipping_steps() -> None:
    for ds in ({"zero_optimization": {"stage": 0}}, {"bf16": {"enabled": "auto"}}):
        found = _distributed_problems({"strategy": "deepspeed", "deepspeed": ds})
        assert [p.path for p in found] == ["training.distributed.deepspeed"], found
        assert "llmft trains DeepSpeed with ZeRO stage 1, 2 or 3" in found[0].message
    zero2 = {"strategy": "deepspeed", "deepspeed": {"zero_optimization": {"stage": 2}}}
    assert _distributed_problems(zero2) == []
    skip = _distributed_problems(zero2, nan_policy="skip")
    assert [p.path for p in skip] == ["training.nan_policy"], skip
    assert _distributed_problems({"strategy": "fsdp"}, nan_policy="skip") == []  # FSDP zeroes its shards


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed"])
def test_a_named_preference_objective_is_refused_with_a_sharded_strategy(strategy: str) -> None:
    chosen: dict = {"strategy": strategy}
    if strategy == "deepspeed":
        chosen["deepspeed"] = {"zero_optimization": {"stage": 3}}
    found = [p for p in _distributed_problems(chosen, objective="dpo") if p.path == "training.objective"]
    assert len(found) == 1 and "reference model and pair batches are not sharded" in found[0].message
    assert "strategy: ddp" in str(found[0].fix)


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed"])
def test_a_preference_objective_found_in_the_data_is_refused_as_validation_refuses_a_named_one(
    strategy: str,
) -> None:
    """`objective: auto` with preference pairs is known only once the data is read: the run refuses it with
    the table's words before it moves or shards anything."""
    from types import SimpleNamespace

    from llmft.train.parts import _placed

    dist = SimpleNamespace(active=True, strategy=strategy)
    config = validate_dict({"data": {"dataset": {"train_file": "t.jsonl"}}, "model": {"name_or_path": "m"}})[
        0
    ]
    with pytest.raises(ConfigError) as err:
        _placed(torch.nn.Linear(2, 2), config.training, "dpo", object(), dist, steps=1)  # type: ignore[arg-type,union-attr]
    said = err.value.message
    assert said.startswith("training.objective is `dpo` (from the data): ") and "not sharded" in said
    assert f"training.distributed.strategy: {strategy}" in said and "strategy: ddp" in str(err.value.fix)


def test_a_sharded_strategy_with_one_process_says_it_has_nothing_to_shard() -> None:
    from llmft.train.distributed.group import start

    said: list[str] = []
    assert start(DistributedConfig(strategy="fsdp"), said.append, {}).world_size == 1
    assert said == ["strategy fsdp with one process: nothing to shard, it trains as one process"]
