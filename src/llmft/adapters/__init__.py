"""llmft.adapters."""
