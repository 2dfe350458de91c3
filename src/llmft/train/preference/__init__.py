"""Preference objectives (DPO and its loss types, SimPO, ORPO, KTO, reward models) on the one training loop.

Each is a small loss module over per-sequence log-probs (logps.py) from one forward of the stacked batch;
objective.py turns them into ``Objective``s, reference.py supplies the reference model's log-probs, and
setup.py builds the batches, the reference and the objective for the trainer.
"""
