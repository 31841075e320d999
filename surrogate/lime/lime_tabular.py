"""``lime.lime_tabular``'s names, so that ``import surrogate.lime as lime`` is the only change."""

from surrogate.lime.tabular import LimeTabularExplainer, RecurrentTabularExplainer

__all__ = ["LimeTabularExplainer", "RecurrentTabularExplainer"]
