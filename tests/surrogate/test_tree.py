"""TreeSurrogate: recovery of a tree black box, reproducibility, tasks, errors, readable output."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from surrogate.tree import TreeSurrogate, fidelity_curve
from surrogate.tree._refine import best_stump, refine
from surrogate.tree._sampling import draw_oracle_samples
from surrogate.tree._structure import TreeStructure
from surrogate.tree._targets import ClassTargets
from training.blackbox import BlackBox
from training.errors import BlackBoxError, ConfigError, InputError


def _ordinal_data(seed: int, n_rows: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Integer features 0..9 (like pixel intensities) and labels that depend on four of them."""
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 10, size=(n_rows, 5)).astype(float)
    score = X[:, 0] + 2 * X[:, 1] - X[:, 2] + 3 * rng.normal(size=n_rows)
    y = (score > 6).astype(int) + (X[:, 3] > 6)
    return X, y


@pytest.fixture(scope="module")
def breast_cancer_forest() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, object]:
    X, y = load_breast_cancer(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(X))
    train, test = order[:300], order[300:]
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X[train], y[train])
    return X[train], y[train], X[test], y[test], forest


@pytest.mark.parametrize("oracle_samples", [0, 10])
@pytest.mark.parametrize("seed", range(5))
def test_a_depth_3_tree_black_box_is_recovered_exactly(seed, oracle_samples):
    X, y = _ordinal_data(seed)
    black_box = DecisionTreeClassifier(max_depth=3, min_samples_leaf=20, random_state=0)
    black_box.fit(X[:500], y[:500])
    surrogate = TreeSurrogate(max_depth=3, oracle_samples=oracle_samples, random_state=0)
    surrogate.fit(X[:500], black_box)
    assert surrogate.fidelity_ == 1.0
    assert surrogate.score(X[500:], black_box) == 1.0
    # the same partition of the feature grid: every integer point is classified alike
    grid = np.stack(np.meshgrid(*[np.arange(10.0)] * 5), axis=-1).reshape(-1, 5)
    assert np.array_equal(surrogate.predict(grid), black_box.predict(grid))
    assert surrogate.get_n_leaves() <= 8


def test_oracle_samples_raise_fidelity_where_real_rows_run_out(breast_cancer_forest):
    X, _, X_test, _, forest = breast_cancer_forest
    plain = TreeSurrogate(max_depth=4, oracle_samples=0, refine_passes=0, random_state=0)
    oracle = TreeSurrogate(max_depth=4, oracle_samples=10, random_state=0)
    plain_fidelity = plain.fit(X, forest).score(X_test, forest)
    oracle_fidelity = oracle.fit(X, forest).score(X_test, forest)
    assert oracle.n_oracle_samples_ == 10 * round(0.8 * len(X))
    assert oracle_fidelity >= plain_fidelity + 0.01


def test_fixed_random_state_gives_identical_rules(breast_cancer_forest):
    X, y, _, _, forest = breast_cancer_forest
    first = TreeSurrogate(max_depth=4, oracle_samples=5, random_state=7).fit(X, forest, y)
    second = TreeSurrogate(max_depth=4, oracle_samples=5, random_state=7).fit(X, forest, y)
    assert first.export_text(as_rules=True) == second.export_text(as_rules=True)
    assert first.export_text() == second.export_text()
    assert first.fidelity_ == second.fidelity_
    other = TreeSurrogate(max_depth=4, oracle_samples=5, random_state=8).fit(X, forest, y)
    assert other.export_text() != first.export_text()  # the seed does reach the samples


