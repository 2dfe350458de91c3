"""llmft.train."""
