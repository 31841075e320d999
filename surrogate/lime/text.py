"""LIME for text: words removed at random, documents rebuilt from a token mask.

A document is split as ``lime`` splits it (``lime``'s own ``IndexedString`` /
``IndexedCharacters``). A neighbour removes a uniformly random number (1 to d) of the d distinct
words, chosen uniformly; with ``bow=False`` words are positions and are replaced by a mask
string instead. Neighbours are weighted by the exponential kernel (width 25) of 100 times their
cosine distance to the full document.

The removal pattern of every neighbour is drawn in array operations; only the final joining of
each neighbour's kept tokens into a string is per neighbour, since the black box reads strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from lime.lime_text import IndexedCharacters, IndexedString

from surrogate.lime._base import LimeExplainer, Neighbourhood
from surrogate.lime._random import RandomState, uniforms
from surrogate.lime.explanation import Explanation
from training.errors import InputError


class LimeTextExplainer(LimeExplainer):
    """Explains text classifiers (``lime.lime_text.LimeTextExplainer``'s interface).

    Parameters
    ----------
    kernel_width:
        Width of the exponential kernel on 100 x cosine distance (25 as in ``lime``).
    kernel:
        ``kernel(distances, kernel_width) -> weights``; LIME's exponential kernel by default.
    verbose:
        Print each fit's intercept, local prediction and the classifier's own score.
    class_names:
        Names of the classifier's output columns.
    feature_selection:
        How words are chosen (see :func:`surrogate.lime.fit_surrogate`).
    split_expression:
        Regular expression of separators, or a function returning the tokens.
    bow:
        True: a word is one feature wherever it occurs; False: each position is a feature.
    mask_string:
        What replaces a removed word when ``bow=False`` (``"UNKWORDZ"`` by default).
    random_state:
        An integer makes every explanation a function of the text and the options only (our
        own stream: the same seed removes other words than ``lime``'s); a NumPy ``Generator``
        or ``RandomState`` is drawn from in turn.
    char_level:
        Treat every character as a token.
    sampler:
        ``"qmc"`` (scrambled Sobol) or ``"random"`` (independent draws).
    """

    kind = "text"
    _default_batch_size = 8192

    def __init__(
        self,
        kernel_width: float = 25,
        kernel: Callable[[np.ndarray, float], np.ndarray] | None = None,
        verbose: bool = False,
        class_names: Sequence[str] | None = None,
        feature_selection: str = "auto",
        split_expression: str | Callable[[str], list[str]] = r"\W+",
        bow: bool = True,
        mask_string: str | None = None,
        random_state: RandomState = None,
        char_level: bool = False,
        sampler: str = "qmc",
    ) -> None:
        super().__init__(
            kernel_width=kernel_width,
            kernel=kernel,
            feature_selection=feature_selection,
            random_state=random_state,
            sampler=sampler,
            class_names=class_names,
            verbose=verbose,
        )
        self.split_expression = split_expression
        self.bow = bow
        self.mask_string = mask_string
        self.char_level = char_level

    def explain_instance(
        self,
        text_instance: str,
        classifier_fn: Any,
        labels: Sequence[int] | None = (1,),
        top_labels: int | None = None,
        num_features: int = 10,
        num_samples: int = 5000,
        distance_metric: str = "cosine",
        model_regressor: Any = None,
    ) -> Explanation:
        """Explain the classifier's scores of one document.

        ``classifier_fn`` maps a list of n strings to (n, k) scores (a function or an sklearn
        pipeline). ``model_regressor`` replaces the weighted ridge, as in ``lime``.
        """
        return self.explain_many(
            [text_instance],
            classifier_fn,
            labels=labels,
            top_labels=top_labels,
            num_features=num_features,
            num_samples=num_samples,
            distance_metric=distance_metric,
            model_regressor=model_regressor,
        )[0]

    def explain_many(
        self,
        texts: Sequence[str],
        classifier_fn: Any,
        labels: Sequence[int] | None = (1,),
        top_labels: int | None = None,
        num_features: int = 10,
        num_samples: int = 5000,
        distance_metric: str = "cosine",
        batch_size: int | None = None,
        model_regressor: Any = None,
    ) -> list[Explanation]:
        """Explain each document, pooling the classifier calls (8192 strings each by default).

        Document i's explanation equals ``explain_instance(texts[i], ...)``.
        """
        return self._explain(
            texts,
            classifier_fn,
            labels=labels,
            top_labels=top_labels,
            num_features=num_features,
            num_samples=num_samples,
            batch_size=batch_size,
            options={"distance_metric": distance_metric},
            model_regressor=model_regressor,
        )

    def inputs_without(
        self, instance: Any, explanation: Explanation, removed: np.ndarray
    ) -> list[str]:
        """Copies of the document ``instance`` without the words marked in ``removed`` (m, d)
        (or with the mask string in their place when ``bow=False``)."""
        text = self._check_instances([instance])[0]
        return _Renderer(self._index(text), self.bow)(~np.asarray(removed, dtype=bool))

    # ---- the adapter ----------------------------------------------------------------------

    def _check_instances(self, instances: Any) -> list[str]:
        if isinstance(instances, str) or not isinstance(instances, Sequence):
            raise InputError("texts must be a sequence of strings (a list, not one string)")
        if not instances:
            raise InputError("texts is empty")
        wrong = [i for i, text in enumerate(instances) if not isinstance(text, str)]
        if wrong:
            raise InputError(
                f"texts must be strings; item {wrong[0]} is {type(instances[wrong[0]]).__name__}"
            )
        return list(instances)

    def _instance_key(self, instance: str) -> bytes:
        return instance.encode("utf-8", "surrogatepass")

    def _concatenate(self, parts: list[Any]) -> list[str]:
        return [text for part in parts for text in part]

    def _index(self, text: str) -> IndexedString | IndexedCharacters:
        if self.char_level:
            return IndexedCharacters(text, bow=self.bow, mask_string=self.mask_string)
        return IndexedString(
            text, split_expression=self.split_expression, bow=self.bow, mask_string=self.mask_string
        )

    def _neighbourhood(
        self,
        instance: str,
        num_samples: int,
        rng: np.random.Generator,
        options: Mapping[str, Any],
    ) -> Neighbourhood:
        distance_metric = options["distance_metric"]
        indexed = self._index(instance)
        n_words = indexed.num_words()
        if n_words == 0:
            raise InputError(f"text {instance[:40]!r} has no words to explain")
        render = _Renderer(indexed, self.bow)

        data = np.ones((num_samples, n_words))
        u = uniforms(rng, num_samples - 1, n_words + 1, self.sampler)
        # How many words to remove (uniform on 1..d), then which: the words whose random keys
        # rank lowest, which makes every subset of that size equally likely.
        n_removed = np.minimum((u[:, 0] * n_words).astype(np.intp) + 1, n_words)
        ranks = np.argsort(np.argsort(u[:, 1:], axis=1), axis=1)
        data[1:][ranks < n_removed[:, None]] = 0.0
        if distance_metric == "cosine":
            # Cosine distance of a 0/1 row with k ones to the all-ones row: 1 - sqrt(k / d).
            distances = 100.0 * (1.0 - np.sqrt(data.sum(axis=1) / n_words))
        else:
            from sklearn.metrics import pairwise_distances

            distances = 100.0 * pairwise_distances(data, data[:1], metric=distance_metric).ravel()

        def inputs(start: int, stop: int) -> list[str]:
            texts = render(data[start:stop] > 0)
            if start == 0:
                texts[0] = instance  # the instance itself, exactly as given
            return texts

        return Neighbourhood(
            data=data,
            distances=distances,
            inputs=inputs,
            fields={
                "feature_names": [str(indexed.word(w)) for w in range(n_words)],
                "instance": {
                    "text": instance,
                    "tokens": [str(token) for token in render.tokens],
                    "token_words": render.token_words.tolist(),
                },
            },
            params={
                "bow": self.bow,
                "char_level": self.char_level,
                "distance_metric": distance_metric,
            },
        )


class _Renderer:
    """Documents from kept-word masks: the tokens of kept words (and separators) joined."""

    def __init__(self, indexed: IndexedString | IndexedCharacters, bow: bool) -> None:
        self.tokens = list(indexed.as_list)
        self.token_words = np.full(len(self.tokens), -1, dtype=np.intp)
        for word in range(indexed.num_words()):
            self.token_words[np.asarray(indexed.positions[word], dtype=np.intp)] = word
        self.is_word = self.token_words >= 0
        self.token_array = np.array(self.tokens, dtype=object)
        # A removed word disappears (bag of words) or leaves the mask string in its place.
        self.removed = "" if bow else indexed.mask_string

    def __call__(self, kept_words: np.ndarray) -> list[str]:
        kept = np.ones((len(kept_words), len(self.tokens)), dtype=bool)
        kept[:, self.is_word] = kept_words[:, self.token_words[self.is_word]]
        pieces = np.where(kept, self.token_array, self.removed).tolist()
        return ["".join(row) for row in pieces]
