"""Command modules of ``python -m training``."""
