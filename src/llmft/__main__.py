"""`python -m llmft ...`: the `llmft` command, also as launchers start it (`torchrun ... -m llmft train`)."""

from llmft.cli.main import main

if __name__ == "__main__":
    main()
