"""llmft.models."""
