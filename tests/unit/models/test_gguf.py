"""A GGUF file as the base model (models/gguf.py, models/gguf_copy.py): loaded dequantized from a float32
copy written once, with the GGUF's tokenizer and chat template; and the errors for a file that is missing,
is not GGUF, or holds what transformers cannot unpack."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.tolerances import EPS
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmft.config.schema import ModelConfig
from llmft.doctor.memory import format_bytes
from llmft.errors import ModelError
from llmft.export.gguf import export_gguf
from llmft.export.source import resolve_source
from llmft.models.gguf_copy import MARKER, copies_dir, folder_size, prepare_base
from llmft.models.load import load_model, load_model_config, load_tokenizer

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it


@pytest.fixture(scope="module")
def ggufs(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: ANN001
    """The session's tiny Llama written as GGUF in f32 and in q8_0."""
    out = tmp_path_factory.mktemp("gguf")
    source = resolve_source(tiny_model("llama"))
    return {q: export_gguf(source, out / f"tiny-{q}.gguf", quant=q).path for q in ("f32", "q8_0")}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own llmft cache: copies go to ``tmp_path/gguf``."""
    monkeypatch.setenv("LLMFT_CACHE", str(tmp_path / "tokenized"))
    return tmp_path / "gguf"


def logits(model: torch.nn.Module) -> torch.Tensor:
    ids = torch.randint(4, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(input_ids=ids).logits


def original(tiny_model) -> torch.nn.Module:  # noqa: ANN001
    return AutoModelForCausalLM.from_pretrained(tiny_model("llama"), dtype=torch.float32).eval()


def loaded(path: Path) -> torch.nn.Module:
    tokenizer = load_tokenizer(str(path))
    return load_model(ModelConfig(name_or_path=str(path)), "causal_lm", tokenizer=tokenizer).eval()


# ------------------------------------------------------------------------------------------ loading


def test_an_f32_gguf_base_gives_the_original_logits(ggufs, tiny_model) -> None:  # noqa: ANN001
    # The f32 file holds the very float32 numbers (q/k rows permuted into llama.cpp's order and back: a
    # reordering, no arithmetic), so only the order of a sum could differ: 4 ulps of the largest logit.
    want = logits(original(tiny_model))
    torch.testing.assert_close(
        logits(loaded(ggufs["f32"])), want, atol=4 * EPS * float(want.abs().max()), rtol=0
    )


def test_a_q8_0_base_is_the_original_rounded_to_q8_0(ggufs, tiny_model) -> None:  # noqa: ANN001
    """Each weight equals gguf's own q8_0 rounding of the original; the logits move by that rounding only."""
    from gguf import GGMLQuantizationType, quants

    model, reference = loaded(ggufs["q8_0"]), original(tiny_model)
    weight = reference.model.layers[0].mlp.down_proj.weight.detach().numpy()
    q8 = GGMLQuantizationType.Q8_0
    rounded = torch.from_numpy(quants.dequantize(quants.quantize(weight, q8), q8))
    assert torch.equal(model.model.layers[0].mlp.down_proj.weight, rounded)
    assert not torch.equal(rounded, reference.model.layers[0].mlp.down_proj.weight)  # q8_0 did round
    # q8_0 keeps 8 bits per weight (error ≤ 1/254 of a 32-weight block's largest): a few % of the scale.
    got, want = logits(model), logits(reference)
    torch.testing.assert_close(got, want, atol=0.05 * float(want.abs().max()), rtol=0)


def test_the_tokenizer_and_chat_template_come_from_the_gguf(ggufs, tiny_model) -> None:  # noqa: ANN001
    mine, theirs = load_tokenizer(str(ggufs["q8_0"])), AutoTokenizer.from_pretrained(tiny_model("llama"))
    text = "Hello world, the cat reads a book. <|im_start|>user\nhi<|im_end|>"
    assert mine(text)["input_ids"] == theirs(text)["input_ids"]
    assert mine.chat_template == theirs.chat_template
    assert mine.pad_token is not None and mine.padding_side == "right"


