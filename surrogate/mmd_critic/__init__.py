"""MMD-critic: prototypes and criticisms that summarise a data set (Kim, Khanna, Koyejo 2016).

``MMDCritic`` is the estimator (arrays and DataFrames); ``median_heuristic_gamma`` is the
default kernel width rule; ``KernelEmbedding`` is the fitted map from a table's rows to the
points its kernel compares (``MMDCritic.embedding_``).
"""

from surrogate.mmd_critic._embedding import KernelEmbedding
from surrogate.mmd_critic._estimator import MMDCritic
from surrogate.mmd_critic._gamma import median_heuristic_gamma

__all__ = ["KernelEmbedding", "MMDCritic", "median_heuristic_gamma"]
