"""Hyperparameter search: `llmft hpo`, and `llmft train` with `hpo.enabled`. Start at ``search.run_search``.

plan.py (what to search, checked up front) → grid.py / optuna.py / ray.py (which values, when to stop a
trial) → trial.py (one real training run per trial) → report.py, plots.py (results, best config).
Importing this package imports nothing heavy.
"""
