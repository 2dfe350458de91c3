"""What a reward reads out of a completion: its text, and the answer inside it.

Completions come as TRL passes them: a string (standard data) or a list of ``{"role", "content"}`` messages
(conversational data). TRL's own rewards read ``completion[0]["content"]``; a tool-calling completion holds
several messages, so the text read here is the last assistant message's (the same message when there is
one). The extractors are one table, so `answer_match`'s ``extract`` argument, its check and its docs agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

# A number as people write it in answers: a sign, thousands separators, decimals, an exponent ("-1,234.50",
# ".5", "1e-05").
_NUMBER = re.compile(r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")
_FRACTION = re.compile(r"\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_BOXED = "\\boxed{"


def content_text(content: object) -> str:
    """A message's content: a string, or a list of parts whose text parts are joined (multimodal form)."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def completion_text(completion: object) -> str:
    """The text of one completion: the string itself, or the last assistant message's content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        messages = [m for m in completion if isinstance(m, Mapping)]
        answers = [m for m in messages if m.get("role", "assistant") == "assistant"] or messages
        return content_text(answers[-1].get("content")) if answers else ""
    return "" if completion is None else str(completion)


def prompt_messages(prompt: object) -> list[dict[str, str]]:
    """A prompt as chat turns: a string is one user turn, a message list is kept (contents as text)."""
    if isinstance(prompt, list):
        return [
            {"role": str(m.get("role", "user")), "content": content_text(m.get("content"))}
            for m in prompt
            if isinstance(m, Mapping)
        ]
    return [{"role": "user", "content": "" if prompt is None else str(prompt)}]


def numbers(text: str) -> list[str]:
    """Every number in ``text``, in order, as written."""
    return [m.group() for m in _NUMBER.finditer(text)]


def last_number(text: str) -> str | None:
    """The last number written: where "The answer is 3.50" and GSM8K's "#### 42" put the answer."""
    found = numbers(text)
    return found[-1] if found else None


def boxed(text: str) -> str | None:
    r"""The contents of the last ``\boxed{...}``, nested braces included (``\boxed{\frac{1}{2}}``)."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth, begin = 1, start + len(_BOXED)
    for i in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[begin:i].strip()
    return None  # never closed: the completion was cut off


def answer_tag(text: str) -> str | None:
    """The contents of the last ``<answer>...</answer>``."""
    found = _ANSWER_TAG.findall(text)
    return found[-1].strip() if found else None


def whole(text: str) -> str | None:
    return text.strip()


# extract name -> (function, what it takes); None: the completion holds no such answer.
EXTRACTORS: dict[str, tuple[Callable[[str], str | None], str]] = {
    "last_number": (last_number, "the last number in the completion"),
    "boxed": (boxed, "the contents of the last `\\boxed{...}`"),
    "answer_tag": (answer_tag, "the contents of the last `<answer>...</answer>`"),
    "none": (whole, "the whole completion"),
}


def to_number(text: str | None) -> float | None:
    r"""``text`` as a number: "1,234.5", "$42", "3.50.", "50%" (50), ``\frac{3}{4}`` (0.75); None when it
    holds no number or more than one (an answer of "3 or 4" is not the number 3)."""
    if text is None:
        return None
    text = _FRACTION.sub(lambda m: _divide(m.group(1), m.group(2)), text)
    if text.count("/") == 1:  # a plain fraction "3/4"
        text = _divide(*text.split("/"))
    found = numbers(text)
    if len(found) != 1:
        return None
    return float(found[0].replace(",", ""))


def _divide(numerator: str, denominator: str) -> str:
    """``a/b`` as decimal text, or the text unchanged when either side is no single number."""
    top, bottom = numbers(numerator), numbers(denominator)
    if len(top) != 1 or len(bottom) != 1 or float(bottom[0].replace(",", "")) == 0:
        return f"{numerator}/{denominator}"
    return repr(float(top[0].replace(",", "")) / float(bottom[0].replace(",", "")))


def normalized(text: str) -> str:
    """Text compared exactly: outer space and a closing full stop dropped, inner space runs made one."""
    return " ".join(text.split()).rstrip(".").strip()
