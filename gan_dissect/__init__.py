"""seethrough's inside view: explain a generator by what its units draw.

Dissection of units by segmentation overlap, ablation and insertion of units with their causal
effect, generator-constrained activation maximisation, and inversion of real images.
"""

__version__ = "0.1.0"
