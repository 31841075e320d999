"""``TreeSurrogate``: a depth-limited tree that imitates a black box, with measured fidelity."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from surrogate.tree._plots import plot_tree
from surrogate.tree._refine import refine
from surrogate.tree._report import TreeNames, export_text, leaf_rules, rules_text, tree_nodes
from surrogate.tree._sampling import DEFAULTS as SAMPLER_DEFAULTS
from surrogate.tree._sampling import SAMPLERS, Sampler, draw_oracle_samples
from surrogate.tree._structure import TreeStructure
from surrogate.tree._table import TableDesign
from surrogate.tree._targets import ClassTargets, ScoreTargets, Targets
from training.blackbox import BlackBox, as_black_box
from training.errors import ConfigError, InputError
from training.sources import match_labels
from training.tables import TableSchema

Task = Literal["auto", "classification", "regression"]
_MAX_DEPTH = 32  # a surrogate is meant to be read; deeper trees are no explanation
_MAX_LEAVES = 256


def _is_classification_or_unfitted(surrogate: TreeSurrogate) -> bool:
    return getattr(surrogate, "task_", "classification") == "classification"


class TreeSurrogate(BaseEstimator):
    """A global surrogate: a small decision tree fitted to what a black box predicts.

    The tree is grown greedily (scikit-learn's CART) on the data and on *oracle samples*,
    extra points drawn near the data and labelled by the black box (TREPAN, Craven and Shavlik
    1996), so that deep nodes, where few real rows remain, still have evidence. Its splits are
    then refined by tree alternating optimisation to disagree with the black box on fewer
    samples (see :mod:`surrogate.tree._refine`). Fidelity, the share of held-out real rows on
    which tree and black box agree (R^2 for scores), is measured on rows the tree never saw.

    ``X`` is a numeric array or a table: a pandas DataFrame (numeric, text, categorical and
    boolean columns, missing values) or an array whose ``categorical_features`` hold integer
    codes. A table is read by :class:`~training.tables.TableSchema`; the black box is called
    with what it was fitted on (a DataFrame with the original columns and dtypes for a model
    fitted on one, such as an unchanged scikit-learn ``Pipeline``), oracle samples only hold
    categories seen in ``X``, and the tree splits a one-hot design matrix, so that its rules
    read ``sex in {female}``, ``age is missing`` or ``age <= 30``.

    Parameters
    ----------
    max_depth:
        Deepest level of the tree (the root is level 0), at most 32; ``None`` leaves
        ``max_leaf_nodes`` as the limit (and 32 levels).
    max_leaf_nodes:
        Most leaves; the tree is then grown best-first.
    oracle_samples:
        Oracle samples drawn per training row; 0 fits a plain tree on the real rows only.
    sampler:
        How oracle samples are drawn: ``"neighbours"`` (a point between a row and one of its
        nearest rows, plus noise), ``"local"`` (a Gaussian shaped like the row's
        neighbourhood) or ``"gaussian"`` (a row plus independent noise); see
        :mod:`surrogate.tree._sampling`.
    noise:
        Spread of the samples: the Gaussian noise's std as a fraction of each feature's std
        (``"gaussian"``, ``"neighbours"``; default 0.3), or the scale of the neighbourhood's
        covariance (``"local"``; default 1.0).
    n_neighbors:
        Nearest rows a sample is drawn towards (default 5) or shaped by (default 15).
    criterion:
        Impurity used to grow a classification tree (``"entropy"``, ``"gini"`` or
        ``"log_loss"``); regression trees use squared error.
    refine_passes:
        Most passes of split refinement after growth; 0 keeps the greedy tree.
    validation_fraction:
        Share of the rows held out (stratified by the black box's class) to measure
        ``fidelity_``; they are neither fitted nor used to draw oracle samples. 0 uses every
        row for fitting and leaves ``fidelity_`` as ``None`` (measure it with :meth:`score`).
    task:
        ``"classification"`` fits the black box's predicted class (the arg-max of its scores),
        ``"regression"`` its scores; ``"auto"`` chooses classification for black boxes that
        return probabilities or have ``classes_``.
    random_state:
        Seed of the held-out split, the oracle samples and the tree's tie breaks.
    categorical_features:
        Names or indices of the categorical columns of ``X``. ``None`` takes a DataFrame's
        non-numeric columns, and none of an array. Given for an array (``[]`` included), the
        array is a table whose categorical columns hold codes 0, 1, ... and whose NaN are
        missing values; a plain numeric array needs complete rows.
    real_share:
        Share of the training weight the real rows carry against their oracle samples (each
        real row weighs alike, each oracle sample alike); the tree is then grown twice, on
        every sample and on the real rows alone, both are refined on every sample, and the one
        that disagrees less (weighted) is kept. ``None`` weighs every sample alike and grows
        once. ``"auto"``: 0.5 for a table with categorical columns or missing values, whose
        oracle samples can only copy categories (on the Titanic and penguin tables, equal
        weights put the surrogate below a plain tree at some depths; see
        ``benchmarks/tree_tables.py``); ``None`` for numbers only.

    Attributes
    ----------
    tree_ : TreeStructure
        The fitted tree (splits, per-node values and support).
    task_ : str
        ``"classification"`` or ``"regression"``.
    classes_ : ndarray
        Class labels (classification): the black box's ``classes_`` or ``0..k-1``.
    n_outputs_ : int
        Classes (classification) or score columns (regression).
    fidelity_ : float or None
        Agreement with the black box on the held-out rows (R^2 for regression).
    accuracy_, black_box_accuracy_ : float or None
        Accuracy (R^2) of the tree and of the black box on the held-out rows' true ``y``.
    training_fidelity_ : float
        Agreement with the black box on the real rows the tree was fitted on.
    n_oracle_samples_ : int
        Oracle samples labelled by the black box.
    refine_passes_ : int
        Refinement passes run.
    n_features_in_, feature_names_in_
        As in scikit-learn.
    table_ : TableSchema or None
        The columns of a table ``X`` (``None`` for a plain numeric array).
    design_ : TableDesign
        How codes become the design matrix the tree splits (one-hot categories, missing
        indicators, missing numbers filled with the training rows' median).
    """

    def __init__(
        self,
        *,
        max_depth: int | None = 5,
        max_leaf_nodes: int | None = None,
        oracle_samples: int = 20,
        sampler: Sampler = "neighbours",
        noise: float | None = None,
        n_neighbors: int | None = None,
        criterion: str = "entropy",
        refine_passes: int = 10,
        validation_fraction: float = 0.2,
        task: Task = "auto",
        random_state: int | np.random.RandomState | None = None,
        categorical_features: Sequence[str | int] | None = None,
        real_share: float | Literal["auto"] | None = "auto",
    ) -> None:
        self.max_depth = max_depth
        self.max_leaf_nodes = max_leaf_nodes
        self.oracle_samples = oracle_samples
        self.sampler = sampler
        self.noise = noise
        self.n_neighbors = n_neighbors
        self.criterion = criterion
        self.refine_passes = refine_passes
        self.validation_fraction = validation_fraction
        self.task = task
        self.random_state = random_state
        self.categorical_features = categorical_features
        self.real_share = real_share

    def fit(self, X: Any, black_box: Any, y: Any = None) -> TreeSurrogate:
        """Fit the tree to what ``black_box`` predicts on ``X`` and on oracle samples near it.

        ``black_box`` is anything :class:`training.blackbox.BlackBox` accepts (an sklearn
        estimator, a torch module, a callable, or a ``BlackBox``). For a table ``X`` it is
        called with the table's rows as the model was fitted on them; a ``BlackBox`` built
        without a table is rebuilt around its model with one (its method, probabilities,
        softmax and batch size kept), one with a table of its own is handed DataFrames. ``y``
        (true labels or targets) is optional and only used to report ``accuracy_``; labels
        must be among the black box's classes (compared by value). Returns ``self``.
        """
        self._check_parameters()
        codes = self._fit_codes(X)
        if codes.shape[0] < 2:
            raise InputError(f"a tree surrogate needs at least 2 rows, got {codes.shape[0]} sample")
        y = _checked_labels(y, len(codes))
        box = self._box(black_box)
        scores = box(codes)
        self.task_ = self._resolve_task(box)
        rng = check_random_state(self.random_state)
        if self.task_ == "classification":
            self.classes_, labels = _classes(box, scores)
            self.n_outputs_ = len(self.classes_)
            truth = None if y is None else self._truth(y)
            fit_rows, held_out = self._split(len(codes), labels, rng)
            targets: Targets = ClassTargets(labels[fit_rows], len(self.classes_))
        else:
            if hasattr(self, "classes_"):  # left from an earlier fit to classes
                del self.classes_
            self.n_outputs_ = scores.shape[1]
            truth = None if y is None else self._truth(y)
            fit_rows, held_out = self._split(len(codes), None, rng)
            targets = ScoreTargets(scores[fit_rows])
        codes_fit = codes[fit_rows]
        self.design_ = TableDesign.of_codes(self.table_, codes_fit)
        X_fit = self.design_.matrix(codes_fit)
        default_noise, default_neighbours = SAMPLER_DEFAULTS[self.sampler]
        oracle = draw_oracle_samples(
            codes_fit,
            self.oracle_samples,
            sampler=self.sampler,
            noise=default_noise if self.noise is None else self.noise,
            n_neighbors=default_neighbours if self.n_neighbors is None else self.n_neighbors,
            rng=rng,
            categorical=[] if self.table_ is None else self.table_.categorical_indices,
            units=None if self.table_ is None else self._units(X_fit),
        )
        self.n_oracle_samples_ = len(oracle)
        if len(oracle):
            targets = _with_oracle_targets(targets, box(oracle), box)
            X_fit = np.vstack([X_fit, self.design_.matrix(oracle)])
        is_real = np.arange(len(X_fit)) < len(fit_rows)
        share = self._real_share()
        if share is None or not len(oracle):
            self.tree_ = self._grow(X_fit, targets, rng)
            self.refine_passes_ = refine(self.tree_, X_fit, targets, self.refine_passes)
        else:
            weight = np.where(is_real, share / len(fit_rows), (1 - share) / len(oracle))
            targets = _weighted(targets, weight * len(X_fit))  # mean weight 1
            self.tree_, self.refine_passes_ = self._grow_twice(X_fit, targets, is_real, rng)
        self.tree_.fill_statistics(X_fit, targets, is_real)
        self.tree_ = self.tree_.pruned(same_prediction=self.task_ == "classification")
        self.training_fidelity_ = self._agreement(codes_fit, scores[fit_rows], box)
        self.fidelity_ = self.accuracy_ = self.black_box_accuracy_ = None
        if held_out.size:
            self.fidelity_ = self._agreement(codes[held_out], scores[held_out], box)
            if truth is not None:
                self.accuracy_ = self._matched(
                    self._tree_predictions(codes[held_out]), truth[held_out]
                )
                self.black_box_accuracy_ = self._matched(
                    self._box_predictions(scores[held_out], box), truth[held_out]
                )
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The tree's class labels (classification) or scores (regression) for ``X``."""
        check_is_fitted(self, "tree_")
        values = self.tree_.value[self._leaves(self._codes(X))]
        if self.task_ == "classification":
            return np.asarray(self.classes_[values.argmax(axis=1)])
        return values[:, 0] if self.n_outputs_ == 1 else values

    @available_if(_is_classification_or_unfitted)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class shares of the training samples in each row's leaf (classification only)."""
        check_is_fitted(self, "tree_")
        return np.asarray(self.tree_.value[self._leaves(self._codes(X))])

    def apply(self, X: Any) -> np.ndarray:
        """Id of the leaf (a node of ``tree_``) that each row of ``X`` reaches."""
        check_is_fitted(self, "tree_")
        return self._leaves(self._codes(X))

    def score(self, X: Any, black_box: Any) -> float:
        """Fidelity on ``X``: agreement with ``black_box`` (R^2 against its scores)."""
        check_is_fitted(self, "tree_")
        codes = self._codes(X)
        box = self._box(black_box)
        return self._agreement(codes, box(X if _is_frame(X) else codes), box)

    def black_box_predictions(self, X: Any, black_box: Any) -> np.ndarray:
        """What ``black_box`` predicts for ``X``, read as the tree reads it in ``fit``: class
        labels of ``classes_`` (classification) or scores (regression), comparable with
        :meth:`predict` row by row."""
        check_is_fitted(self, "tree_")
        codes = self._codes(X)
        box = self._box(black_box)
        predictions = self._box_predictions(box(X if _is_frame(X) else codes), box)
        if self.task_ == "classification":
            return np.asarray(self.classes_[predictions])
        return predictions

    def accuracy_on(self, X: Any, y: Any) -> float:
        """Accuracy (R^2 for regression) of the tree on true labels ``y``; a label that is
        not among ``classes_`` is an :class:`InputError` that names it."""
        check_is_fitted(self, "tree_")
        codes = self._codes(X)
        labels = _checked_labels(y, len(codes))
        assert labels is not None
        return self._matched(self._tree_predictions(codes), self._truth(labels))

    def black_box_accuracy_on(self, X: Any, black_box: Any, y: Any) -> float:
        """Accuracy (R^2) of ``black_box`` on true labels ``y``, its scores read as in ``fit``."""
        check_is_fitted(self, "tree_")
        codes = self._codes(X)
        labels = _checked_labels(y, len(codes))
        assert labels is not None
        box = self._box(black_box)
        scores = box(X if _is_frame(X) else codes)
        return self._matched(self._box_predictions(scores, box), self._truth(labels))

    def get_depth(self) -> int:
        """Depth of the fitted tree."""
        check_is_fitted(self, "tree_")
        return self.tree_.max_depth

    def get_n_leaves(self) -> int:
        """Leaves of the fitted tree."""
        check_is_fitted(self, "tree_")
        return self.tree_.n_leaves

    def rules(
        self,
        feature_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """One rule per leaf, best-supported first: ``conditions`` (readable intervals),
        ``prediction``, ``support`` (real training rows in the leaf), ``support_share``,
        ``oracle_samples`` and ``purity`` (share of the leaf's samples in its class)."""
        return leaf_rules(self._names(feature_names, output_names))

    def export_text(
        self,
        feature_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        *,
        as_rules: bool = False,
    ) -> str:
        """The tree as indented text, or with ``as_rules`` one ``if ... then`` line per leaf.

        ``feature_names`` default to the fitted DataFrame's columns or ``x0, x1, ...``;
        ``output_names`` to the class labels (classification) or ``score`` columns.
        """
        names = self._names(feature_names, output_names)
        if as_rules:
            return rules_text(leaf_rules(names), names.classification)
        return export_text(names)

    def to_dict(
        self,
        feature_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """The fitted surrogate as JSON-ready data: parameters, measured figures, nodes, rules."""
        names = self._names(feature_names, output_names)
        return {
            "parameters": self.get_params(),
            "task": self.task_,
            "outputs": names.outputs,
            "features": names.columns,
            "table": None if self.table_ is None else self.table_.describe(),
            "depth": self.get_depth(),
            "n_leaves": self.get_n_leaves(),
            "fidelity": self.fidelity_,
            "accuracy": self.accuracy_,
            "black_box_accuracy": self.black_box_accuracy_,
            "training_fidelity": self.training_fidelity_,
            "n_oracle_samples": self.n_oracle_samples_,
            "refine_passes": self.refine_passes_,
            "nodes": tree_nodes(names),
            "rules": leaf_rules(names),
        }

    def plot(
        self,
        feature_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        *,
        max_depth: int = 4,
    ) -> Any:
        """A matplotlib figure of the tree's top ``max_depth`` levels (see ``plot_tree``)."""
        return plot_tree(self._names(feature_names, output_names), max_depth=max_depth)

    # ---- helpers ------------------------------------------------------------------------

    def _check_parameters(self) -> None:
        if self.max_depth is None and self.max_leaf_nodes is None:
            raise ConfigError("set max_depth or max_leaf_nodes: an unlimited tree is unreadable")
        _check_int("max_depth", self.max_depth, 1, _MAX_DEPTH, optional=True)
        _check_int("max_leaf_nodes", self.max_leaf_nodes, 2, _MAX_LEAVES, optional=True)
        _check_int("oracle_samples", self.oracle_samples, 0, None)
        _check_int("n_neighbors", self.n_neighbors, 1, None, optional=True)
        _check_int("refine_passes", self.refine_passes, 0, None)
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.criterion not in ("entropy", "gini", "log_loss"):
            raise ConfigError(
                f"criterion must be entropy, gini or log_loss, got {self.criterion!r}"
            )
        if self.task not in ("auto", "classification", "regression"):
            raise ConfigError(f"task must be auto, classification or regression, got {self.task!r}")
        if self.noise is not None and (not _is_real(self.noise) or self.noise < 0):
            raise ConfigError(f"noise must be a non-negative number, got {self.noise!r}")
        share = self.real_share
        if share is not None and share != "auto" and (not _is_real(share) or not 0 < share < 1):
            raise ConfigError(f"real_share must be None, 'auto' or in (0, 1), got {share!r}")
        fraction = self.validation_fraction
        if not _is_real(fraction) or not 0 <= fraction < 1:
            raise ConfigError(f"validation_fraction must lie in [0, 1), got {fraction!r}")

    def _names(
        self, feature_names: Sequence[str] | None, output_names: Sequence[str] | None
    ) -> TreeNames:
        check_is_fitted(self, "tree_")
        if feature_names is None:
            feature_names = getattr(self, "feature_names_in_", None)
        if feature_names is None and self.table_ is not None and self.table_.from_frame:
            feature_names = self.table_.names
        if feature_names is None:
            feature_names = [f"x{i}" for i in range(self.n_features_in_)]
        if len(feature_names) != self.n_features_in_:
            raise InputError(
                f"{len(feature_names)} feature names for {self.n_features_in_} features"
            )
        classification = self.task_ == "classification"
        n_outputs = len(self.classes_) if classification else self.n_outputs_
        if output_names is None:
            if classification:
                output_names = [str(label) for label in self.classes_]
            else:
                output_names = (
                    ["score"] if n_outputs == 1 else [f"score{i}" for i in range(n_outputs)]
                )
        if len(output_names) != n_outputs:
            raise InputError(f"{len(output_names)} output names for {n_outputs} outputs")
        return TreeNames(
            self.tree_,
            feature_names=list(feature_names),
            output_names=list(output_names),
            classification=classification,
            design=self.design_,
        )

    def _fit_codes(self, X: Any) -> np.ndarray:
        """Codes of the rows ``fit`` gets; sets ``table_`` (``None`` for a numeric array)."""
        if not (_is_frame(X) or self.categorical_features is not None):
            self.table_ = None
            return self._validated(X, reset=True)
        self.table_, codes = TableSchema.from_data(
            self._checked_table(X, reset=True), categorical=self.categorical_features, what="X"
        )
        return codes

    def _codes(self, X: Any) -> np.ndarray:
        """Codes of rows to predict: a table's rows (a DataFrame, or codes), or an array."""
        if self.table_ is None:
            return self._validated(X, reset=False)
        X = self._checked_table(X, reset=False)
        if not _is_frame(X):
            return self.table_.encode(X, what="X")
        return _frame_codes(self.table_, X)

    def _checked_table(self, X: Any, *, reset: bool) -> Any:
        """A DataFrame as it is, an array of codes as a 2-D float64 array that may hold NaN;
        feature names and count recorded (``reset``) or checked."""
        if _is_frame(X):
            validate_data(self, X, reset=reset, skip_check_array=True)
            return X
        return validate_data(self, X, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan")

    def _box(self, black_box: Any) -> BlackBox:
        """``black_box`` as a BlackBox that takes codes (of ``table_`` for a table)."""
        if self.table_ is None:
            return as_black_box(black_box)
        return _table_black_box(black_box, self.table_)

    def _units(self, design: np.ndarray) -> np.ndarray:
        """Where oracle samples find a row's nearest rows: numbers in units of their std, a
        category or a missing value as a 0/1 column (each differing one weighs like 1 std)."""
        is_value = np.array([self.design_.kind(j) == "value" for j in range(design.shape[1])])
        scale = design.std(axis=0)
        return design / np.where(is_value & (scale > 0), scale, 1.0)

    def _validated(self, X: Any, *, reset: bool) -> np.ndarray:
        """``X`` as a finite float64 table of the fitted width, or one clear error."""
        X = validate_data(self, X, reset=reset, dtype=np.float64, ensure_all_finite=False)
        finite = np.isfinite(X).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise InputError(
                f"X has NaN or infinite values in {bad.size} of {len(X)} rows (first: row "
                f"{bad[0]}); a numeric array needs complete rows: impute or drop them, or pass "
                "a DataFrame (or categorical_features=[]) to treat NaN as missing values"
            )
        return np.asarray(X)

    def _resolve_task(self, box: BlackBox) -> str:
        if self.task != "auto":
            return str(self.task)
        return "classification" if box.probabilities or box.classes_ is not None else "regression"

    def _split(
        self, n_rows: int, labels: np.ndarray | None, rng: np.random.RandomState
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row ids to fit on and to hold out, stratified by class where every class allows."""
        rows = np.arange(n_rows)
        n_held_out = round(self.validation_fraction * n_rows)
        if n_held_out == 0:
            return rows, rows[:0]
        if n_held_out == n_rows:
            n_held_out -= 1
        stratify = labels
        if labels is not None:
            counts = np.unique(labels, return_counts=True)[1]
            both_sides_fit = min(n_held_out, n_rows - n_held_out) >= len(counts)
            stratify = labels if counts.min() >= 2 and both_sides_fit else None
        fit_rows, held_out = train_test_split(
            rows, test_size=n_held_out, stratify=stratify, random_state=rng
        )
        return np.sort(fit_rows), np.sort(held_out)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.categorical_features is not None  # missing values
        return tags

    def _real_share(self) -> float | None:
        """The share of weight real rows carry, or None for equal weights (see the class)."""
        if self.real_share != "auto":
            return None if self.real_share is None else float(self.real_share)
        table = self.table_
        if table is None or not any(
            column.is_categorical or column.has_missing for column in table.columns
        ):
            return None
        return 0.5

    def _grow_twice(
        self, X: np.ndarray, targets: Targets, is_real: np.ndarray, rng: np.random.RandomState
    ) -> tuple[TreeStructure, int]:
        """The greedy tree grown on every sample and the one grown on the real rows alone,
        each refined on every sample; the one that disagrees less (weighted) is kept, with
        its passes (refinement is a local search: two starts, one objective)."""
        grown = self._grow(X, targets, rng)
        from_real = self._grow(X[is_real], _weighted(targets, None, rows=is_real), rng)
        found = []
        rows = np.arange(len(X))
        for tree in (grown, from_real):
            passes = refine(tree, X, targets, self.refine_passes)
            found.append((float(targets.loss(tree.value[tree.apply(X)], rows).sum()), passes))
        return (grown, found[0][1]) if found[0][0] <= found[1][0] else (from_real, found[1][1])

    def _grow(self, X: np.ndarray, targets: Targets, rng: np.random.RandomState) -> TreeStructure:
        """The greedy CART tree, taken over into a ``TreeStructure``."""
        seed = rng.randint(np.iinfo(np.int32).max)
        depth = _MAX_DEPTH if self.max_depth is None else self.max_depth
        grower: DecisionTreeClassifier | DecisionTreeRegressor
        if isinstance(targets, ClassTargets):
            grower = DecisionTreeClassifier(
                criterion=self.criterion,
                max_depth=depth,
                max_leaf_nodes=self.max_leaf_nodes,
                random_state=seed,
            )
            grower.fit(X, targets.labels, sample_weight=targets.weight)
        else:
            assert isinstance(targets, ScoreTargets)
            grower = DecisionTreeRegressor(
                max_depth=depth, max_leaf_nodes=self.max_leaf_nodes, random_state=seed
            )
            grower.fit(X, targets.scores, sample_weight=targets.weight)
        return TreeStructure.from_sklearn(grower, targets.n_outputs)

    def _leaves(self, codes: np.ndarray) -> np.ndarray:
        """The leaf each row of ``codes`` reaches."""
        return self.tree_.apply(self.design_.matrix(codes))

    def _tree_predictions(self, codes: np.ndarray) -> np.ndarray:
        """The tree's class indices (classification) or scores (regression) for ``codes``."""
        values = self.tree_.value[self._leaves(codes)]
        if self.task_ == "classification":
            return np.asarray(values.argmax(axis=1), np.intp)
        return values[:, 0] if self.n_outputs_ == 1 else values

    def _box_predictions(self, scores: np.ndarray, box: BlackBox) -> np.ndarray:
        """The black box's scores as the tree predicts them (class indices or scores)."""
        if self.task_ == "classification":
            return _labels_from_scores(scores, box)
        return scores[:, 0] if self.n_outputs_ == 1 else scores

    def _truth(self, y: np.ndarray) -> np.ndarray:
        """True labels as the tree predicts them: indices of ``classes_`` (matched by value,
        one error naming the labels the black box does not know), or numbers to regress."""
        if self.task_ == "classification":
            return match_labels(y, self.classes_, what="labels (y)")
        try:
            return np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InputError(
                f"y must hold numbers for a regression surrogate, got {np.asarray(y)[:3]}"
            ) from err

    def _agreement(self, codes: np.ndarray, scores: np.ndarray, box: BlackBox) -> float:
        """Fidelity of the tree to black-box ``scores`` on rows ``codes``."""
        if self.task_ == "classification" and scores.shape[1] not in (1, len(self.classes_)):
            raise InputError(
                f"the black box gives {scores.shape[1]} scores per row, but the surrogate was "
                f"fitted to {len(self.classes_)} classes"
            )
        if self.task_ == "regression" and scores.shape[1] != self.n_outputs_:
            raise InputError(
                f"the black box gives {scores.shape[1]} scores per row, but the surrogate was "
                f"fitted to {self.n_outputs_}"
            )
        return self._matched(self._tree_predictions(codes), self._box_predictions(scores, box))

    def _matched(self, predicted: np.ndarray, truth: np.ndarray) -> float:
        """Share of equal classes, or R^2 of scores."""
        if self.task_ == "classification":
            return float(np.mean(predicted == truth))
        if len(truth) < 2:
            return float(np.all(np.isclose(predicted, truth)))
        return float(r2_score(truth, predicted))


def _classes(box: BlackBox, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The class labels and each row's predicted class index."""
    n_classes = max(scores.shape[1], 2)
    classes = box.classes_
    if classes is None or len(classes) != n_classes:
        classes = np.arange(n_classes)
    return np.asarray(classes), _labels_from_scores(scores, box)


def _labels_from_scores(scores: np.ndarray, box: BlackBox) -> np.ndarray:
    """Predicted class index per row: the arg-max, or for one column a cut at 0.5
    (a probability) or 0 (a decision function)."""
    if scores.shape[1] == 1:
        cut = 0.5 if box.probabilities else 0.0
        return (scores[:, 0] > cut).astype(np.intp)
    return np.asarray(scores.argmax(axis=1), np.intp)


def _with_oracle_targets(targets: Targets, oracle_scores: np.ndarray, box: BlackBox) -> Targets:
    """``targets`` followed by the black box's answers on the oracle samples."""
    if isinstance(targets, ClassTargets):
        oracle_labels = _labels_from_scores(oracle_scores, box)
        return ClassTargets(np.concatenate([targets.labels, oracle_labels]), targets.n_outputs)
    assert isinstance(targets, ScoreTargets)
    return ScoreTargets(np.vstack([targets.scores, oracle_scores]))


def _is_frame(X: Any) -> bool:
    import pandas as pd

    return isinstance(X, pd.DataFrame)


def _frame_codes(table: TableSchema, frame: Any) -> np.ndarray:
    """Codes of a DataFrame's rows to predict. A category the training rows never held (or a
    missing value where they had none) is code -1, in no category's set: such a row goes down
    every ``not in`` branch instead of stopping the prediction."""
    import pandas as pd

    labels = {str(label): label for label in frame.columns}
    unseen: dict[int, np.ndarray] = {}
    for index in table.categorical_indices:
        column = table.columns[index]
        if column.name not in labels:
            continue  # encode names every missing column
        series = frame[labels[column.name]]
        alone = TableSchema([column], from_frame=True)
        strange = []
        for value in pd.unique(series):
            try:
                alone.encode(pd.DataFrame({column.name: [value]}))
            except InputError:
                strange.append(value)
        if strange:
            unseen[index] = series.isin(strange).to_numpy()
            if len(unseen) == 1:  # the caller's frame is left as it is
                frame = frame.copy()
            assert column.categories is not None
            frame[labels[column.name]] = series.where(~unseen[index], column.categories[0])
    codes = table.encode(frame, what="X")
    for index, rows in unseen.items():
        codes[rows, index] = -1.0
    return codes


def _table_black_box(black_box: Any, table: TableSchema) -> BlackBox:
    """``black_box`` as a BlackBox called with codes of ``table``."""
    if not isinstance(black_box, BlackBox):
        return BlackBox(black_box, table=table)
    if black_box.table is None:
        return BlackBox(
            black_box.model,
            method=black_box.method if black_box.method not in ("call", "module") else "auto",  # type: ignore[arg-type]
            probabilities=black_box.probabilities,
            softmax=black_box.softmax,
            batch_size=black_box.batch_size,
            table=table,
        )
    if black_box.table.columns == table.columns:
        return black_box
    return BlackBox(_FramesOfTable(black_box, table), probabilities=black_box.probabilities)


class _FramesOfTable:
    """Hands a BlackBox with a table of its own DataFrames of another table's codes, which it
    turns into what its model expects."""

    def __init__(self, black_box: BlackBox, table: TableSchema) -> None:
        self.black_box = black_box
        self.table = table
        self.classes_ = black_box.classes_

    def __call__(self, rows: Any) -> np.ndarray:
        """Scores of ``rows``: codes of the surrogate's table, or a DataFrame as it is."""
        return self.black_box(rows if _is_frame(rows) else self.table.decode(rows))


def _weighted(
    targets: Targets, weight: np.ndarray | None, rows: np.ndarray | None = None
) -> Targets:
    """``targets`` (of ``rows`` only, where given) with sample weights ``weight``."""
    if isinstance(targets, ClassTargets):
        labels = targets.labels if rows is None else targets.labels[rows]
        return ClassTargets(labels, targets.n_outputs, weight)
    assert isinstance(targets, ScoreTargets)
    return ScoreTargets(targets.scores if rows is None else targets.scores[rows], weight)


def _checked_labels(y: Any, n_rows: int) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != n_rows:
        raise InputError(f"y has {y.size} values for {n_rows} rows of X")
    return y


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_int(name: str, value: Any, low: int, high: int | None, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if int(value) < low or (high is not None and int(value) > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, got {value}")
