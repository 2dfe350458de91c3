"""Search spaces live in ``llmft.config.space`` (config/ checks them and imports nothing above it);
re-exported here for the search backends."""

from llmft.config.space import SHORT_NAMES, Space, SpaceError, parse_space, resolve_path

__all__ = ["SHORT_NAMES", "Space", "SpaceError", "parse_space", "resolve_path"]
