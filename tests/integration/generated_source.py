"""A run whose batches are computed on the fly, for tests/integration/test_batch_source.py.

`python -m tests.integration.generated_source CONFIG [--resume]` adds the objective `generated` through the
objective table and registry alone (a row and a module), whose module returns its own batch source: each
window's rows are drawn from a random stream that lives in the source (a stand-in for rollouts sampled from
the model), so a resume continues exactly only if the checkpoint carried the stream's state.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from llmft.config import objectives as table
from llmft.config.load import validate_dict
from llmft.pipeline import run
from llmft.train.batches import Batch, FixedBatches, Window
from llmft.train.objectives import Context, sft
from llmft.train.objectives.registry import REGISTRY

LENGTH = 12  # tokens per generated row


class OnTheFly:
    """The fixed data's step count, but each window's rows drawn from ``stream`` as it is asked."""

    def __init__(self, fixed: FixedBatches, vocab: int, seed: int) -> None:
        self.fixed, self.vocab = fixed, vocab
        self.stream = torch.Generator().manual_seed(seed)
        self.served = 0  # windows made so far: part of the state, checked by the test

    def total_steps(self) -> int:
        return self.fixed.total_steps()

    def window_count(self, epoch: int) -> int:
        return self.fixed.window_count(epoch)

    def window(self, epoch: int, index: int) -> Window:
        size = self.fixed.cfg.gradient_accumulation_steps * self.fixed.dist.world_size
        rows = [self._batch() for _ in range(size)]
        self.served += 1
        return Window(self.fixed.dist.share(rows), size, lambda: rows[0])

    def _batch(self) -> Batch:
        ids = torch.randint(3, self.vocab, (self.fixed.cfg.batch_size, LENGTH), generator=self.stream)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}

    def state_dict(self) -> dict[str, Any]:
        return {"stream": self.stream.get_state(), "served": self.served}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.set_state(state["stream"])
        self.served = int(state["served"])


class Generated:
    """The `generated` objective: sft's rows, loss and metrics, with batches made by ``OnTheFly``."""

    NAME = "generated"
    DATA = sft.DATA
    NEEDS_REFERENCE = False
    encode = staticmethod(sft.encode)
    collate = staticmethod(sft.collate)
    build = staticmethod(sft.build)

    @staticmethod
    def batch_source(context: Context, fixed: FixedBatches) -> OnTheFly:
        return OnTheFly(fixed, len(context.tokenizer), context.sections.seed)  # type: ignore[arg-type]


def main(config_path: Path, resume: bool) -> int:
    table.ROWS["generated"] = table.Row("generated", Generated.DATA)
    REGISTRY["generated"] = Generated  # type: ignore[assignment]
    config, problems = validate_dict(yaml.safe_load(config_path.read_text(encoding="utf-8")))
    assert config is not None, problems
    # The schema's values were fixed at import; the table and registry are what the run reads.
    config = config.model_copy(
        update={"training": config.training.model_copy(update={"objective": "generated"})}
    )
    run(config, say=print, progress=False, resume=resume or None, command=f"llmft train {config_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), "--resume" in sys.argv[2:]))
