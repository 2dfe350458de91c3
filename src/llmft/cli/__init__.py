"""llmft.cli."""
