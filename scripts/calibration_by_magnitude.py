"""Where do the output's errors beyond its sigma lie? Coverage by the local size of the motion.

For each benchmark scene (seed, recipe) whose largest |displacement| exceeds 10 mm: the
output of the data-consistency step (what ``extractdisplacement`` writes) and its std bands,
against the truth. Pixels are binned by ``|truth_c| / max |truth_c|`` of their component
(the far field below 5 %, the near field above 50 %), and the fraction within one and two
standard deviations is printed per component and bin, pooled over the scenes (a calibrated
Gaussian gives 0.683 / 0.954 in every bin). A second table splits the pixels by what the
data-consistency step did there: no track (the network's field and sigma stand), every track
within the dead zone (the estimate may lie anywhere in it), or a track clipped by it (the
network missed it by more than the zone; :func:`insar_gnss_3d.core.joint.dead_zone_clipped`).

    PYTHONPATH=build/plugins .venv/bin/python scripts/calibration_by_magnitude.py --seed 777
"""

from __future__ import annotations

import argparse

import numpy as np

#: Bin edges of |truth_c| / max |truth_c|.
EDGES = (0.0, 0.05, 0.2, 0.5, 1.0 + 1e-9)


#: What the data-consistency step did at a pixel (the second table's rows).
STATES = ("no track", "inside the zone", "clipped")


def normalised_errors(scenes: int, seed: int, recipe: str, model: str = ""):
    """[(|error| / sigma, |truth| / max |truth|, state) per component] of every scene > 10 mm.

    Each a flat array over the component's valid pixels; ``state`` indexes :data:`STATES`.
    """
    from insar_gnss_3d.core import benchmark, consistency
    from insar_gnss_3d.core.benchmark import SIGNAL_THRESHOLD_M
    from insar_gnss_3d.core.joint import dead_zone_clipped

    original = consistency.consistent_field
    outputs, truths = [], []

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        valid = np.zeros(result.estimate_m.shape[1:], dtype=bool)
        clipped = np.zeros_like(valid)
        # the output's (last) zone; narrowed to 0, the estimate follows every track: all clipped
        width = result.quality.get("dead_zone_noise_units", 0.0)
        for los, unit, noise in result.observations:
            valid |= np.isfinite(los)
            clipped |= dead_zone_clipped(los, unit, noise, result.prior_m, width)
        outputs.append((result.estimate_m, result.std_m, np.where(clipped, 2, np.where(valid, 1, 0))))
        return result

    overrides, dem = benchmark.recipe_options(recipe)
    consistency.consistent_field = recording        # run_benchmark imports it at call time
    try:
        benchmark.run_benchmark(model or None, scenes, seed, "cpu", None, None, overrides, dem_path=dem,
                                on_scene=lambda r: truths.append(r.truth))
    finally:
        consistency.consistent_field = original
    out = []
    for (estimate, std, state), truth in zip(outputs, truths):
        if not np.nanmax(np.abs(truth)) > SIGNAL_THRESHOLD_M:
            continue
        z = np.abs(estimate - truth) / std
        size = np.abs(truth) / np.nanmax(np.abs(truth), axis=(1, 2), keepdims=True)
        ok = np.isfinite(z) & np.isfinite(size)
        out.append([(z[c][ok[c]], size[c][ok[c]], state[ok[c]]) for c in range(3)])
    return out


def main(argv=None):
    """Command line: print the table for each recipe."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=30)
    p.add_argument("--seed", type=int, default=777)
    p.add_argument("--recipes", nargs="+", default=["classic", "realism"])
    p.add_argument("--model", default="", help="model file (default: the bundled model)")
    args = p.parse_args(argv)
    for recipe in args.recipes:
        scenes = normalised_errors(args.scenes, args.seed, recipe, args.model)
        print(f"{recipe}, seed {args.seed}: {len(scenes)} scenes > 10 mm; within 1 / 2 sigma "
              f"by |truth| / max |truth| (share of the pixels)")
        for c, name in enumerate(("east", "north", "up")):
            z = np.concatenate([s[c][0] for s in scenes])
            size = np.concatenate([s[c][1] for s in scenes])
            cells = [f"all {np.mean(z <= 1):.3f} / {np.mean(z <= 2):.3f}"]
            for lo, hi in zip(EDGES[:-1], EDGES[1:]):
                m = (size >= lo) & (size < hi)
                if m.any():
                    cells.append(f"{lo:g}-{min(hi, 1.0):g} {np.mean(z[m] <= 1):.3f} / {np.mean(z[m] <= 2):.3f} "
                                 f"({100 * m.mean():.0f} %)")
            print(f"  {name:5s} " + "; ".join(cells))
        print("  by what the data-consistency step did (far field: below 0.2 of the largest, near: above 0.5)")
        for c, name in enumerate(("east", "north", "up")):
            z = np.concatenate([s[c][0] for s in scenes])
            size = np.concatenate([s[c][1] for s in scenes])
            state = np.concatenate([s[c][2] for s in scenes])
            cells = []
            for k, label in enumerate(STATES):
                for where, m in (("far", size < 0.2), ("near", size > 0.5)):
                    m = m & (state == k)
                    if m.any():
                        cells.append(f"{label}, {where} {np.mean(z[m] <= 1):.2f} / {np.mean(z[m] <= 2):.2f} "
                                     f"({100 * m.mean():.0f} %)")
            print(f"  {name:5s} " + "; ".join(cells))


if __name__ == "__main__":
    main()
