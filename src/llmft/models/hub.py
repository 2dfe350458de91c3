"""Talk to the Hugging Face Hub on the user's terms, and explain its failures.

transformers reports a gated repo, a wrong revision, a misspelt id and being offline all as one ``OSError``
with the real cause buried in its chain. This module digs that cause out and turns it into a ``ModelError``
that names the model and the fix. It also builds the keyword arguments every ``from_pretrained`` call
shares (revision, token, remote code), so the config and the weights are fetched the same way.

huggingface_hub is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import ModelConfig

# The config key a failure to find or fetch the model points at.
WHERE = "model.name_or_path"


def hub_kwargs(cfg: ModelConfig, token: str | None) -> dict[str, object]:
    """The ``from_pretrained`` arguments that say which model files to fetch and how."""
    kwargs: dict[str, object] = {"trust_remote_code": cfg.trust_remote_code}
    if cfg.revision:
        kwargs["revision"] = cfg.revision
    if token:
        kwargs["token"] = token
    return kwargs


def offline_error(name: str) -> ModelError:
    """The model is neither on disk nor reachable: say how to get it."""
    return ModelError(
        f"model `{name}` is not a local directory and is not available offline",
        fix=f"download it first with `huggingface-cli download {name}` while online, "
        "or point model.name_or_path to a local directory",
        where=WHERE,
    )


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from: transformers wraps hub errors in OSError."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def hub_error(name: str, exc: Exception, what: str = "model") -> ModelError:
    """Turn a failed Hub/file lookup into a ModelError that says which case it is and what to do."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    kinds = tuple(type(c) for c in causes(exc))
    if any(issubclass(k, GatedRepoError) for k in kinds):
        return ModelError(
            f"{what} `{name}` is gated on the Hub and this token has no access",
            fix=f"accept its terms at https://huggingface.co/{name} and set `hf_token` (or HF_TOKEN)",
            where=WHERE,
        )
    if any(issubclass(k, RevisionNotFoundError) for k in kinds):
        return ModelError(
            f"{what} `{name}` has no such revision",
            fix="check model.revision (a branch, tag or commit)",
            where=WHERE,
        )
    if any(issubclass(k, RepositoryNotFoundError) for k in kinds):
        return ModelError(
            f"{what} `{name}` is not a local directory and not a model on the Hub",
            fix="check the spelling; for a private model set `hf_token` (or HF_TOKEN)",
            where=WHERE,
        )
    offline = constants.is_offline_mode() or any(
        issubclass(k, (LocalEntryNotFoundError, OfflineModeIsEnabled)) for k in kinds
    )
    if offline or "couldn't connect" in str(exc):
        return offline_error(name)
    return ModelError(f"cannot load {what} `{name}`: {exc}", where=WHERE)


def pickle_only_on_hub(exc: Exception) -> bool:
    """Whether transformers refused a Hub model because its only weights are pickle files."""
    return "cannot be loaded with `safetensors`" in str(exc)


__all__ = ["WHERE", "causes", "hub_error", "hub_kwargs", "offline_error", "pickle_only_on_hub"]
