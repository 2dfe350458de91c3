"""Experiment trackers: one small sink per tracker behind one Protocol (base.py), fanned out by session.py.

metrics.jsonl (the trainer's ``MetricsLog``) is always written and is the source of truth; TensorBoard,
MLflow and W&B receive the same records through ``Callbacks.on_log``. Tracker packages are imported only
when a run starts; ``packages.py`` checks they are installed without importing them (``llmft validate``).
"""
