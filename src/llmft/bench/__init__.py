"""`llmft bench`: llmft's training against the scripts people write today, on the same machine and data.

Contenders (each in its own subprocess, interleaved round by round, median of the rounds):
``llmft`` (our loop, from a run config), ``hf`` (a plain ``transformers.Trainer`` + peft script with a
dynamic-padding collator), ``trl`` (``trl.SFTTrainer`` with its defaults) and ``trl-packed`` (the same with
``packing=True``). All of them train on the token ids llmft's data pipeline produces, so they see
identical examples; every figure is measured by the same probes (``probe.py``) and the same FLOP formula
(``flops.py``). See docs/BENCHMARK.md for the command, the formula and how to read the table.
"""
