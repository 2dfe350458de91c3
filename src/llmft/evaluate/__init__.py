"""llmft.evaluate."""
