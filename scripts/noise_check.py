"""Are the tracks' noise estimates honest? Their scatter about the truth, over their estimate.

For each benchmark scene (seed, recipe) whose largest |displacement| exceeds 10 mm, each
track the data-consistency step used: the standard deviation of its referenced LOS minus
the truth's LOS (each track's mean removed) divided by the noise the step gave it
(:func:`insar_gnss_3d.core.track_reduction.track_noise_m` and
:func:`insar_gnss_3d.core.joint.reference_noise_m` in quadrature). An honest estimate gives
ratios near 1. Prints, per recipe, the median and 10th/90th percentiles, and the worst tracks
with how they were referenced.

    PYTHONPATH=build/plugins .venv/bin/python scripts/noise_check.py --seed 777
"""

from __future__ import annotations

import argparse

import numpy as np


def track_ratios(scenes: int, seed: int, recipe: str):
    """[(ratio, reference method, stations used, estimate [m], scatter [m])] of every used track."""
    from insar_gnss_3d.core import benchmark, consistency
    from insar_gnss_3d.core.benchmark import SIGNAL_THRESHOLD_M
    from insar_gnss_3d.core.joint import los_residual_rms

    original = consistency.consistent_field
    tracks, truths = [], []

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        used = [t for t in result.quality["tracks"] if t.get("used")]
        tracks.append(list(zip(result.observations, used)))
        return result

    overrides, dem = benchmark.recipe_options(recipe)
    consistency.consistent_field = recording        # run_benchmark imports it at call time
    try:
        benchmark.run_benchmark(None, scenes, seed, "cpu", None, None, overrides, dem_path=dem,
                                on_scene=lambda r: truths.append(r.truth))
    finally:
        consistency.consistent_field = original
    out = []
    for scene_tracks, truth in zip(tracks, truths):
        if np.nanmax(np.abs(truth)) <= SIGNAL_THRESHOLD_M:
            continue
        for (los_m, unit, noise_m), quality in scene_tracks:
            if np.isfinite(los_m).sum() < 50:
                continue
            scatter = los_residual_rms(truth, los_m, unit)       # about the truth's LOS, mean removed
            estimate = float(np.nanmedian(noise_m))
            reference = quality["reference"]
            out.append((scatter / estimate, reference.get("method"), reference.get("stations_used"),
                        estimate, scatter))
    return out


def main(argv=None):
    """The command line: print each recipe's ratios and its worst tracks."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=30, help="scenes per recipe")
    p.add_argument("--seed", type=int, default=777, help="benchmark seed")
    p.add_argument("--recipes", nargs="+", default=["classic", "realism", "multiscale"], help="benchmark recipes")
    p.add_argument("--worst", type=int, default=8, help="worst tracks listed per recipe")
    args = p.parse_args(argv)
    for recipe in args.recipes:
        rows = sorted(track_ratios(args.scenes, args.seed, recipe), key=lambda r: r[0])
        ratios = np.array([r[0] for r in rows])
        p50, p10, p90 = np.percentile(ratios, [50, 10, 90])
        print(f"{recipe}: {len(rows)} tracks, scatter / noise estimate median {p50:.2f} "
              f"(10th-90th percentile {p10:.2f}-{p90:.2f})")
        for ratio, method, stations, estimate, scatter in rows[-args.worst:]:
            print(f"  {ratio:5.2f}  reference {method} ({stations} stations): estimate "
                  f"{1e3 * estimate:.1f} mm, scatter {1e3 * scatter:.1f} mm")


if __name__ == "__main__":
    main()
