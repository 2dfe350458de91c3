"""docs/REWARDS.md, generated from the built-ins table so the page cannot drift from the code.

Regenerate: ``python -c "from llmft.rewards.docs import markdown; print(markdown(), end='')" >
docs/REWARDS.md`` (tests/unit/rewards/test_reward_docs.py checks it is current).
"""

from __future__ import annotations

from dataclasses import MISSING, Field

from llmft.rewards.args import arg_fields
from llmft.rewards.builtins import BUILTINS, builtin_doc
from llmft.rewards.check import PATH
from llmft.rewards.text import EXTRACTORS

INTRO = f"""# Rewards

GRPO and RLOO score each completion with the rewards listed in `{PATH}`; each entry is a built-in
or a function of yours, with a `weight` (the total is the weighted sum of the rewards that apply):

```yaml
training:
  rl:
    rewards:
      - function: answer_match
        args: {{column: answer, mode: numeric, extract: boxed}}
      - function: format
        weight: 0.2
        args: {{pattern: '<think>.*?</think>\\s*<answer>.*?</answer>'}}
      - function: rewards.py:brevity        # a file, relative to the config file
      - function: trl.rewards:think_format_reward   # a module on the Python path
```

## Your own reward functions

They follow TRL's convention, so a reward written for TRL's `GRPOTrainer` works unchanged: it is called
with the keywords `prompts`, `completions`, `completion_ids` and one per other column of the data (a list,
one value per completion), and returns one float per completion, or None where it does not apply (left
out of the sum; a completion no reward applies to gets no advantage). Completions are strings, or lists of
`{{"role", "content"}}` messages for conversational data. Take `**kwargs` for the keywords you do not read:

```python
def brevity(completions, **kwargs):
    return [-len(c) / 1000 for c in completions]
```

`llmft validate` checks each reference without running your code: the file parses and defines the
function, and its parameters fit the call. A reward that raises or returns the wrong number of values
stops the run, naming the function and the prompt.

## Built-in rewards
"""


def markdown() -> str:
    """The whole page: the intro, then each built-in with its arguments."""
    parts = [INTRO]
    for name in BUILTINS:
        parts.append(f"\n### `{name}`\n\n{builtin_doc(name)}\n\n| arg | default | |\n|---|---|---|\n")
        parts += [_row(f) for f in arg_fields(name)]
    parts.append("\nWhere `answer_match` looks for the answer (`extract`):\n\n")
    parts += [f"- `{name}`: {what}\n" for name, (_, what) in EXTRACTORS.items()]
    return "".join(parts)


def _row(spec: Field[object]) -> str:
    default = "required" if spec.default is MISSING else f"`{_yaml(spec.default)}`"
    choices = spec.metadata.get("choices") or ()
    doc = str(spec.metadata["doc"]) + (f" ({', '.join(f'`{c}`' for c in choices)})" if choices else "")
    return f"| `{spec.name}` | {default} | {doc} |\n"


def _yaml(value: object) -> str:
    """A default as the config file spells it."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)
