"""Synthetic data sets that teach something a tiny model can learn in a few hundred steps.

Tests and demos need data whose answers are a known function of the question, so that "the loss went
down" and "accuracy beat chance" are checks with teeth rather than noise. Every task draws from one
small vocabulary (also used to train the tiny tokenizers in ``llmft.synth.models``) and is fully
deterministic for a seed. Rows are unique within a call, so splits cut from one call never overlap.

Only the standard library is imported here: ``llmft synth data`` must not pay for torch.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

from llmft.errors import DataError, LlmftError

TASKS: tuple[str, ...] = ("sft", "chat", "classification", "preference", "kto", "text")

COLOURS: dict[str, str] = {
    "sky": "blue",
    "grass": "green",
    "banana": "yellow",
    "snow": "white",
    "coal": "black",
    "tomato": "red",
    "orange": "orange",
    "plum": "purple",
    "lemon": "yellow",
    "leaf": "green",
    "cherry": "red",
    "cloud": "white",
}
SIZES: tuple[str, ...] = ("big", "small", "old", "new", "round", "tall", "little", "shiny")
WORDS: tuple[str, ...] = (
    "red", "blue", "green", "cat", "dog", "bird", "fish", "tree", "house", "car", "book", "sun",
    "moon", "star", "apple", "bread", "milk", "water", "hat", "shoe", "door", "lamp", "cup", "box",
    "ball", "boat", "key", "ring", "rock", "hill",
)  # fmt: skip
NAMES: tuple[str, ...] = ("anna", "ben", "carl", "dora", "emma", "finn", "greta", "hugo", "ida", "jack")
ANIMALS: tuple[str, ...] = ("cats", "dogs", "birds", "fish", "goats", "sheep", "ducks", "cows")
PLACES: tuple[str, ...] = ("park", "beach", "market", "school", "farm", "library", "river", "garden")
POSITIVE_WORDS: tuple[str, ...] = (
    "good", "great", "lovely", "wonderful", "happy", "excellent", "nice", "fantastic",
)  # fmt: skip
NEGATIVE_WORDS: tuple[str, ...] = ("bad", "awful", "terrible", "sad", "boring", "poor", "horrible", "ugly")
NUMBER_WORDS: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
SYSTEM_PROMPTS: tuple[str, ...] = ("You are a helpful assistant.", "Answer briefly and exactly.")

INSTR_REVERSE = "Reverse the words."
INSTR_REPEAT = "Repeat the words twice."
INSTR_COUNT = "How many words are there?"
INSTR_FIRST = "What is the first word?"
COLOUR_PREFIX = "What colour is the "

_CLASS_TEMPLATES: tuple[str, ...] = (
    "{name} said the {word} was {adj}.",
    "the {word} at the {place} looks {adj} today.",
    "i think these {animal} are {adj}.",
    "what a {adj} {word} that was!",
    "{name} had a {adj} day at the {place}.",
    "the {animal} near the {place} seemed {adj} to {name}.",
)

_MAX_DRAWS_PER_ROW = 50


def sft_answer(instruction: str, input: str = "") -> str:  # noqa: A002 - mirrors the alpaca column
    """The one correct output for an sft instruction/input pair; tests and exact-match evals use it."""
    words = input.split()
    if instruction == INSTR_REVERSE:
        return " ".join(reversed(words))
    if instruction == INSTR_REPEAT:
        return " ".join(words + words)
    if instruction == INSTR_COUNT:
        return str(len(words))
    if instruction == INSTR_FIRST:
        return words[0] if words else ""
    if instruction.startswith(COLOUR_PREFIX) and instruction.endswith("?"):
        thing = instruction[len(COLOUR_PREFIX) : -1].split()[-1]
        if thing in COLOURS:
            return f"The {thing} is {COLOURS[thing]}."
    raise DataError(f"not a synthetic sft instruction: {instruction!r}")


def classify_text(text: str) -> str:
    """The keyword rule behind the classification task: any positive word makes the text positive."""
    tokens = {t.strip(".,!?;:").lower() for t in text.split()}
    return "positive" if tokens & set(POSITIVE_WORDS) else "negative"


def _wrong_answer(instruction: str, input: str, rng: random.Random) -> str:  # noqa: A002
    """A plausible but wrong answer, so preference pairs differ in correctness rather than in style."""
    right = sft_answer(instruction, input)
    words = input.split()
    if instruction == INSTR_REVERSE:
        wrong = " ".join(words) if len(set(words)) > 1 else " ".join(words + [rng.choice(WORDS)])
    elif instruction == INSTR_REPEAT:
        wrong = " ".join(words)
    elif instruction == INSTR_COUNT:
        wrong = str(len(words) + rng.choice((1, 2)))
    elif instruction == INSTR_FIRST:
        wrong = rng.choice([w for w in (set(words) - {words[0]} or WORDS) if w != words[0]])
    else:
        thing = right.split()[1]
        colour = rng.choice(sorted({c for c in COLOURS.values() if c != COLOURS[thing]}))
        wrong = f"The {thing} is {colour}."
    if wrong == right:  # defensive: the branches above never produce it, but a pair must differ
        wrong = right + " " + rng.choice(WORDS)
    return wrong


def _random_words(rng: random.Random, low: int, high: int, *, distinct: bool = False) -> str:
    count = rng.randint(low, high)
    picked = rng.sample(WORDS, count) if distinct else [rng.choice(WORDS) for _ in range(count)]
    return " ".join(picked)


def _sft_pair(rng: random.Random) -> tuple[str, str]:
    """One (instruction, input) from five sub-tasks; reversal uses distinct words so it is unambiguous."""
    kind = rng.randrange(5)
    if kind == 0:
        return INSTR_REVERSE, _random_words(rng, 2, 5, distinct=True)
    if kind == 1:
        return INSTR_REPEAT, _random_words(rng, 1, 2)
    if kind == 2:
        return INSTR_COUNT, _random_words(rng, 1, 6)
    if kind == 3:
        return INSTR_FIRST, _random_words(rng, 2, 4)
    thing = rng.choice(sorted(COLOURS))
    return f"{COLOUR_PREFIX}{rng.choice(SIZES)} {thing}?", ""


def _prompt_text(instruction: str, input: str) -> str:  # noqa: A002
    """How an instruction reads as a single user turn (chat and preference tasks)."""
    return f"{instruction}\n{input}" if input else instruction


def _sft_row(rng: random.Random) -> dict[str, object]:
    instruction, inp = _sft_pair(rng)
    return {"instruction": instruction, "input": inp, "output": sft_answer(instruction, inp)}


def _chat_row(rng: random.Random) -> dict[str, object]:
    """OpenAI-style messages: an optional system turn, then one to three user/assistant exchanges."""
    messages: list[dict[str, str]] = []
    if rng.random() < 0.3:
        messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    turns = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
    for _ in range(turns):
        instruction, inp = _sft_pair(rng)
        messages.append({"role": "user", "content": _prompt_text(instruction, inp)})
        messages.append({"role": "assistant", "content": sft_answer(instruction, inp)})
    return {"messages": messages}


def _to_sharegpt(row: dict[str, object]) -> dict[str, object]:
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    messages = row["messages"]
    assert isinstance(messages, list)
    return {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in messages]}


def _classification_text(rng: random.Random, label: str) -> str:
    adjectives = POSITIVE_WORDS if label == "positive" else NEGATIVE_WORDS
    return rng.choice(_CLASS_TEMPLATES).format(
        name=rng.choice(NAMES),
        word=rng.choice(WORDS),
        place=rng.choice(PLACES),
        animal=rng.choice(ANIMALS),
        adj=rng.choice(adjectives),
    )


def _preference_pair(rng: random.Random) -> tuple[str, str]:
    """Preference prompts come from the colour facts and word repetition: rules a tiny model separates from
    their plausible wrong answers within a few dozen DPO steps (reversal and counting take far longer)."""
    if rng.random() < 0.5:
        return INSTR_REPEAT, _random_words(rng, 1, 2)
    thing = rng.choice(sorted(COLOURS))
    return f"{COLOUR_PREFIX}{rng.choice(SIZES)} {thing}?", ""


def _preference_row(rng: random.Random) -> dict[str, object]:
    instruction, inp = _preference_pair(rng)
    return {
        "prompt": _prompt_text(instruction, inp),
        "chosen": sft_answer(instruction, inp),
        "rejected": _wrong_answer(instruction, inp, rng),
    }


def _kto_row(rng: random.Random, good: bool) -> dict[str, object]:
    """One judged completion (KTO): the right answer labelled true, or a wrong one labelled false."""
    row = _preference_row(rng)
    return {"prompt": row["prompt"], "completion": row["chosen" if good else "rejected"], "label": good}


def _kto_rows(rows: int, rng: random.Random) -> list[dict[str, object]]:
    """Desirable/undesirable rows in random order within each pair: any even-sized slice is balanced."""
    good = _unique(lambda: _kto_row(rng, True), (rows + 1) // 2, "kto")
    bad = _unique(lambda: _kto_row(rng, False), rows // 2, "kto")
    out: list[dict[str, object]] = []
    for i, row in enumerate(good):
        pair = [row] + ([bad[i]] if i < len(bad) else [])
        rng.shuffle(pair)
        out.extend(pair)  # type: ignore[arg-type]
    return out


def _text_sentence(rng: random.Random) -> str:
    """One sentence with a regularity: colour facts, counting down, or a fixed word order."""
    kind = rng.randrange(4)
    if kind == 0:
        thing = rng.choice(sorted(COLOURS))
        return f"the {thing} is {COLOURS[thing]}."
    if kind == 1:
        name, animal, n = rng.choice(NAMES), rng.choice(ANIMALS), rng.randint(2, 9)
        return f"{name} has {n} {animal}. {name} gives one away. now {name} has {n - 1} {animal}."
    if kind == 2:
        start = rng.randint(0, 6)
        return "counting: " + " ".join(NUMBER_WORDS[start : start + 4]) + "."
    return f"{rng.choice(NAMES)} walks to the {rng.choice(PLACES)} with a {rng.choice(WORDS)}."


def _text_document(rng: random.Random) -> str:
    return " ".join(_text_sentence(rng) for _ in range(rng.randint(2, 5)))


def _unique(make: Callable[[], object], rows: int, task: str) -> list[object]:
    """Draw until ``rows`` distinct items exist; distinct rows are what keeps the splits disjoint."""
    seen: set[str] = set()
    out: list[object] = []
    for _ in range(rows * _MAX_DRAWS_PER_ROW):
        if len(out) == rows:
            break
        item = make()
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(item)
    if len(out) < rows:
        raise DataError(
            f"could only make {len(out)} distinct {task!r} rows, {rows} were asked for",
            fix="ask for fewer rows",
            where="--rows",
        )
    return out


def _classification_rows(rows: int, rng: random.Random) -> list[dict[str, object]]:
    """Positive/negative pairs in random order, so any even-sized contiguous slice is exactly balanced."""
    pos = _unique(lambda: _classification_text(rng, "positive"), (rows + 1) // 2, "classification")
    neg = _unique(lambda: _classification_text(rng, "negative"), rows // 2, "classification")
    out: list[dict[str, object]] = []
    for i, text in enumerate(pos):
        pair = [{"text": text, "label": "positive"}]
        if i < len(neg):
            pair.append({"text": neg[i], "label": "negative"})
            rng.shuffle(pair)
        out.extend(pair)
    return out


def _check_style(task: str, style: str | None) -> None:
    allowed = {"chat": ("messages", "sharegpt"), "sft": ("alpaca",)}.get(task, ())
    if style is not None and style not in allowed:
        choices = ", ".join(allowed) if allowed else "none (leave it unset)"
        raise DataError(
            f"style {style!r} does not apply to task {task!r}",
            fix=f"use one of: {choices}",
            where="--style",
        )


def generate_rows(
    task: str, rows: int, seed: int, *, style: str | None = None
) -> list[dict[str, object]] | list[str]:
    """Make ``rows`` distinct rows (``text``: documents) for ``task``; the same seed gives the same rows."""
    if task not in TASKS:
        raise DataError(
            f"unknown synthetic task {task!r}",
            fix=f"use one of: {', '.join(TASKS)}",
            where="--task",
        )
    if rows < 0:
        raise DataError(f"expected a whole number >= 0, got {rows}", where="--rows")
    _check_style(task, style)
    rng = random.Random(f"llmft-synthetic-{task}-{seed}")
    if task == "classification":
        return _classification_rows(rows, rng)
    if task == "text":
        return [str(d) for d in _unique(lambda: _text_document(rng), rows, task)]
    if task == "kto":
        return _kto_rows(rows, rng)
    make = {"sft": _sft_row, "chat": _chat_row, "preference": _preference_row}[task]
    made = [r for r in _unique(lambda: make(rng), rows, task) if isinstance(r, dict)]
    if task == "chat" and style == "sharegpt":
        return [_to_sharegpt(r) for r in made]
    return made


def split_sizes(rows: int, validation_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Train/validation/test sizes; a non-zero fraction always gets at least one row."""
    for name, value in (("--validation-fraction", validation_fraction), ("--test-fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise DataError(f"expected a fraction in [0, 1), got {value}", fix=f"e.g. {name} 0.1", where=name)
    n_val = max(1, round(rows * validation_fraction)) if validation_fraction > 0 else 0
    n_test = max(1, round(rows * test_fraction)) if test_fraction > 0 else 0
    n_train = rows - n_val - n_test
    if n_train < 1:
        raise DataError(
            f"{rows} rows leave no training rows after validation ({n_val}) and test ({n_test})",
            fix="ask for more rows (e.g. --rows 200) or smaller fractions",
            where="--rows",
        )
    return n_train, n_val, n_test


def _write_split(path: Path, items: Sequence[object], *, as_text: bool) -> None:
    """UTF-8, '\\n' line ends, keys in insertion order: byte-identical files for the same seed."""
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for item in items:
            fh.write((str(item) if as_text else json.dumps(item, ensure_ascii=False)) + "\n")


def write_synthetic_data(
    task: str,
    out_dir: str | Path,
    *,
    rows: int = 200,
    seed: int = 0,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    style: str | None = None,
) -> dict[str, Path]:
    """Write ``train``/``validation``/``test`` files (``.jsonl``; ``.txt`` for text), skipping empty splits.

    Splits are cut from one set of distinct rows, so they never share a row.
    """
    if rows < 1:
        raise DataError(f"expected a whole number > 0, got {rows}", fix="e.g. --rows 200", where="--rows")
    n_train, n_val, n_test = split_sizes(rows, validation_fraction, test_fraction)
    items = generate_rows(task, rows, seed, style=style)
    out = writable_folder(out_dir, DataError)
    as_text = task == "text"
    suffix = ".txt" if as_text else ".jsonl"
    bounds = {
        "train": (0, n_train),
        "validation": (n_train, n_train + n_val),
        "test": (n_train + n_val, rows),
    }
    written: dict[str, Path] = {}
    for split, (start, end) in bounds.items():
        if end <= start:
            continue
        path = out / f"{split}{suffix}"
        try:
            _write_split(path, items[start:end], as_text=as_text)
        except OSError as err:
            raise DataError(f"cannot write {path}: {err.strerror}", fix=WRITE_FIX, where="--out") from None
        written[split] = path
    return written


WRITE_FIX = "choose a folder you can write to (--out)"


def writable_folder(out_dir: str | Path, error: type[LlmftError]) -> Path:
    """``out_dir``, made if need be; a path that cannot be a folder (a file, no permission, a read-only
    disk) is ``error`` naming --out, not an OSError from deep inside a write."""
    out = Path(out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise error(f"{out} is a file, not a folder", fix=WRITE_FIX, where="--out") from None
    except OSError as err:
        raise error(f"cannot make the folder {out}: {err.strerror}", fix=WRITE_FIX, where="--out") from None
    return out


__all__ = [
    "NEGATIVE_WORDS",
    "POSITIVE_WORDS",
    "TASKS",
    "classify_text",
    "generate_rows",
    "sft_answer",
    "split_sizes",
    "write_synthetic_data",
]
