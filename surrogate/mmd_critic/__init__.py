"""MMD-critic: prototypes and criticisms that summarise a data set (Kim, Khanna, Koyejo 2016).

``MMDCritic`` is the estimator; ``median_heuristic_gamma`` is the default kernel width rule.
"""

from surrogate.mmd_critic._estimator import MMDCritic
from surrogate.mmd_critic._gamma import median_heuristic_gamma

__all__ = ["MMDCritic", "median_heuristic_gamma"]
