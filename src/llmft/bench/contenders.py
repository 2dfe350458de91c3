"""The contenders, each a function run inside a worker process: train one epoch, return the trained model.

- ``llmft``: ``llmft.pipeline.run`` on the scenario's config (what `llmft train` does), unchanged.
- ``hf``: the plain script: ``from_pretrained`` + ``get_peft_model`` + ``Trainer`` with
  ``DataCollatorForSeq2Seq`` (pads each batch to its longest row, labels -100 on padding); the model's
  dropout as its config has it (GPT-2: 0.1), as a script that does not think about it keeps it.
- ``hf-nodrop``: the same with every dropout rate 0, as llmft does by default (the equal-work comparison).
- ``trl`` / ``trl-packed``: ``SFTTrainer`` with ``SFTConfig`` defaults (bf16 autocast, gradient checkpointing,
  its fused chunked LM head, padding to the longest row) and with ``packing=True`` (best-fit packing,
  padding-free rows); ``trl-packed-fp32``: packing, with bf16 and gradient checkpointing turned off.

All take the token ids from llmft's data pipeline and the hyperparameters from the llmft config.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from llmft.config.schema import RunConfig

SETTINGS: dict[str, str] = {
    "llmft": "llmft train: selective LM head, token-weighted loss, dropout off; packing as configured",
    "llmft-gc": "llmft with training.gradient_checkpointing: true",
    "llmft-nopack": "llmft with data.packing: false (length-grouped dynamic padding)",
    "hf": "Trainer + peft, DataCollatorForSeq2Seq (pad to longest), model dropout as configured",
    "hf-nodrop": "as hf, with every dropout rate set to 0",
    "trl": "SFTTrainer defaults: bf16 autocast, gradient checkpointing, pad to longest",
    "trl-packed": "SFTTrainer defaults + packing=True (bfd, padding-free)",
    "trl-packed-fp32": "SFTTrainer + packing, bf16=False, gradient_checkpointing=False",
    "trl-dpo": "DPOTrainer on llmft's token ids, same LoRA/beta/lr; bf16=False, gradient_checkpointing=False",
}


def is_packed(name: str, config: RunConfig) -> bool:
    if name.startswith("llmft"):
        return config.data.packing and name != "llmft-nopack"
    return name.startswith("trl-packed")


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")


# ------------------------------------------------------------------------------------------ llmft
def run_llmft(name: str, config: RunConfig, batch_size: int, out: Path) -> object:
    from llmft.pipeline import run

    data = config.data.model_copy(deep=True)
    # Validation is scored by the bench's own evaluation, the same for everyone: llmft need not do it too.
    data.dataset = data.dataset.model_copy(update={"validation_file": None, "validation_fraction": 0.0})
    data.packing = is_packed(name, config)
    training = config.training.model_copy(
        update={"batch_size": batch_size, "gradient_checkpointing": name == "llmft-gc"}
    )
    cfg = config.model_copy(update={"output_dir": str(out / "run"), "data": data, "training": training})
    result = run(RunConfig.model_validate(cfg.model_dump()), say=_say, progress=False, overwrite=True)
    write_step_losses(out, [loss for _, loss in result.train_losses])
    return result.model


def write_step_losses(out: Path, losses: list[float]) -> None:
    """Each optimizer step's training loss (the worker reports them, to compare losses at the same step)."""
    import json

    (out / "step_losses.json").write_text(json.dumps(losses), encoding="utf-8")


# ------------------------------------------------------------------------------------------ baselines
def encoded_splits(config: RunConfig) -> tuple[object, list[dict[str, object]], list[dict[str, object]]]:
    """Tokenizer, train and validation examples, exactly as llmft makes them."""
    from llmft.data.build import encode_splits, prepare_rows
    from llmft.models.load import load_tokenizer

    tok = load_tokenizer(config.data.tokenization.tokenizer or config.model.name_or_path)
    encoded = encode_splits(prepare_rows(config.data, config.seed), config.data, tok, "causal_lm")
    return tok, encoded.examples["train"], encoded.examples.get("validation") or []


def _lora(config: RunConfig, model: object):  # noqa: ANN202 - a peft LoraConfig
    """The LoRA settings of the llmft config, with its targets spelled out as a script would write them."""
    from peft import LoraConfig
    from transformers.pytorch_utils import Conv1D

    from llmft.models.targets import resolve_target_modules

    adapter = config.model.adapter
    targets = resolve_target_modules(model, adapter.target_modules)  # type: ignore[union-attr]
    conv1d = any(
        isinstance(m, Conv1D)
        for n, m in model.named_modules()  # type: ignore[attr-defined]
        if any(n == t or n.endswith("." + t) for t in targets)
    )
    return LoraConfig(
        r=adapter.r,
        lora_alpha=adapter.alpha,
        lora_dropout=adapter.dropout,  # type: ignore[union-attr]
        target_modules=targets,
        bias="none",
        fan_in_fan_out=conv1d,
        task_type="CAUSAL_LM",
    )


def _common_args(config: RunConfig, batch_size: int, out: Path) -> dict[str, object]:
    t = config.training
    return {
        "output_dir": str(out / "run"),
        "per_device_train_batch_size": batch_size,
        "num_train_epochs": 1,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler,
        "warmup_steps": t.warmup_steps or 0,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm or 0.0,
        "adam_beta1": t.adam_beta1,
        "adam_beta2": t.adam_beta2,
        "adam_epsilon": t.adam_epsilon,
        "seed": config.seed,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
    }


