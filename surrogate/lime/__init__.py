"""LIME (Ribeiro, Singh and Guestrin, 2016): local linear explanations of any black box.

Fast and reproducible, with ``lime`` 0.2.0.1's interface and module layout, so that switching
is an import: ``import lime`` becomes ``import surrogate.lime as lime`` (``lime.lime_tabular``,
``lime.lime_image``, ``lime.lime_text``, ``lime.lime_base`` and ``lime.explanation`` keep their
names), or::

    from surrogate.lime import LimeTabularExplainer

    explainer = LimeTabularExplainer(X_train, feature_names=names, random_state=0)
    explanation = explainer.explain_instance(x, model.predict_proba, num_features=5)
    explanation.as_list()

- :class:`LimeTabularExplainer`, :class:`LimeImageExplainer`, :class:`LimeTextExplainer`,
  :class:`RecurrentTabularExplainer`: ``explain_instance(instance, predict_fn, ...)`` and
  ``explain_many(instances, predict_fn, ...)``, which scores many instances' neighbours in few
  large black-box calls.
- :func:`fit_surrogate` / :class:`LimeBase`: the weighted-ridge engine on given neighbours,
  weights and labels (numbers equal to ``lime``'s).
- :class:`Explanation` / :class:`ImageExplanation`: ``as_list``, ``as_map``, ``score`` and
  ``local_pred`` (``lime``'s, of the last label; ``scores`` / ``local_preds`` of each),
  ``intercept``, ``to_json`` / ``from_json``, ``to_html`` / ``as_html`` / ``show_in_notebook``.
- :func:`submodular_pick` / :class:`SubmodularPick`: SP-LIME.
- :func:`deletion_curve`: faithfulness against random orders.

Deliberately unlike ``lime``: the random stream is our own (the same ``random_state`` gives
other neighbours than ``lime``'s, and an integer seed makes each explanation a function of the
instance alone); classification scores in [0, 1] whose rows do not sum to 1 are refused where
``lime`` warns.
"""

# lime's module layout: `import surrogate.lime as lime` keeps `lime.lime_tabular.X` working.
from surrogate.lime import lime_base, lime_image, lime_tabular, lime_text
from surrogate.lime._engine import (
    FEATURE_SELECTIONS,
    LimeBase,
    SurrogateFit,
    exponential_kernel,
    fit_surrogate,
)
from surrogate.lime.deletion import DeletionCurve, deletion_curve
from surrogate.lime.explanation import Explanation, ImageExplanation
from surrogate.lime.image import LimeImageExplainer
from surrogate.lime.submodular import SubmodularPick, SubmodularPickResult, submodular_pick
from surrogate.lime.tabular import LimeTabularExplainer, RecurrentTabularExplainer
from surrogate.lime.text import LimeTextExplainer

__all__ = [
    "FEATURE_SELECTIONS",
    "DeletionCurve",
    "Explanation",
    "ImageExplanation",
    "LimeBase",
    "LimeImageExplainer",
    "LimeTabularExplainer",
    "LimeTextExplainer",
    "RecurrentTabularExplainer",
    "SubmodularPick",
    "SubmodularPickResult",
    "SurrogateFit",
    "deletion_curve",
    "exponential_kernel",
    "fit_surrogate",
    "lime_base",
    "lime_image",
    "lime_tabular",
    "lime_text",
    "submodular_pick",
]
