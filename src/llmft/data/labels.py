"""The label value that carries no loss, shared by tokenization, batching, the loss and the preview."""

from __future__ import annotations

IGNORE = -100  # PyTorch's cross_entropy default ignore_index, and what transformers' models expect
