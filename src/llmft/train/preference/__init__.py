"""Machinery the preference objectives (train/objectives/dpo.py … reward.py) share: per-sequence log-probs
from one forward of the stacked batch (logps.py), the reference model's log-probs (reference.py), and
which reference a run uses (setup.py).
"""