def test_regressor_black_box_is_fitted_without_labels():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(400, 3))

    def step_function(rows):  # a piecewise-constant regressor: a depth-2 tree can be exact
        return 2.0 * (rows[:, 0] > 0.2) - 3.0 * (rows[:, 1] <= -0.4)

    surrogate = TreeSurrogate(max_depth=2, oracle_samples=5, random_state=0).fit(X, step_function)
    assert surrogate.task_ == "regression"
    assert surrogate.accuracy_ is None
    assert surrogate.fidelity_ > 0.99  # R^2 against the black box's scores
    prediction = surrogate.predict(X)
    assert prediction.shape == (400,)
    assert set(np.round(prediction, 6)) <= {-3.0, -1.0, 0.0, 2.0}
    depth_1 = TreeSurrogate(max_depth=1, oracle_samples=5, random_state=0).fit(X, step_function)
    assert depth_1.fidelity_ < 0.8  # one split cannot hold both steps


def test_nan_in_X_is_one_clear_error(breast_cancer_forest):
    X, _, _, _, forest = breast_cancer_forest
    broken = X.copy()
    broken[[4, 9], 2] = np.nan
    with pytest.raises(
        InputError, match=r"NaN or infinite values in 2 of 300 rows \(first: row 4\)"
    ):
        TreeSurrogate(max_depth=2).fit(broken, forest)
    fitted = TreeSurrogate(max_depth=2, oracle_samples=0).fit(X, forest)
    with pytest.raises(InputError, match="NaN"):
        fitted.predict(broken)


def test_black_box_returning_the_wrong_length_is_one_clear_error():
    X, _ = _ordinal_data(seed=0, n_rows=50)
    with pytest.raises(BlackBoxError, match="returned 49 rows for 50 input rows"):
        TreeSurrogate(max_depth=2).fit(X, lambda rows: rows[:-1, 0])


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"max_depth": 0}, "max_depth must be between 1 and 32"),
        ({"max_depth": None}, "set max_depth or max_leaf_nodes"),
        ({"oracle_samples": -1}, "oracle_samples must be at least 0"),
        ({"sampler": "uniform"}, "sampler must be one of"),
        ({"validation_fraction": 1.0}, r"validation_fraction must lie in \[0, 1\)"),
    ],
)
def test_bad_parameters_are_named(parameters, message):
    X, _ = _ordinal_data(seed=0, n_rows=50)
    with pytest.raises(ConfigError, match=message):
        TreeSurrogate(**parameters).fit(X, lambda rows: rows[:, 0])


def test_fidelity_is_measured_on_rows_the_tree_never_saw():
    # a black box that memorised random labels: a tree can copy it on its own rows only
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    memoriser = KNeighborsClassifier(n_neighbors=1).fit(X, rng.randint(0, 2, size=200))
    surrogate = TreeSurrogate(max_depth=20, oracle_samples=0, validation_fraction=0.5)
    surrogate.fit(X, memoriser, y=memoriser.predict(X))
    assert surrogate.training_fidelity_ > 0.95
    assert surrogate.fidelity_ < 0.7
    assert surrogate.black_box_accuracy_ == 1.0
    assert surrogate.accuracy_ == surrogate.fidelity_


def test_rules_partition_the_rows_and_say_what_the_tree_predicts(breast_cancer_forest):
    X, y, X_test, _, forest = breast_cancer_forest
    names = [str(name) for name in load_breast_cancer().feature_names]
    surrogate = TreeSurrogate(max_depth=4, oracle_samples=5, random_state=0).fit(X, forest, y)
    rules = surrogate.rules(names, ["malignant", "benign"])
    assert len(rules) == surrogate.get_n_leaves()
    assert sum(rule["support"] for rule in rules) == round(0.8 * len(X))
    assert sum(rule["oracle_samples"] for rule in rules) == surrogate.n_oracle_samples_
    predicted = surrogate.predict(X_test)
    for row, label in zip(X_test, predicted, strict=True):
        matching = [rule for rule in rules if _holds(rule["conditions"], names, row)]
        assert len(matching) == 1
        assert matching[0]["prediction"] == ["malignant", "benign"][label]


