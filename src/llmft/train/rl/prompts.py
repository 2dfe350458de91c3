"""Online RL's rows: each a prompt rendered with the run's chat template and its assistant turn opened,
plus what its rewards read.

A prompt-only row (format `prompt`) is a ``prompt`` string or message list and any other columns (an
``answer``, test cases), which go to the reward functions by keyword as TRL passes a data set's columns.
Instruction rows give the turns before their last answer; that answer is passed as the ``answer`` column.
The prompt ids are cut from the same encoding SFT uses (data/tokenize.py ``encode_conversation``) of the
conversation with an empty assistant turn: everything before the first trained token is the prompt, so
RL samples exactly where SFT would have trained the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.data.labels import IGNORE
from llmft.data.rows import with_system
from llmft.data.templates import Template, choose_template
from llmft.data.tokenize import encode_conversation
from llmft.errors import DataError

if TYPE_CHECKING:
    from llmft.config.schema import DataConfig
    from llmft.data.build import EncodedData, PreparedData

Example = dict[str, object]
Message = dict[str, object]


def prompt_and_columns(row: dict[str, object]) -> tuple[object, dict[str, object]]:
    """(the prompt as the rewards see it: a string or messages, the columns passed to the rewards)."""
    if "prompt" in row:
        return row["prompt"], {k: v for k, v in row.items() if k != "prompt"}
    from llmft.generate.prompts import from_canonical

    prompt = from_canonical(row)
    shown: object = prompt.messages if prompt.messages is not None else prompt.text
    return shown, ({"answer": prompt.reference} if prompt.reference is not None else {})


def prompt_ids(messages: list[Message], tokenizer: object, template: Template) -> list[int]:
    """The conversation's tokens up to where the assistant's answer starts (see the module's docstring)."""
    opened = [*messages, {"role": "assistant", "content": ""}]
    ids, labels = encode_conversation(opened, tokenizer, template, train_on_inputs=False)
    first = next((i for i, label in enumerate(labels) if label != IGNORE), len(ids))
    return ids[:first]


def encode_prompts(prepared: PreparedData, data: DataConfig, tokenizer: object) -> EncodedData:
    """The training split's rows as prompt examples: ``input_ids`` (the rendered prompt), ``labels`` (all
    ignored), ``prompt`` and ``columns`` for the rewards. Evaluation splits are not encoded: an RL
    objective has no loss on fixed rows (its measure is the reward, logged each step)."""
    from llmft.data.build import EncodedData

    template = choose_template(data.preprocessing.template, tokenizer, prepared.format)
    system = data.preprocessing.system_prompt
    limit = data.tokenization.max_length
    examples: list[Example] = []
    for row in prepared.rows["train"]:
        prompt, columns = prompt_and_columns(row)
        messages = _messages(prompt)
        ids = prompt_ids(with_system(messages, system), tokenizer, template)  # type: ignore[arg-type]
        if len(ids) < limit:
            # labels: none of a prompt is trained (the answer is sampled); `llmft preview` shows it so
            examples.append(
                {"input_ids": ids, "labels": [IGNORE] * len(ids), "prompt": prompt, "columns": columns}
            )
    if not examples:
        raise DataError(
            f"no prompt is shorter than data.tokenization.max_length ({limit} tokens)",
            fix="raise data.tokenization.max_length (prompt and completion must fit in it)",
        )
    return EncodedData(examples={"train": examples}, template=template.name)


def _messages(prompt: object) -> list[Message]:
    if isinstance(prompt, list):
        return [dict(m) for m in prompt]
    return [{"role": "user", "content": str(prompt)}]
