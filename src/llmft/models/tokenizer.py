"""Load a tokenizer that can batch: found the same way as the model, and always with a pad token.

Batching needs a pad token and many causal LMs ship none; training expects right padding. Doing both here,
once, means every caller (training, preview, validate, the benchmarks) gets the same tokenizer.

transformers is imported inside the function: importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.errors import ModelError
from llmft.models.gguf import gguf_ref, locate
from llmft.models.hub import hub_error
from llmft.models.local import check_local_dir

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

_WHERE = "data.tokenization.tokenizer"


def load_tokenizer(
    name_or_path: str,
    *,
    trust_remote_code: bool = False,
    revision: str | None = None,
    token: str | None = None,
    gguf_file: str | None = None,
) -> PreTrainedTokenizerBase:
    """Load a tokenizer that can pad: batching needs a pad token, and many causal LMs ship none.

    The pad token falls back to EOS, then UNK (no new token is added, so the embeddings keep their size).
    Padding is on the right, as training expects; generation code switches to left padding itself.
    A ``.gguf`` file (``name_or_path`` itself, or ``gguf_file`` inside it) gives the tokenizer transformers
    builds from its metadata, chat template included.
    """
    from transformers import AutoTokenizer

    kwargs: dict[str, object] = {"trust_remote_code": trust_remote_code}
    if revision:
        kwargs["revision"] = revision
    if token:
        kwargs["token"] = token
    folder = name_or_path
    ref = gguf_ref(name_or_path, gguf_file)
    if ref is not None:
        path = locate(ref, revision, token)
        folder, kwargs["gguf_file"] = str(path.parent), path.name
    else:
        check_local_dir(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    except OSError as exc:
        raise hub_error(name_or_path, exc, what="tokenizer") from exc
    except (ValueError, KeyError) as exc:
        raise ModelError(
            f"cannot load a tokenizer from `{name_or_path}`: {exc}",
            fix="set data.tokenization.tokenizer to a directory or Hub id that has tokenizer files",
            where=_WHERE,
        ) from exc
    _ensure_pad_token(tokenizer, name_or_path)
    tokenizer.padding_side = "right"
    return tokenizer


def _ensure_pad_token(tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    """Reuse EOS, then UNK, as the pad token when the tokenizer has none."""
    if tokenizer.pad_token is not None:
        return
    fallback = tokenizer.eos_token or tokenizer.unk_token
    if fallback is None:
        raise ModelError(
            f"tokenizer `{name}` has no pad, EOS or UNK token to pad batches with",
            fix="use a tokenizer that defines one of them (data.tokenization.tokenizer)",
            where=_WHERE,
        )
    tokenizer.pad_token = fallback


__all__ = ["load_tokenizer"]