def _holds(conditions: list[str], names: list[str], row: np.ndarray) -> bool:
    """Evaluate rule text such as ``0.1 < mean radius <= 3`` on one row."""
    for condition in conditions:
        interval = re.fullmatch(r"(\S+) < (.+) <= (\S+)", condition)
        if interval:
            low, name, high = interval.groups()
            value = row[names.index(name)]
            ok = float(low) < value <= float(high)
        else:
            name, op, bound = re.fullmatch(r"(.+) (<=|>) (\S+)", condition).groups()
            value = row[names.index(name)]
            ok = value <= float(bound) if op == "<=" else value > float(bound)
        if not ok:
            return False
    return True


def test_rules_round_thresholds_without_moving_rows_across_them():
    # thresholds are printed with 4 significant digits; on integer data none falls off a row
    X, y = _ordinal_data(seed=2)
    black_box = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    surrogate = TreeSurrogate(max_depth=3, oracle_samples=0, random_state=0).fit(X, black_box)
    names = [f"x{i}" for i in range(5)]
    rules = surrogate.rules(names)
    for row in X[:100]:
        assert sum(_holds(rule["conditions"], names, row) for rule in rules) == 1


def test_max_leaf_nodes_limits_the_tree(breast_cancer_forest):
    X, _, _, _, forest = breast_cancer_forest
    surrogate = TreeSurrogate(max_depth=None, max_leaf_nodes=5, oracle_samples=5, random_state=0)
    assert surrogate.fit(X, forest).get_n_leaves() <= 5


def test_fidelity_curve_rises_with_depth(breast_cancer_forest):
    X, y, X_test, y_test, forest = breast_cancer_forest
    template = TreeSurrogate(oracle_samples=5, random_state=0)
    curve = fidelity_curve(template, X, forest, X_test, depths=[1, 4], y=y, y_test=y_test)
    assert [row["depth"] for row in curve] == [1, 4]
    assert curve[1]["fidelity"] > curve[0]["fidelity"]
    assert curve[1]["n_leaves"] > curve[0]["n_leaves"] == 2
    assert all(0.8 < row["accuracy"] <= 1.0 for row in curve)


def test_best_stump_matches_brute_force():
    rng = np.random.RandomState(0)
    for _ in range(20):
        X = rng.randint(0, 5, size=(30, 3)).astype(float)
        wants_left = rng.rand(30) < 0.5
        weight = rng.uniform(0.1, 2.0, size=30)
        feature, threshold, swap, cost = best_stump(X, wants_left, weight)
        goes_left = (X[:, feature] <= threshold) != swap
        assert cost == pytest.approx(weight[goes_left != wants_left].sum())
        brute = min(
            weight[((X[:, j] <= t) != flip) != wants_left].sum()
            for j in range(3)
            for t in np.unique(X[:, j])
            for flip in (False, True)
        )
        assert cost == pytest.approx(brute)


def test_refinement_moves_a_misplaced_split_to_where_the_classes_change():
    # labels change at x0 = 0.5; the tree starts with its split at x0 = 0.3 and is 20% wrong
    X = np.random.RandomState(0).uniform(size=(200, 2))
    labels = (X[:, 0] > 0.5).astype(int)
    tree = TreeStructure(
        feature=np.array([0, -1, -1]),
        threshold=np.array([0.3, np.nan, np.nan]),
        children_left=np.array([1, -1, -1]),
        children_right=np.array([2, -1, -1]),
        value=np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]),
        n_real=np.zeros(3, np.intp),
        n_oracle=np.zeros(3, np.intp),
    )
    targets = ClassTargets(labels, 2)
    passes = refine(tree, X, targets, max_passes=10)
    assert X[labels == 0, 0].max() < tree.threshold[0] < X[labels == 1, 0].min()
    assert np.array_equal(tree.value[tree.apply(X)].argmax(axis=1), labels)
    assert passes < 10  # it stopped because nothing changed any more


