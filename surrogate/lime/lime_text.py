"""``lime.lime_text``'s names, so that ``import surrogate.lime as lime`` is the only change
(the tokenisers are ``lime``'s own, which the text explainer uses)."""

from lime.lime_text import IndexedCharacters, IndexedString, TextDomainMapper

from surrogate.lime.text import LimeTextExplainer

__all__ = ["IndexedCharacters", "IndexedString", "LimeTextExplainer", "TextDomainMapper"]
