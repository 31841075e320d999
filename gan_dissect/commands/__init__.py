"""Command modules of ``python -m gan_dissect``."""