def test_the_copy_is_written_once_and_said_in_one_line(ggufs, cache: Path) -> None:  # noqa: ANN001
    path = ggufs["q8_0"]
    section, first = prepare_base(ModelConfig(name_or_path=str(path)))
    folder = first.folder
    assert folder.parent == cache and folder.name.startswith("tiny-q8_0-")
    assert sorted(p.name for p in folder.iterdir()) == [
        "chat_template.jinja", "config.json", "generation_config.json", MARKER, "model.safetensors",
        "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    assert section.name_or_path == str(folder) and section.gguf_file is None
    size = format_bytes(folder_size(folder))
    assert first.describe() == (
        f"model: tiny-q8_0.gguf (llama, GGUF Q8_0 dequantized to float32, 236K parameters); "
        f"float32 copy written to {folder} ({size})"
    )
    written = (folder / "model.safetensors").stat().st_mtime_ns
    _, again = prepare_base(ModelConfig(name_or_path=str(path)))
    assert again.folder == folder and (folder / "model.safetensors").stat().st_mtime_ns == written
    assert again.describe().endswith(f"float32 copy reused from {folder} ({size})")


def test_a_folder_and_gguf_file_name_the_same_copy(ggufs) -> None:  # noqa: ANN001
    path = ggufs["f32"]
    _, by_path = prepare_base(ModelConfig(name_or_path=str(path)))
    _, by_name = prepare_base(ModelConfig(name_or_path=str(path.parent), gguf_file=path.name))
    assert by_name.folder == by_path.folder and by_name.reused
    assert "(llama, GGUF F32 read as float32, 236K parameters)" in by_path.describe()


def test_a_changed_file_gets_a_new_copy(ggufs, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "m.gguf"
    path.write_bytes(ggufs["f32"].read_bytes())
    _, first = prepare_base(ModelConfig(name_or_path=str(path)))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # rewritten later
    _, second = prepare_base(ModelConfig(name_or_path=str(path)))
    assert second.folder != first.folder and not second.reused


def test_the_config_is_read_from_the_header_without_writing_a_copy(ggufs, cache: Path) -> None:  # noqa: ANN001
    config = load_model_config(ModelConfig(name_or_path=str(ggufs["q8_0"])))
    assert (config.model_type, config.num_hidden_layers) == ("llama", 2)
    assert not cache.exists()
    assert copies_dir() == cache


# ------------------------------------------------------------------------------------------ errors


def error(path: Path | str, **kwargs: object) -> ModelError:
    with pytest.raises(ModelError) as caught:
        load_model_config(ModelConfig(name_or_path=str(path), **kwargs))
    return caught.value


def test_a_missing_file_names_the_gguf_files_next_to_it(ggufs) -> None:  # noqa: ANN001
    folder = ggufs["f32"].parent
    err = error(folder / "tiny-q4.gguf")
    assert err.message == (
        f"GGUF file `{folder / 'tiny-q4.gguf'}` does not exist "
        "(GGUF files there: tiny-f32.gguf, tiny-q8_0.gguf)"
    )
    assert err.where == "model.name_or_path"
    assert error(folder, gguf_file="other.gguf").where == "model.gguf_file"


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_text("<html>Not found</html>", encoding="utf-8")
    err = error(path)
    assert err.message == f"`{path}` is not a GGUF file (it starts with b'<htm', not b'GGUF')"
    assert err.fix is not None and "download the file again" in err.fix


def write_gguf(path: Path, arch: str, tensor: np.ndarray, raw_dtype: object = None) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_tensor("token_embd.weight", tensor, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_an_architecture_transformers_lacks_is_named_with_those_it_has(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "enc.gguf", "bert", np.zeros((4, 8), np.float32))
    err = error(path)
    assert err.message.startswith(f"GGUF file `{path}` holds a `bert` model (F32), which transformers ")
    assert "cannot load from GGUF" in err.message
    assert err.fix is not None and "llama, mamba" in err.fix and "qwen2" in err.fix


def test_a_storage_type_gguf_cannot_dequantize_is_named(tmp_path: Path) -> None:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    q8_1 = GGMLQuantizationType.Q8_1
    blocks = np.zeros((4, GGML_QUANT_SIZES[q8_1][1]), np.uint8)  # 4 rows of one 32-weight block each
    path = write_gguf(tmp_path / "odd.gguf", "llama", blocks, raw_dtype=q8_1)
    err = error(path)
    assert err.message.startswith(f"GGUF file `{path}` stores weights as Q8_1, which the installed `gguf`")
    assert err.fix is not None and "Q8_0, Q4_K_M and F16 are read" in err.fix


def test_a_hub_gguf_offline_says_how_to_download_it() -> None:
    err = error("org/model-GGUF", gguf_file="model.Q4_K_M.gguf")
    assert err.message == (
        "GGUF file `model.Q4_K_M.gguf` of Hub repo `org/model-GGUF` is not in the Hugging Face cache, "
        "and the Hub cannot be reached (offline)"
    )
    assert err.fix is not None and "huggingface-cli download org/model-GGUF model.Q4_K_M.gguf" in err.fix
    assert err.where == "model.gguf_file"


def test_a_removed_copy_is_written_again_where_the_run_names_it(ggufs, tmp_path: Path) -> None:  # noqa: ANN001
    """A cleared cache: `llmft merge`/`export` (through resolve_source) write the copy again from the GGUF."""
    import json
    import shutil

    from llmft.export.source import resolve_source as resolve

    _, copy = prepare_base(ModelConfig(name_or_path=str(ggufs["f32"])))
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    adapter = {"base_model_name_or_path": str(copy.folder), "peft_type": "LORA", "task_type": "CAUSAL_LM"}
    (run / "model" / "adapter_config.json").write_text(json.dumps(adapter))
    (run / "run.json").write_text(json.dumps({"task": "causal_lm", "base_gguf": copy.record()}))
    shutil.rmtree(copy.folder)
    assert resolve(run).base == str(copy.folder)
    assert (copy.folder / MARKER).is_file() and (copy.folder / "model.safetensors").is_file()


def test_a_copy_of_a_changed_gguf_is_not_restored(ggufs, tmp_path: Path) -> None:  # noqa: ANN001
    import shutil

    from llmft.models.gguf_copy import restore_copy

    path = tmp_path / "m.gguf"
    path.write_bytes(ggufs["f32"].read_bytes())
    _, copy = prepare_base(ModelConfig(name_or_path=str(path)))
    shutil.rmtree(copy.folder)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert not restore_copy(str(copy.folder), copy.record())
    assert not copy.folder.exists()


def test_a_run_whose_gguf_moved_says_so_when_its_copy_is_gone(ggufs, tmp_path: Path) -> None:  # noqa: ANN001
    import json
    import shutil

    from llmft.errors import ExportError
    from llmft.export.source import resolve_source as resolve

    path = tmp_path / "m.gguf"
    path.write_bytes(ggufs["f32"].read_bytes())
    _, copy = prepare_base(ModelConfig(name_or_path=str(path)))
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    adapter = {"base_model_name_or_path": str(copy.folder), "peft_type": "LORA", "task_type": "CAUSAL_LM"}
    (run / "model" / "adapter_config.json").write_text(json.dumps(adapter))
    (run / "run.json").write_text(json.dumps({"task": "causal_lm", "base_gguf": copy.record()}))
    shutil.rmtree(copy.folder)
    path.unlink()
    with pytest.raises(ExportError) as caught:
        resolve(run)
    assert caught.value.message == (
        f"the adapter's base model `{copy.folder}` is not there any more: it was llmft's float32 copy of "
        f"GGUF file `{path}`, which has since moved or changed, so the copy cannot be made again"
    )


def test_base_option_takes_a_gguf_file_as_the_adapters_base(ggufs, tmp_path: Path, cache: Path) -> None:  # noqa: ANN001
    """`llmft merge/export RUN --base x.gguf`: the adapter's base is that file's float32 copy."""
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(tmp_path / "gone"),
    }
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    source = resolve_source(adapter, base=str(ggufs["f32"]))
    assert Path(source.base).parent == cache and (Path(source.base) / MARKER).is_file()
    assert resolve_source(adapter, base=str(ggufs["f32"])).base == source.base  # written once, then reused