def test_pruning_keeps_every_prediction_and_merges_same_class_leaves():
    X = np.random.RandomState(1).uniform(size=(300, 2))
    labels = (X[:, 0] > 0.5).astype(int)
    sklearn_tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(
        X, labels ^ (X[:, 1] > 0.9)
    )
    tree = TreeStructure.from_sklearn(sklearn_tree, 2)
    targets = ClassTargets(labels, 2)
    tree.fill_statistics(X, targets, np.ones(len(X), bool))
    before = tree.value[tree.apply(X)].argmax(axis=1)
    pruned = tree.pruned(same_prediction=True)
    assert np.array_equal(pruned.value[pruned.apply(X)].argmax(axis=1), before)
    leaves = np.flatnonzero(pruned.is_leaf())
    parents = [n for n in range(pruned.node_count) if not pruned.is_leaf()[n]]
    for node in parents:  # no split whose two leaves say the same
        left, right = pruned.children_left[node], pruned.children_right[node]
        if left in leaves and right in leaves:
            assert pruned.value[left].argmax() != pruned.value[right].argmax()
    assert pruned.n_leaves < tree.n_leaves


def test_local_samples_follow_the_data_and_gaussian_ones_do_not():
    # rows on the line x1 = 2 x0: "local" samples stay near it, independent noise leaves it
    t = np.random.RandomState(0).uniform(size=300)
    X = np.column_stack([t, 2 * t])
    for sampler, near_line in (("local", True), ("gaussian", False)):
        samples = draw_oracle_samples(
            X, 5, sampler=sampler, noise=1.0, n_neighbors=10, rng=np.random.RandomState(0)
        )
        off_line = np.abs(samples[:, 1] - 2 * samples[:, 0])
        assert (np.median(off_line) < 0.01) == near_line
        assert samples.min() >= 0.0
        assert samples[:, 1].max() <= X[:, 1].max()


def test_neighbour_samples_lie_between_a_row_and_a_neighbour():
    X = np.random.RandomState(0).normal(size=(50, 3))
    samples = draw_oracle_samples(
        X, 4, sampler="neighbours", noise=0.0, n_neighbors=1, rng=np.random.RandomState(0)
    )
    seeds = X[np.repeat(np.arange(50), 4)]
    units = X / X.std(axis=0)  # neighbours are found in units of each feature's std
    nearest = np.argsort(((units[:, None] - units[None]) ** 2).sum(-1), axis=1)[:, 1]
    partner = X[nearest[np.repeat(np.arange(50), 4)]]
    step = ((samples - seeds) * (partner - seeds)).sum(1) / ((partner - seeds) ** 2).sum(1)
    assert np.allclose(seeds + step[:, None] * (partner - seeds), samples)
    assert (step >= 0).all()
    assert (step <= 1).all()


def test_a_black_box_wrapped_in_blackbox_and_probability_callables_are_accepted(
    breast_cancer_forest,
):
    X, _, X_test, _, forest = breast_cancer_forest
    direct = TreeSurrogate(max_depth=3, oracle_samples=3, random_state=0).fit(X, forest)
    wrapped = TreeSurrogate(max_depth=3, oracle_samples=3, random_state=0)
    wrapped.fit(X, BlackBox(forest.predict_proba, probabilities=True))
    assert np.array_equal(direct.predict(X_test), wrapped.predict(X_test))
    assert list(direct.classes_) == [0, 1]


def test_a_classifiers_predict_method_gives_a_classification_tree():
    X, y = load_breast_cancer(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    by_method = TreeSurrogate(max_depth=3, random_state=0).fit(X, forest.predict, y)
    by_model = TreeSurrogate(max_depth=3, random_state=0).fit(X, forest, y)
    assert by_method.task_ == "classification"  # not a regression on label numbers
    assert by_method.fidelity_ == pytest.approx(by_model.fidelity_, abs=0.03)
    np.testing.assert_array_equal(by_method.classes_, [0, 1])
