"""Files in any supported format, on the local filesystem or any fsspec URL."""
