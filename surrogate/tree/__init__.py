"""Global decision-tree surrogates: a tree a person can read, fitted to what a black box does.

:class:`TreeSurrogate` grows a depth-limited tree on the data and on oracle samples labelled by
the black box, refines its splits, and measures its fidelity on held-out rows.
"""

from surrogate.tree._curve import curve_rows, fidelity_curve, fit_each_depth
from surrogate.tree._estimator import TreeSurrogate
from surrogate.tree._plots import plot_fidelity_curve
from surrogate.tree._structure import TreeStructure

__all__ = [
    "TreeStructure",
    "TreeSurrogate",
    "curve_rows",
    "fidelity_curve",
    "fit_each_depth",
    "plot_fidelity_curve",
]
