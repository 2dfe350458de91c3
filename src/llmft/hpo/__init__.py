"""llmft.hpo."""
