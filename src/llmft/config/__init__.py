"""llmft.config."""
