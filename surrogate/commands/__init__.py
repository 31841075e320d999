"""Command modules of ``python -m surrogate``."""
