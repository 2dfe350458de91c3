"""Per-row control of a batched ``model.generate`` call, checked between decode steps.

A server batches many clients' prompts into one KV-cache generation, yet each client wants its own stop
strings, its text as soon as it is made, and to stop costing compute when it disconnects. ``model.generate``
calls its stopping criteria once per decode step with every row's ids so far, and takes back one "done" flag
per row: the one place where all three fit without a second decoding loop. A row marked done is padded from
then on and its cache row rides along until the batch ends (or every row is done, which ends it at once).

Streamed text never has to be taken back: text that could still become a stop string (or the textual ChatML
end marker) and half-decoded characters are held until the next step settles them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

END_MARKER = "<|im_end|>"  # ChatML's end-of-turn when a tokenizer has no such token (see batch.decode_output)


@dataclass(frozen=True)
class RowControl:
    """What one prompt asks beyond the batch's sampling. ``on_text`` gets each new piece of the answer (the
    pieces join to the final text); ``cancelled`` is polled once per decode step; ``max_new_tokens`` ends this
    row sooner than the batch's own limit (rows of one batch may want different lengths)."""

    stop: tuple[str, ...] = ()
    max_new_tokens: int | None = None
    on_text: Callable[[str], None] | None = None
    cancelled: Callable[[], bool] | None = None


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """The text before the earliest stop string, and whether one was found (OpenAI leaves the stop out)."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(found)], True) if found else (text, False)


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters could still grow into a stop string or the end marker."""
    longest = 0
    for stop in (*stops, END_MARKER):
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class RowWatch:
    """The state of every row of one batch: tokens seen, text shown, why it stopped."""

    def __init__(self, controls: list[RowControl], tokenizer: object, stops: set[int]) -> None:
        self.controls, self.tokenizer, self.stops = controls, tokenizer, stops
        self.ids: list[list[int]] = [[] for _ in controls]
        self.shown = ["" for _ in controls]
        self.done: list[str | None] = [None for _ in controls]  # why it stopped: "eos", "stop", ...

    def seen(self, row: int) -> int:
        """Tokens the row made up to and including the step that stopped it (0: it never stopped early)."""
        return len(self.ids[row]) if self.done[row] else 0

    def cancelled(self, row: int) -> bool:
        return self.done[row] == "cancelled"

    def criterion(self, start: int) -> object:
        """The stopping criteria for ``model.generate``; new tokens begin at column ``start``."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        watch = self

        class _Criterion(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: object, **kwargs: object) -> torch.Tensor:
                new = input_ids[:, start:].tolist()
                flags = [watch.step(row, ids) for row, ids in enumerate(new)]
                return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)

        return StoppingCriteriaList([_Criterion()])

    def step(self, row: int, new: list[int]) -> bool:
        """Look at a row after a decode step; True once the row is done."""
        if self.done[row]:
            return True
        self.ids[row] = new
        control = self.controls[row]
        if new and new[-1] in self.stops:
            self.done[row] = "eos"  # decode_output cuts there; the final flush streams the rest
        elif control.cancelled is not None and control.cancelled():
            self.done[row] = "cancelled"
        elif control.max_new_tokens is not None and len(new) >= control.max_new_tokens:
            self.done[row] = "length"
        elif control.stop or control.on_text is not None:
            self._look_at_text(row, new)
        return self.done[row] is not None

    def _look_at_text(self, row: int, new: list[int]) -> None:
        control = self.controls[row]
        text = self.tokenizer.decode(new, skip_special_tokens=True)  # type: ignore[attr-defined]
        text, hit = cut_at_stop(text, control.stop)
        if hit:
            self.done[row] = "stop"
            return  # the final flush streams the text before the stop
        if text.endswith("\ufffd"):  # a character still being assembled from byte tokens
            return
        ready = text[: len(text) - _held_back(text, control.stop)]
        self._emit(row, ready)

    def _emit(self, row: int, text: str) -> None:
        on_text = self.controls[row].on_text
        if on_text is not None and text.startswith(self.shown[row]) and len(text) > len(self.shown[row]):
            on_text(text[len(self.shown[row]) :])
            self.shown[row] = text

    def flush(self, row: int, final: str) -> None:
        """Stream what is left of the row's final text."""
        self._emit(row, final)
