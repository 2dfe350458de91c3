"""After training: merge an adapter into its base (``merge``) and write other formats (``gguf``)."""
