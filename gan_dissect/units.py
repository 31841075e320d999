"""Choose the units an edit switches off or on, and the values it sets them to.

:func:`choose_units` takes a checked :class:`~gan_dissect.subject.Subject` and a
:class:`UnitSpec` (what the ``ablate``, ``actmax`` and ``invert`` commands' flags say, as typed
values) and returns a :class:`UnitChoice`. Units are chosen in one of three ways
(``UnitSpec.units``): ``"auto"``, the first ``num_units`` (a number or a share of the layer)
of a ranking of ``layer``'s units for ``concept`` (``ranking="iou"``: by IoU in a dissection,
given or made here; ``ranking="learned"``: by a learned ablation mask, or with a segmenter that
returns labels by what each unit removes when ablated alone); unit numbers; or the folder of an
earlier ``ablate`` run, whose layer, units and off / on values are used as they were.
``layer="auto"`` and ``concept="auto"`` read the dissection: the concept (lamp when the
segmenter has one) and the layer of the unit of highest IoU / ceiling.

Errors name the command flag of the option to change (``--units``, ``--off-level``, ...);
each is the :class:`UnitSpec` field of the same name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from gan_dissect.dissection import DissectionResult, dissect_layers, load_dissection
from gan_dissect.intervention import UnitEdit, unit_numbers, unit_quantiles
from gan_dissect.loading import choose_layers
from gan_dissect.ranking import (
    LEARN_UNITS,
    LearnedMask,
    LearnSettings,
    gives_scores,
    learn_unit_mask,
    rank_units_by_ablation,
)
from gan_dissect.subject import Subject
from training.errors import ConfigError, InputError

EFFECT_FILE = "effect.json"
"""The record an ``ablate`` run writes, whose choice ``UnitSpec(units=<its folder>)`` reuses."""

Budget = float | Literal["num-units"] | None


@dataclass(frozen=True)
class UnitSpec:
    """Which units to edit and what "off" and "on" mean; see the module docstring.

    ``units``: ``"auto"``, unit numbers (a sequence or ``"3,17,40"``), or an ablate run
    folder. ``num_units``: how many ``"auto"`` takes, a number or a share such as ``"8%"``.
    ``dissection``: results by layer, a dissect run folder or ``dissection.json``, or
    ``"auto"`` (dissect here, on ``dissect_samples`` samples). ``learn``: how the learned
    ranking learns (:class:`~gan_dissect.ranking.LearnSettings`, the commands' defaults);
    ``budget``: the mask's most sum, ``"num-units"`` for the number of units chosen.
    ``off_level``: ``"zero"``, ``"quantile:Q"`` or a number; ``on_level``: ``"mean"`` (each
    unit's mean where the concept is), ``"quantile:Q"`` or a number.
    """

    concept: str = "auto"
    layer: str = "auto"
    units: str | Sequence[int] | Path = "auto"
    num_units: int | str = LEARN_UNITS
    ranking: Literal["learned", "iou"] = "learned"
    dissection: str | Path | dict[str, DissectionResult] = "auto"
    dissect_samples: int = 500
    learn: LearnSettings = field(default_factory=LearnSettings)
    budget: Budget = None
    off_level: str | float = "zero"
    on_level: str | float = "mean"


@dataclass
class UnitChoice:
    """The layer, units and values an edit uses, and how they were chosen."""

    layer: str
    units: list[int]
    concept: str
    off: float | np.ndarray
    on: float | np.ndarray
    how: str
    dissection: DissectionResult | None = None
    learned: LearnedMask | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.layer} units {', '.join(map(str, self.units))} ({self.how})"

    def values_for_record(self) -> dict[str, Any]:
        def pick(values: float | np.ndarray) -> float | list[float]:
            if isinstance(values, np.ndarray):
                return [float(values[u]) for u in self.units]
            return float(values)

        return {"off": pick(self.off), "on": pick(self.on)}

    def edit(self, *, insert: bool = True, region: Any = None, region_name: str = "") -> UnitEdit:
        """The :class:`~gan_dissect.intervention.UnitEdit` of these units (switched on too
        with ``insert``), optionally only inside ``region``."""
        return UnitEdit(
            self.layer,
            self.units,
            off=self.off,
            on=self.on if insert else None,
            region=region,
            region_name=region_name,
        )


def choose_units(subject: Subject, spec: UnitSpec | None = None) -> UnitChoice:
    """The units to edit and the values to set them to, as ``spec`` says (default:
    :class:`UnitSpec`'s defaults, the commands' too)."""
    spec = spec or UnitSpec()
    if spec.concept != "auto" and spec.concept not in subject.concepts:
        raise ConfigError(
            f"--concept {spec.concept!r} is not one of the segmenter's concepts: "
            f"{', '.join(subject.concepts)}"
        )
    units = spec.units
    if isinstance(units, (str, Path)):
        folder = Path(str(units))
        if str(units) != "auto" and (folder / EFFECT_FILE).is_file():
            return _units_of_run(folder, subject)
        if str(units) != "auto" and not _looks_like_numbers(str(units)):
            raise ConfigError(
                f"--units {str(units)!r} is neither 'auto', unit numbers, nor an ablate run "
                f"folder (no {EFFECT_FILE} there)"
            )
    if spec.layer and spec.layer != "auto":
        subject.check_layers([spec.layer])
    dissections = _dissections(spec, subject)
    concept = _concept(spec.concept, dissections)
    layer = _layer(spec.layer, concept, dissections)
    dissection = dissections[layer]
    c = dissection.concept_index(concept)
    learned = None
    off = _level(spec.off_level, "off-level", subject, layer, dissection, c)
    if isinstance(units, str) and units == "auto":
        count = unit_count(spec.num_units, dissection.units, layer)
        if spec.ranking == "learned":
            learned, how = _learned_ranking(spec, subject, layer, concept, off, count)
            chosen = learned.order()[:count]
        else:
            chosen = dissection.units_for(concept)[:count]
            how = f"top {count} by IoU with {concept}"
    else:
        numbers = (
            [int(u) for u in _split(str(units))]
            if isinstance(units, (str, Path))
            else [int(u) for u in units]
        )
        repeated = sorted({u for u in numbers if numbers.count(u) > 1})
        if repeated:
            raise ConfigError(f"--units names unit(s) {repeated} more than once")
        chosen = [int(u) for u in unit_numbers(np.asarray(numbers), dissection.units)]
        how = "given"
    return UnitChoice(
        layer=layer,
        units=chosen,
        concept=concept,
        off=off,
        on=_level(spec.on_level, "on-level", subject, layer, dissection, c),
        how=how,
        dissection=dissection,
        learned=learned,
    )


def _learned_ranking(
    spec: UnitSpec,
    subject: Subject,
    layer: str,
    concept: str,
    off: float | np.ndarray,
    count: int,
) -> tuple[LearnedMask, str]:
    """The learned ranking, or with a segmenter that returns labels (no gradient to follow)
    the ranking by single-unit ablation; and how the units were chosen, in words."""
    with torch.no_grad():
        probe = subject.generator(subject.latents([0, 1]))
    if not gives_scores(subject.segmenter, probe):
        ranking = rank_units_by_ablation(
            subject, layer, concept, off=off, batch_size=spec.learn.batch_size
        )
        return ranking, (
            f"top {count} by the {concept} each removes when ablated alone (the segmenter "
            "returns labels, which a learned mask cannot follow)"
        )
    settings = replace(spec.learn, budget=_budget(spec.budget, count))
    learned = learn_unit_mask(subject, layer, concept, off=off, settings=settings)
    return learned, f"top {count} of a learned ablation mask"


def _concept(requested: str, dissections: dict[str, DissectionResult]) -> str:
    """--concept, or for 'auto' lamp when the segmenter has it (the shipped models' running
    example), else the concept of the unit of highest IoU / ceiling in any dissected layer."""
    concepts = next(iter(dissections.values())).concepts
    if requested != "auto":
        return requested
    if "lamp" in concepts:
        return "lamp"
    best: tuple[float, str] = (-1.0, concepts[0])
    for result in dissections.values():
        fraction = np.nan_to_num(result.rule_ceiling_fraction(), nan=-1.0)
        fraction[~result.matched()] = -1.0
        unit, c = np.unravel_index(int(np.argmax(fraction)), fraction.shape)
        if fraction[unit, c] > best[0]:
            best = (float(fraction[unit, c]), concepts[int(c)])
    return best[1]


def _layer(requested: str | None, concept: str, dissections: dict[str, DissectionResult]) -> str:
    """--layer, or for 'auto' the dissected layer whose best unit for ``concept`` has the
    highest IoU / ceiling."""
    if requested and requested != "auto":
        if requested not in dissections:
            raise ConfigError(f"the dissection has no layer {requested!r}")
        return requested

    def score(result: DissectionResult) -> float:
        column = result.rule_ceiling_fraction()[:, result.concept_index(concept)]
        return float(np.nanmax(column)) if np.isfinite(column).any() else -1.0

    return max(dissections, key=lambda name: score(dissections[name]))


def unit_count(value: object, layer_units: int, layer: str = "the layer") -> int:
    """How many units ``--num-units`` asks for: a whole number in 1..``layer_units``, or a share
    of the layer such as ``"8%"`` (rounded down, at least 1)."""
    text = str(value).strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if not 0 < share <= 1:
                raise ValueError(text)
            count = max(1, int(share * layer_units + 1e-9))
        else:
            count = int(text)
    except ValueError as err:
        raise ConfigError(
            f"--num-units must be a whole number or a share of the layer such as '8%', got "
            f"{value!r}"
        ) from err
    if not 1 <= count <= layer_units:
        raise ConfigError(
            f"--num-units must lie in 1..{layer_units} (units of {layer}), got {value!r}"
        )
    return count


def parse_budget(text: object) -> Budget:
    """``--learn-budget``: 'num-units', 'none' or a positive number."""
    value = str(text).strip().lower()
    if value == "num-units":
        return "num-units"
    if value == "none":
        return None
    try:
        number = float(value)
    except ValueError as err:
        raise ConfigError(
            f"--learn-budget must be num-units, none or a number, got {text!r}"
        ) from err
    if not number > 0:
        raise ConfigError(f"--learn-budget must be positive, got {number}")
    return number


def _budget(budget: Budget, count: int) -> float | None:
    if budget == "num-units":
        return float(count)
    return None if budget is None else float(budget)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _looks_like_numbers(text: str) -> bool:
    parts = _split(text)
    return bool(parts) and all(part.lstrip("-").isdigit() for part in parts)


def _units_of_run(folder: Path, subject: Subject) -> UnitChoice:
    """The choice recorded by an earlier ablate run."""
    path = folder / EFFECT_FILE
    try:
        choice = json.loads(path.read_text(encoding="utf-8"))["choice"]
        layer = str(choice["layer"])
        values = choice["values"]
        recorded = np.asarray(choice["units"], dtype=np.int64)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"--units {str(folder)!r}: {path} is not the effect record of an ablate run ({err})"
        ) from err
    num_units = subject.layer_units(layer)
    units = [int(u) for u in unit_numbers(recorded, num_units)]
    return UnitChoice(
        layer=layer,
        units=units,
        concept=str(choice["concept"]),
        off=_per_unit(values["off"], units, num_units),
        on=_per_unit(values["on"], units, num_units),
        how=f"as in the ablate run {folder}: {choice['how']}",
        source={"run": str(folder)},
    )


def _per_unit(values: float | list[float], units: list[int], num_units: int) -> float | np.ndarray:
    """A recorded value per chosen unit back to a vector over the layer (others: 0)."""
    if isinstance(values, (int, float)):
        return float(values)
    vector = np.zeros(num_units, np.float64)
    vector[units] = values
    return vector


def _dissections(spec: UnitSpec, subject: Subject) -> dict[str, DissectionResult]:
    """Dissections by layer: of ``spec.layer`` (or every layer) from ``spec.dissection``, or
    made here."""
    named = spec.layer if spec.layer and spec.layer != "auto" else None
    if isinstance(spec.dissection, dict) or str(spec.dissection) != "auto":
        given = spec.dissection
        results = given if isinstance(given, dict) else load_dissection(given)
        shown = "given" if isinstance(given, dict) else str(given)
        if named is not None and named not in results:
            raise ConfigError(
                f"the dissection {shown} has no layer {named!r} (it has {', '.join(results)})"
            )
        first = next(iter(results.values()))
        if first.concepts != subject.concepts:
            raise ConfigError(
                f"the dissection {shown} was made with concepts {first.concepts}, "
                f"the segmenter has {subject.concepts}"
            )
        return {named: results[named]} if named is not None else results
    if spec.dissect_samples < 1:
        raise ConfigError("--dissect-samples must be at least 1")
    layers = (
        [named] if named is not None else choose_layers(subject.generator, "auto", subject.z_shape)
    )
    return dissect_layers(subject.replace(layers=tuple(layers)), spec.dissect_samples)


def _level(
    text: str | float,
    name: str,
    subject: Subject,
    layer: str,
    dissection: DissectionResult,
    concept: int,
) -> float | np.ndarray:
    """--off-level / --on-level as a number or a per-unit vector."""
    text = str(text).strip()
    if text == "zero":
        return 0.0
    if text == "mean":
        if name == "off-level":
            raise ConfigError("--off-level 'mean' is not an ablation level; use zero or quantile:Q")
        means = np.asarray(dissection.mean_activation_in_concept[:, concept], np.float64)
        return np.nan_to_num(means, nan=0.0)
    if text.startswith("quantile:"):
        try:
            level = float(text.split(":", 1)[1])
        except ValueError as err:
            raise ConfigError(f"--{name} {text!r}: quantile:Q needs a number Q") from err
        try:
            levels = unit_quantiles(subject, layer, level)
        except InputError as err:
            raise ConfigError(f"--{name} {text!r}: {err}") from err
        return levels[:, 0].numpy().astype(np.float64)
    try:
        value = float(text)
    except ValueError as err:
        raise ConfigError(
            f"--{name} must be zero, {'mean, ' if name == 'on-level' else ''}quantile:Q or a "
            f"number, "
            f"got {text!r}"
        ) from err
    if not np.isfinite(value):
        raise ConfigError(f"--{name} must be a finite number, got {text!r}")
    return value
