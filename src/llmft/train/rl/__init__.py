"""The math of online RL objectives (GRPO and its variants, RLOO) as pure torch functions, no trainer.

Each function matches a named paper and TRL 1.16's GRPOTrainer/RLOOTrainer, which tests hold it to
(tests/unit/train/rl/): advantages.py (group-relative and leave-one-out baselines), logprobs.py (per-token
log-probs of sampled completions), policy_loss.py (the clipped surrogate for every loss type and importance
sampling level, with the k3 KL term and the clip-ratio metrics), truncation.py (masking completions cut off
by the length limit), settings.py (`training.rl` → the loss's settings). The rollout loop that feeds
them: prompts.py (prompt rows), generator.py (the
``Generator`` seam and llmft's own), rollouts.py (the batch source), forward.py and collate.py (the rows and
their log-probs), metrics.py; objectives/grpo.py and rloo.py put them on the loop.
"""
