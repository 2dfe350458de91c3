"""llmft: config-driven fine-tuning of language models.

The public API mirrors the CLI: ``load_config(path, overrides)`` then ``run(config)``; ``load(run_dir)``
gives the trained model back, ready to generate. Heavy libraries (torch, transformers) are imported only
when they are called, so importing llmft stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import RunConfig
    from llmft.hpo.search import SearchResult


def load_config(path: str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML/JSON config (legacy layouts included), apply dotted overrides, validate it."""
    from llmft.config.load import load_config as _load

    return _load(path, overrides or [])


def run(config: RunConfig, **options: object) -> dict[str, float]:
    """Train and evaluate as the config says; returns the final metrics.

    ``options`` are those of :func:`llmft.pipeline.run` (``say``, ``progress``, ``overwrite``, ``resume``,
    ``on_evaluate``); use that function directly for the run directory, losses and the live model.
    With ``hpo.enabled`` the config is a search, as in ``llmft train``: it runs :func:`search` (options
    ``say``, ``progress``, ``overwrite``) and returns the best trial's metrics (the refit's, with hpo.refit).
    """
    if config.hpo.enabled:
        result = search(config, **options)
        if result.refit_metrics is not None:
            return result.refit_metrics
        return dict(result.best.metrics) if result.best is not None else {}
    from llmft.pipeline import run as _run

    return _run(config, **options).metrics  # type: ignore[arg-type]


def search(config: RunConfig, **options: object) -> SearchResult:
    """Run the hyperparameter search of ``config.hpo`` (also when hpo.enabled is off); returns its trials,
    the best one and the files written. ``options``: ``say``, ``progress``, ``overwrite``."""
    from llmft.hpo.search import run_search

    return run_search(config, **options)  # type: ignore[arg-type]


def load(path: str, **options: object) -> tuple[object, object]:
    """A finished run (or saved model dir) as (model, tokenizer), ready to generate: adapter applied, the
    run's chat template set and its stop tokens in the generation config. ``options``: ``device``, ``dtype``.
    """
    from llmft.generate.load import load as _load

    return _load(path, **options)  # type: ignore[arg-type]


__all__ = ["__version__", "load", "load_config", "run", "search"]
