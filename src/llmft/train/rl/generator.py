"""Where online RL's completions come from: a ``Generator`` the rollout source asks for token ids.

llmft's own is ``LocalGenerator``: the policy being trained, with its adapter on, sampling with llmft's
batched KV-cache generation (generate/batch.py) in eval mode under no grad. On CPU and small GPUs that is
the whole story: no second copy of the weights, nothing to keep in sync.

The seam for a serving engine (vLLM) on GPUs is this protocol and nothing else; the rollout source never
calls ``model.generate`` itself. A vLLM generator would:
- hold an ``vllm.LLM`` built from the same base model (``enable_prefix_caching``, a memory share beside
  training, as TRL's ``vllm_mode="colocate"``), and the policy module it mirrors;
- at the start of ``generate``, when the policy's weights changed since its last call (an optimizer step
  was made), push them to the engine: the adapter merged into a copy of each base weight, loaded with
  ``llm.llm_engine.model_executor.driver_worker.model_runner.model.load_weights`` (or LoRA requests,
  which avoid the merge), then ``llm.reset_prefix_cache()``;
- call ``llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], SamplingParams(n=1,
  temperature=..., top_p=..., top_k=... or -1, max_tokens=max_new_tokens, seed=seed))`` and return each
  output's ``token_ids``, cut after the first stop id (``stop_ids`` must be the ids the run's chat template
  ends a turn with: the model's generation config, as settled by generate/chat_template.py).
Its sampler differs from transformers', so completions (not their statistics) differ from a CPU run's; the
importance ratio is still computed by the training forward pass (old log-probs are recomputed whenever
``num_iterations`` > 1), so the loss stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from llmft.generate.batch import Sampling, generate_raw, generation_config, stop_ids


class Generator(Protocol):
    """Completions for prompts: ``generate`` returns, for each prompt (token ids), the sampled token ids,
    each cut after its first stop id (one in ``stop_ids``) or at ``max_new_tokens``; ``seed`` fixes the
    sampling stream, so the same prompts, weights and seed give the same completions."""

    stop_ids: set[int]

    def generate(self, prompts: list[list[int]], seed: int) -> list[list[int]]: ...


@dataclass
class LocalGenerator:
    """The policy itself through llmft's batched KV-cache generation (see the module's docstring)."""

    model: torch.nn.Module
    tokenizer: object
    sampling: Sampling

    @property
    def stop_ids(self) -> set[int]:  # type: ignore[override]
        return stop_ids(generation_config(self.model, self.tokenizer, self.sampling))

    def generate(self, prompts: list[list[int]], seed: int) -> list[list[int]]:
        sampling = Sampling(
            max_new_tokens=self.sampling.max_new_tokens,
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            top_k=self.sampling.top_k,
            seed=seed,
            batch_size=max(1, len(prompts)),  # one batch: every prompt of the micro-batch generated together
        )
        ids, _ = generate_raw(self.model, self.tokenizer, prompts, sampling)
        return ids
