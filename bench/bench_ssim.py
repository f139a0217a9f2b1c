"""SSIM speed: ``core.metrics.ssim`` against scikit-image on the same 1000 x 1000 pair.

``run()`` is called by ``bench/run_bench.py``; ``python bench/bench_ssim.py`` runs it alone.
Both are timed in the same process, alternately, best of ``repeats``; the pair is a smooth
displacement-like field and the same field plus noise (float64), and the two mSSIM values
are printed side by side so a fast-but-wrong result would show.
"""

from __future__ import annotations

import time

import numpy as np


def _pair(size, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    truth = 0.3 * np.exp(-((x - 0.4) ** 2 + (y - 0.6) ** 2) / 0.05) - 0.1 * x
    pred = truth + 0.01 * rng.standard_normal(truth.shape)
    return pred, truth


def _best(fn, repeats):
    best = float("inf")
    value = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def run(size=1000, repeats=7):
    """Time both implementations; print and return the figures (seconds, ratio)."""
    from skimage.metrics import structural_similarity

    from insar_gnss_3d.core.metrics import ssim

    pred, truth = _pair(size)
    data_range = float(truth.max() - truth.min())

    def ours():
        return ssim(pred, truth, data_range)

    def skimage():
        return structural_similarity(pred, truth, data_range=data_range, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)

    ours(), skimage()  # warm-up (imports, thread pool, page faults)
    t_ours, t_sk = [], []
    v_ours = v_sk = None
    for _ in range(repeats):  # alternate so both see the same machine state
        t, v_ours = _best(ours, 1)
        t_ours.append(t)
        t, v_sk = _best(skimage, 1)
        t_sk.append(t)
    nan_pred = pred.copy()
    nan_pred[::7, ::5] = np.nan
    t_nan, _ = _best(lambda: ssim(nan_pred, truth, data_range), repeats)
    result = {"size": size, "ours_s": min(t_ours), "skimage_s": min(t_sk),
              "ratio_skimage_over_ours": min(t_sk) / min(t_ours), "ours_with_nan_s": t_nan,
              "mssim_ours": v_ours, "mssim_skimage": v_sk}
    print(f"SSIM {size}x{size} float64, best of {repeats}: ours {result['ours_s'] * 1e3:.1f} ms, "
          f"scikit-image {result['skimage_s'] * 1e3:.1f} ms -> ours is "
          f"{result['ratio_skimage_over_ours']:.2f}x as fast; with 2.9% NaN pixels "
          f"{t_nan * 1e3:.1f} ms; mSSIM {v_ours:.12f} vs {v_sk:.12f}")
    return result


if __name__ == "__main__":
    run()
