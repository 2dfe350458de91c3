"""models/targets.py: presets per architecture, all-linear without heads, and checked user names."""

from __future__ import annotations

import pytest
import transformers
from torch import nn

from llmft.errors import ModelError
from llmft.models.targets import AUTO_TARGETS, linear_module_names, resolve_target_modules

LOADERS = {
    "gpt2": transformers.AutoModelForCausalLM,
    "llama": transformers.AutoModelForCausalLM,
    "qwen2": transformers.AutoModelForCausalLM,
    "bert": transformers.AutoModelForMaskedLM,
    "distilbert": transformers.AutoModelForSequenceClassification,
    "t5": transformers.AutoModelForSeq2SeqLM,
}


@pytest.fixture(scope="module")
def model(tiny_model):
    cache: dict[str, nn.Module] = {}

    def get(arch: str) -> nn.Module:
        if arch not in cache:
            cache[arch] = LOADERS[arch].from_pretrained(tiny_model(arch))
        return cache[arch]

    return get


def _matched(model: nn.Module, target: str) -> list[nn.Module]:
    return [m for n, m in model.named_modules() if n == target or n.endswith("." + target)]


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("gpt2", ["c_attn", "attn.c_proj"]),
        ("llama", ["q_proj", "k_proj", "v_proj", "o_proj"]),
        ("qwen2", ["q_proj", "k_proj", "v_proj", "o_proj"]),
        ("bert", ["query", "key", "value"]),
        ("distilbert", ["q_lin", "v_lin"]),
        ("t5", ["q", "k", "v", "o"]),
    ],
)
def test_auto_picks_the_preset_and_it_exists(model, arch: str, expected: list[str]) -> None:
    logged: list[str] = []
    names = resolve_target_modules(model(arch), "auto", log=logged.append)
    assert names == expected == AUTO_TARGETS[arch]
    for name in names:
        assert _matched(model(arch), name), name
    assert logged == [
        f"LoRA target modules (auto, the attention projections of {arch}): {', '.join(expected)}"
    ]


def test_gpt2_auto_skips_the_mlp_projection(model) -> None:
    gpt2 = model("gpt2")
    matched = {
        n for n, _ in gpt2.named_modules() for t in resolve_target_modules(gpt2, "auto") if n.endswith(t)
    }
    assert "transformer.h.0.attn.c_proj" in matched
    assert "transformer.h.0.mlp.c_proj" not in matched


def test_auto_without_preset_uses_all_linear_layers() -> None:
    config = transformers.GPTNeoXConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    neox = transformers.GPTNeoXForCausalLM(config)
    assert "gpt_neox" not in AUTO_TARGETS
    logged: list[str] = []
    names = resolve_target_modules(neox, "auto", log=logged.append)
    assert names == linear_module_names(neox)
    assert "embed_out" not in names  # GPT-NeoX's LM head
    assert "no preset" in logged[0]


def test_all_linear_excludes_lm_head(model) -> None:
    names = resolve_target_modules(model("llama"), "all-linear")
    assert names == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert "lm_head" not in names


def test_all_linear_names_never_reach_a_head(model) -> None:
    bert = model("bert")  # BertForMaskedLM: its head `cls` has a `dense` layer, like the encoder
    names = linear_module_names(bert)
    assert "dense" not in names
    assert {"output.dense", "intermediate.dense"} <= set(names)
    for name in names:
        hits = [n for n, _ in bert.named_modules() if n == name or n.endswith("." + name)]
        assert hits and not any(n.startswith("cls.") for n in hits), name


def test_all_linear_covers_conv1d(model) -> None:
    assert linear_module_names(model("gpt2")) == ["c_attn", "c_fc", "c_proj"]


def test_all_linear_excludes_classifier_heads(model) -> None:
    names = linear_module_names(model("distilbert"))
    assert "classifier" not in names and "pre_classifier" not in names


def test_unknown_name_lists_the_real_ones(model) -> None:
    with pytest.raises(ModelError) as info:
        resolve_target_modules(model("llama"), ["q_projj"])
    err = info.value
    assert "`q_projj` matches no module in the model (did you mean `q_proj`?)" in err.message
    assert "down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj" in (err.fix or "")
    assert err.where == "model.adapter.target_modules"


def test_did_you_mean_suggests_only_layers_lora_can_adapt(model) -> None:
    llama = model("llama")
    with pytest.raises(ModelError) as info:
        resolve_target_modules(llama, ["c_attn"])  # GPT-2's name; Llama's container is `self_attn`
    message = info.value.message
    assert "`c_attn` matches no module in the model" in message
    assert "self_attn" not in message
    if "did you mean" in message:
        suggested = message.split("did you mean `", 1)[1].split("`", 1)[0]
        assert suggested in linear_module_names(llama)

    with pytest.raises(ModelError) as info:
        resolve_target_modules(llama, ["q_prj"])
    assert "`q_prj` matches no module in the model (did you mean `q_proj`?)" in info.value.message


def test_partly_wrong_list_names_only_the_wrong_ones(model) -> None:
    with pytest.raises(ModelError) as info:
        resolve_target_modules(model("llama"), ["q_proj", "vproj", "nothing_like_it"])
    message = info.value.message
    assert "`vproj` matches no module" in message and "`nothing_like_it` matches no module" in message
    assert "`q_proj`" not in message.split("(did you mean")[0]


def test_container_module_is_refused(model) -> None:
    with pytest.raises(ModelError, match="matches only LlamaAttention modules, which LoRA cannot adapt"):
        resolve_target_modules(model("llama"), ["self_attn"])


def test_valid_list_is_kept_as_given(model) -> None:
    logged: list[str] = []
    assert resolve_target_modules(model("llama"), ["v_proj", "q_proj"], log=logged.append) == [
        "v_proj",
        "q_proj",
    ]
    assert logged == []


@pytest.mark.parametrize("spec", ["everything", []])
def test_bad_specs(model, spec: object) -> None:
    with pytest.raises(ModelError):
        resolve_target_modules(model("llama"), spec)  # type: ignore[arg-type]