def zero_dropout_kwargs(model_dir: str) -> dict[str, float]:
    """`from_pretrained` kwargs that set every dropout rate of the config to 0."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model_dir)
    return {
        k: 0.0
        for k, v in cfg.to_dict().items()
        if ("dropout" in k or "pdrop" in k) and isinstance(v, float) and v > 0
    }


def run_hf(name: str, config: RunConfig, batch_size: int, out: Path) -> object:
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(config.seed)  # first thing in the script, as the examples do
    tok, train, _ = encoded_splits(config)
    path = config.model.name_or_path
    extra = zero_dropout_kwargs(path) if name == "hf-nodrop" else {}
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **extra)
    model = get_peft_model(model, _lora(config, model))
    dataset = Dataset.from_list([{"input_ids": e["input_ids"], "labels": e["labels"]} for e in train])
    collator = DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=-100)  # type: ignore[arg-type]
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**_common_args(config, batch_size, out)),  # type: ignore[arg-type]
        train_dataset=dataset,
        data_collator=collator,
    )
    trainer.train()
    return trainer.model


def run_trl(name: str, config: RunConfig, batch_size: int, out: Path) -> object:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(config.seed)
    tok, train, _ = encoded_splits(config)
    path = config.model.name_or_path
    probe_model = AutoModelForCausalLM.from_pretrained(path)  # only to spell out the LoRA targets
    lora = _lora(config, probe_model)
    del probe_model
    tuned = {"bf16": False, "gradient_checkpointing": False} if name == "trl-packed-fp32" else {}
    args = SFTConfig(
        **_common_args(config, batch_size, out),
        max_length=config.data.tokenization.max_length,  # type: ignore[arg-type]
        packing=name.startswith("trl-packed"),
        **tuned,
    )
    dataset = Dataset.from_list([{"input_ids": e["input_ids"], "labels": e["labels"]} for e in train])
    trainer = SFTTrainer(model=path, args=args, train_dataset=dataset, processing_class=tok, peft_config=lora)
    trainer.train()
    return trainer.model


def run_trl_dpo(name: str, config: RunConfig, batch_size: int, out: Path) -> object:
    """TRL's DPOTrainer on exactly llmft's pairs: built on a one-row text set, then given llmft's
    prompt/chosen/rejected ids (its collator reads only those) in llmft's batch order, read sequentially,
    so both train on the same batches and their losses can be compared step by step."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, set_seed
    from trl import DPOConfig, DPOTrainer

    from llmft.data.build import prepare_rows
    from llmft.data.collate import batch_order, example_length
    from llmft.models.load import load_tokenizer
    from llmft.train.objectives.choose import encode_for_objective

    set_seed(config.seed)
    tok = load_tokenizer(config.model.name_or_path)
    prepared = prepare_rows(config.data, config.seed)
    pairs = encode_for_objective("dpo", prepared, config.data, config.training.preference, tok, "causal_lm")
    model = AutoModelForCausalLM.from_pretrained(config.model.name_or_path)
    args = DPOConfig(
        **{**_common_args(config, batch_size, out), "logging_steps": 1},
        train_sampling_strategy="sequential",
        beta=config.training.preference.beta or 0.1,
        loss_type=["sigmoid"],
        max_length=config.data.tokenization.max_length,
        bf16=False,
        gradient_checkpointing=False,
    )
    text = Dataset.from_list([{"prompt": "a", "chosen": " b", "rejected": " c"}])
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=text, processing_class=tok, peft_config=_lora(config, model)
    )
    keys, train = ("prompt_ids", "chosen_ids", "rejected_ids"), pairs.examples["train"]
    lengths = [example_length(e) for e in train]
    order = [
        i
        for batch in batch_order(lengths, batch_size, config.seed, 0, config.data.group_by_length)
        for i in batch
    ]
    trainer.train_dataset = Dataset.from_list([{k: train[i][k] for k in keys} for i in order])
    trainer.train()
    write_step_losses(out, [h["loss"] for h in trainer.state.log_history if "loss" in h])
    return trainer.model


RUNNERS: dict[str, Callable[[str, RunConfig, int, Path], object]] = {
    "llmft": run_llmft,
    "llmft-gc": run_llmft,
    "llmft-nopack": run_llmft,
    "hf": run_hf,
    "hf-nodrop": run_hf,
    "trl": run_trl,
    "trl-packed": run_trl,
    "trl-packed-fp32": run_trl,
    "trl-dpo": run_trl_dpo,
}


# ------------------------------------------------------------------------------------------ evaluation
def eval_loss(
    model: object, examples: list[dict[str, object]], pad_id: int, batch_size: int = 4
) -> tuple[float, int]:
    """Token-weighted next-token loss over the loss positions of ``examples``: one routine for everyone."""
    import torch
    import torch.nn.functional as F

    model.eval()  # type: ignore[attr-defined]
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))  # type: ignore[arg-type]
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = [examples[i] for i in order[start : start + batch_size]]
            size = max(len(r["input_ids"]) for r in rows)  # type: ignore[arg-type]
            ids = torch.full((len(rows), size), pad_id, dtype=torch.long)
            labels = torch.full((len(rows), size), -100, dtype=torch.long)
            mask = torch.zeros((len(rows), size), dtype=torch.long)
            for i, r in enumerate(rows):
                n = len(r["input_ids"])  # type: ignore[arg-type]
                ids[i, :n] = torch.as_tensor(r["input_ids"])
                labels[i, :n] = torch.as_tensor(r["labels"])
                mask[i, :n] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()  # type: ignore[operator]
            target = labels[:, 1:]
            total += float(
                F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]),
                    target.reshape(-1),
                    ignore_index=-100,
                    reduction="sum",
                )
            )
            count += int((target != -100).sum())
    return total / max(count, 1), count
