"""Generation after training: the chat template and stop tokens a run settles, loading a run, batched
generation, the terminal chat. Shared by `llmft generate`, `llmft chat` and evaluation by generation.

Nothing heavy is imported here: ``llmft --help`` must stay torch-free.
"""
