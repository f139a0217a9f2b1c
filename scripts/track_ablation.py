"""Two tracks against one: the benchmark's scenes with both tracks, then with only one.

Runs :func:`insar_gnss_3d.core.benchmark.run_benchmark` three times on the same scenes
(``tracks`` both, asc, desc; no track dropout, so every scene has both tracks to begin
with) and prints, per method and component, the median mSSIM over the scenes above 10 mm
and the paired difference both - one (median, and the share of scenes where two tracks
score higher):

    PYTHONPATH=build/plugins .venv/bin/python scripts/track_ablation.py --scenes 60 --seed 0
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from insar_gnss_3d.core import benchmark

METHODS = ("cnn", "network", "joint")


def scores(rows, method, component, threshold_m=benchmark.SIGNAL_THRESHOLD_M):
    """{scene: mSSIM} of one method and component over the scenes above the threshold."""
    return {r["scene"]: r["mssim"] for r in rows
            if r["method"] == method and r["component"] == component and r["max_abs_scene_m"] > threshold_m
            and np.isfinite(r["mssim"])}


def main(argv=None):
    """Command line: the three runs and the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="", help="model file (default: the bundled model)")
    p.add_argument("--scenes", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recipe", default="classic", choices=sorted(benchmark.RECIPES))
    p.add_argument("--scene", default="{}",
                   help='scene overrides on the recipe as JSON, e.g. \'{"turbulence_sigma_m": [0.001, 0.005]}\' '
                        "(a quieter atmosphere: how much a second track can add when the noise allows)")
    args = p.parse_args(argv)
    overrides, dem = benchmark.recipe_options(args.recipe)
    overrides = {**overrides, **json.loads(args.scene), "track_dropout_probability": 0.0}
    runs = {t: benchmark.run_benchmark(args.model or None, args.scenes, args.seed, "cpu", None, None, overrides,
                               dem_path=dem, tracks=t) for t in ("both", "asc", "desc")}
    print(f"recipe {args.recipe} with {json.dumps(overrides)}, {args.scenes} scenes, seed {args.seed}; "
          "median mSSIM of the scenes > 10 mm; paired: median of (both - one) and share of scenes where "
          "both tracks score higher")
    print("| method | component | both | asc only | desc only | both - asc | both - desc |")
    print("|---|---|---|---|---|---|---|")
    for method in METHODS:
        for comp in benchmark.COMPONENTS:
            s = {t: scores(rows, method, comp) for t, rows in runs.items()}
            cells = [f"{np.median(list(s[t].values())):.3f} ({len(s[t])})" if s[t] else "-"
                     for t in ("both", "asc", "desc")]
            for one in ("asc", "desc"):
                common = sorted(set(s["both"]) & set(s[one]))
                diff = np.array([s["both"][k] - s[one][k] for k in common])
                cells.append(f"{np.median(diff):+.3f}, {100 * np.mean(diff > 0):.0f} %" if len(diff) else "-")
            print(f"| {method} | {comp} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
