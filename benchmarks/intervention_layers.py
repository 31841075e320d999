"""Which layer of the shipped GAN holds the lamp units that ablation can take away?

Run from the repository root, once ``training/weights/`` holds the shipped models::

    python -m benchmarks.intervention_layers                  # layers 2-4, 300 samples each
    python -m benchmarks.intervention_layers --samples 1000

For every layer, the units allowed by the budget (8 % of the layer, rounded down) are chosen
three ways: by IoU with lamp in a dissection, by a learned ablation mask (Adam on a soft mask
with an L2 penalty), and by a learned mask under a budget (its sum kept at most k, so the
units compete for k places). Each set is ablated (to 0) on the same samples, other than those
the units were chosen on, and the share of lamp pixels removed and the largest relative
change of another concept are printed, with k random units as the control. The layer whose
best set removes the most lamp is the one the ablate configs use.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.shipped_models import BUDGET, add_shipped_options, load_shipped, unit_budget
from gan_dissect.dissection import dissect_layers
from gan_dissect.effects import measure_effect, random_orders
from gan_dissect.intervention import UnitEdit
from gan_dissect.ranking import LearnSettings, learn_unit_mask
from gan_dissect.subject import Subject


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="layer2,layer3,layer4")
    parser.add_argument("--samples", type=int, default=300, help="samples measured per set")
    parser.add_argument("--dissect-samples", type=int, default=1000)
    parser.add_argument("--learn-steps", type=int, default=200)
    add_shipped_options(parser)
    args = parser.parse_args(argv)
    generator, segmenter = load_shipped(args)
    layers = [name.strip() for name in args.layers.split(",")]
    subject = Subject.build(generator, segmenter, layers=layers, batch_size=50)
    started = time.perf_counter()
    dissections = dissect_layers(subject, num_samples=args.dissect_samples)
    print(
        f"shipped generator, lamp units chosen within {BUDGET:.0%} of each layer; "
        f"effects on {args.samples} samples (effect stream), torch threads {args.threads}"
    )
    print(f"{'layer':8s} {'k':>3s} {'ranking':18s} {'lamp removed':>13s} {'largest other':>22s}")
    best: tuple[float, str, str] = (-1.0, "", "")
    for layer in layers:
        dissection = dissections[layer]
        k = unit_budget(dissection.units)
        sets = {"IoU": dissection.units_for("lamp")[:k]}
        for name, budget in (("learned", None), ("learned, budget k", float(k))):
            settings = LearnSettings(steps=args.learn_steps, budget=budget, lr=0.05, l2=0.005)
            mask = learn_unit_mask(subject, layer, "lamp", settings=settings)
            sets[name] = mask.order()[:k]
        sets["random (mean of 3)"] = []
        for name, units in sets.items():
            if name.startswith("random"):
                removed, others = [], []
                for order in random_orders(dissection.units, 3, seed=0).values():
                    effect, _ = measure_effect(
                        subject, UnitEdit(layer, order[:k]), "lamp", num_samples=args.samples
                    )
                    removed.append(effect.removed_share())
                    others.append(effect.largest_other_change())
                share = float(np.mean(removed))
                other = max(others, key=lambda item: item[1])
            else:
                effect, _ = measure_effect(
                    subject, UnitEdit(layer, units), "lamp", num_samples=args.samples
                )
                share, other = effect.removed_share(), effect.largest_other_change()
                if share > best[0]:
                    best = (share, layer, f"{name}: units {units}")
            print(
                f"{layer:8s} {k:3d} {name:18s} {share:13.1%} "
                f"{other[0] + ' ' + format(other[1], '.1%'):>22s}",
                flush=True,
            )
    print(
        f"best: {best[1]} ({best[2]}) removes {best[0]:.1%} of lamp pixels; "
        f"{time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
