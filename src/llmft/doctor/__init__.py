"""llmft.doctor."""
