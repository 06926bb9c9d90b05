"""Model definitions, loading and generation.

Plain Python + PyTorch + transformers: never Django."""
