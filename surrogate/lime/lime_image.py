"""``lime.lime_image``'s names, so that ``import surrogate.lime as lime`` is the only change."""

from surrogate.lime.explanation import ImageExplanation
from surrogate.lime.image import LimeImageExplainer

__all__ = ["ImageExplanation", "LimeImageExplainer"]
