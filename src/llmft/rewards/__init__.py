"""Rewards for GRPO and RLOO: built-ins for verifiable tasks and user functions with TRL's convention.

``check_reward_refs`` (torch-free, for ``llmft validate``), ``build_rewards`` (entries → callables) and
``score`` (a batch → per-function rewards and weighted totals) are the whole interface; ``BUILTINS`` is
the table of built-ins. See builtins.py, refs.py and score.py for the rules.
"""

from llmft.rewards.build import Reward, build_rewards, callable_name
from llmft.rewards.builtins import BUILTINS, builtin_doc
from llmft.rewards.check import PATH, RewardEntry, RewardSpec, check_reward_refs
from llmft.rewards.score import Scores, score

__all__ = [
    "BUILTINS",
    "PATH",
    "Reward",
    "RewardEntry",
    "RewardSpec",
    "Scores",
    "build_rewards",
    "builtin_doc",
    "callable_name",
    "check_reward_refs",
    "score",
]
