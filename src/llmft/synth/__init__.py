"""llmft.synth: synthetic fixtures for tests, demos and benchmarks (tiny random-weight models with local
tokenizers in ``models``, learnable data sets in ``data``); nothing a real run imports."""
