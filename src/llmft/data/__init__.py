"""llmft.data."""
