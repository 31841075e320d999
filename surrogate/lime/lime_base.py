"""``lime.lime_base``'s name, so that ``import surrogate.lime as lime`` is the only change."""

from surrogate.lime._engine import LimeBase

__all__ = ["LimeBase"]
