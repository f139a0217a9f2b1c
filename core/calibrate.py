"""Calibration of the std head after training: a power law per component on held-out scenes.

The sigma inference reports is, per component, ``std_scale * raw^a * (1 + d)^b``
(:func:`.infer.calibrated_std`): ``raw`` the head's sigma, ``d`` the distance to the
nearest GNSS station [pixels]. The exponents come from a log-linear model of the variance
fitted by the Gaussian likelihood of held-out errors (heteroscedastic regression of the
residuals' variance, e.g. Carroll & Ruppert 1988, "Transformation and Weighting in
Regression", ch. 3; here post hoc on a trained network, :func:`fit_std_calibration`). Why:
v3's head gives nearly the same sigma on every recipe (median 0.19-0.23 in scale units)
while its errors differ 2.5-fold, and errors grow away from the stations, which a head that
sees ~10 px does not capture. Then one factor per component (temperature scaling, Guo et
al. 2017, "On calibration of modern neural networks", ICML; for regression Kuleshov et al.
2018, "Accurate uncertainties for deep learning using calibrated regression", ICML) puts
68.3 % of the errors within one sigma and 95.4 % within two as nearly as the errors' tails
allow (:func:`std_scale_factors`). Both are stored in the model (``std_scale``,
``std_exponents``), so every use of the model (inference, the data-consistency step, the
benchmark) sees the calibrated sigma. ``--scale-only`` fits the factor alone (exponents
1, 0), as models before v3.1 were calibrated. The pixel size is not a term: only one recipe
varies it, its fitted exponent changed sign between fits, and on Illapel's 4 km pixels it
shrank sigma until leave-one-station-out failed (README, model section). ``--relative`` adds
a third term in quadrature, a fraction of how far the network departs from its GNSS
interpolation (near a fault the errors grow with what the network adds); it met a target or
two more on the 30-scene seeds and one fewer on 120 scenes, so no shipped model uses it
(README, model section).

The scenes come from seeds no training run or benchmark draws (:data:`CALIBRATION_SEED`),
pooled over the benchmark's scene recipes given (:func:`default_recipes`: model v1's generator
and the realism one, and the multi-scale one for a multi-scale model), one 64 px scene per
network call as in training.

Command line: ``python -m insar_gnss_3d.core.calibrate --help``.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .benchmark import RECIPES, SIGNAL_THRESHOLD_M, dem_for_scenes, recipe_options, scene_for
from .configs import SceneConfig
from .infer import departure_from_gnss, std_log_terms, views_mean_and_raw_std
from .metrics import within_sigma
from .modelfile import load_model, save_model
from .runtime import AtomicPath

#: Seed of the calibration scenes (training uses seed + 1 + rank and seed + 10000019 for
#: validation, the benchmark seed + :data:`.benchmark.SEED_OFFSET`).
CALIBRATION_SEED = 424_242
#: Fractions of |error| / sigma within one and two sigma for a Gaussian.
ONE_SIGMA, TWO_SIGMA = 0.6827, 0.9545
#: The tolerances of the issue's calibration targets on those fractions (68 +/- 5 %, 95 +/- 3 %).
TOLERANCES = (0.05, 0.03)


def normalised_errors(model, scene: SceneConfig, scenes: int, seed: int, batch: int = 16,
                      threshold_m: float = SIGNAL_THRESHOLD_M, dem_m=None) -> np.ndarray:
    """|network - truth| / sigma of every pixel, (3, N) per component, on fresh scenes.

    The network as inference runs it (both views) with the model's calibration; the scenes
    as :func:`error_terms` draws them.
    """
    errors, terms, magnitudes = error_terms(model, scene, scenes, seed, batch, threshold_m, dem_m)
    return errors / sigma_of_terms(terms, model.std_scale.numpy(), model.std_exponents.numpy(),
                                   model.std_relative.numpy(), magnitudes)


def sigma_of_terms(log_terms: np.ndarray, std_scale, std_exponents, std_relative=None,
                   magnitudes=None) -> np.ndarray:
    """(3, N) calibrated sigma from :func:`error_terms`' log terms (3, N, K) and departures (3, N).

    The formula of :func:`.infer.calibrated_std`, on terms already computed.
    """
    sigma = np.asarray(std_scale)[:, None] * np.exp((log_terms * np.asarray(std_exponents)[:, None, :]).sum(-1))
    if std_relative is None or magnitudes is None:
        return sigma
    return np.sqrt(sigma ** 2 + (np.asarray(std_relative)[:, None] * magnitudes) ** 2)


def error_terms(model, scene: SceneConfig, scenes: int, seed: int, batch: int = 16,
                threshold_m: float = SIGNAL_THRESHOLD_M, dem_m=None):
    """``(errors (3, N), log terms (3, N, 2), departures (3, N))`` of every pixel of fresh scenes.

    ``errors``: |network - truth| in scale units; ``log terms``: :func:`.infer.std_log_terms`
    of the raw (uncalibrated) sigma, the network run as inference runs it (both views);
    ``departures`` how far the network's field departs from its GNSS interpolation
    (:func:`.infer.departure_from_gnss`), scale units. Of
    ``scenes`` scenes drawn, those whose largest |displacement| exceeds ``threshold_m`` (the
    population the benchmark's calibration is judged on; all of a batch when none there does).
    """
    from .synthetic import SceneSampler
    from .train import batch_to_inputs

    if model.std_head is None:
        raise ValueError("The model has no std head to calibrate.")
    sampler = SceneSampler(scene, seed=seed, device="cpu", dem_m=dem_m)
    errors, terms, magnitudes = [], [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, scenes, batch):
            inputs, target = batch_to_inputs(sampler.sample(min(batch, scenes - start)), scene)
            mean, raw_std = views_mean_and_raw_std(model, inputs, True)
            strong = (target * inputs.scale_m[:, None, None, None]).abs().amax((1, 2, 3)) > threshold_m
            keep = strong if bool(strong.any()) else torch.ones_like(strong)
            errors.append((mean - target).abs()[keep].transpose(0, 1).reshape(3, -1))
            terms.append(std_log_terms(inputs, raw_std)[keep].transpose(0, 1).reshape(3, -1, 2))
            magnitudes.append(departure_from_gnss(model, inputs, mean)[keep].transpose(0, 1).reshape(3, -1))
    return tuple(torch.cat(x, 1).double().numpy() for x in (errors, terms, magnitudes))


def log_linear_variance_fit(errors: torch.Tensor, log_terms: torch.Tensor) -> torch.Tensor:
    """``theta`` (1 + K,) maximising the Gaussian likelihood of ``errors`` (N,).

    ``log sigma = theta0 + log_terms (N, K) . theta[1:]``; L-BFGS from sigma = exp(log_terms[:, 0]).
    """
    theta = torch.zeros(1 + log_terms.shape[1], dtype=torch.float64)
    theta[1] = 1.0
    theta.requires_grad_(True)
    optimiser = torch.optim.LBFGS([theta], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        log_std = theta[0] + log_terms @ theta[1:]
        loss = (log_std + 0.5 * (errors * torch.exp(-log_std)) ** 2).mean()
        loss.backward()
        return loss
    optimiser.step(closure)
    return theta.detach()


def relative_variance_fit(errors: torch.Tensor, log_terms: torch.Tensor, magnitudes: torch.Tensor,
                          theta: torch.Tensor):
    """``(theta (1 + K,), r)`` maximising the Gaussian likelihood of ``errors`` (N,).

    The variance is ``sigma^2 = exp(2 (theta0 + log_terms . theta[1:])) + (r * magnitudes)^2``;
    L-BFGS from ``theta`` (the log-linear fit) and ``r`` = 0.05; ``r = exp(rho)`` stays > 0.
    """
    params = torch.cat([theta.clone(), torch.tensor([math.log(0.05)], dtype=torch.float64)]).requires_grad_(True)
    optimiser = torch.optim.LBFGS([params], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        variance = torch.exp(2 * (params[0] + log_terms @ params[1:-1])) + (torch.exp(params[-1]) * magnitudes) ** 2
        loss = (0.5 * torch.log(variance) + 0.5 * errors ** 2 / variance).mean()
        loss.backward()
        return loss
    optimiser.step(closure)
    params = params.detach()
    return params[:-1], float(torch.exp(params[-1]))


def fit_std_calibration(errors: np.ndarray, log_terms: np.ndarray, scale_only: bool = False,
                        magnitudes: Optional[np.ndarray] = None):
    """``(std_scale (3,), std_exponents (3, K), std_relative (3,))`` from held-out errors.

    ``errors`` (3, N), their log terms (3, N, K) and ``magnitudes``, the network's departures
    from its GNSS interpolation (3, N, :func:`.infer.departure_from_gnss`), all in scale
    units. Per component, ``log sigma = k0 + terms . exponents`` maximises the Gaussian
    likelihood of the errors (L-BFGS; with ``scale_only`` the exponents stay (1, 0, ...)).
    With ``magnitudes`` (and not ``scale_only``) a term ``r * departure`` is fitted with them,
    added in quadrature (:func:`relative_variance_fit`). Then the factor of
    :func:`std_scale_factors` on the errors in units of that sigma meets the coverage targets
    as nearly as the tails allow; it multiplies both terms: ``std_scale = exp(k0) * factor``,
    ``std_relative = r * factor``.
    """
    scales, exponents, relatives = [], [], []
    for c in range(errors.shape[0]):
        ok = np.isfinite(errors[c]) & np.isfinite(log_terms[c]).all(1)
        if magnitudes is not None:
            ok &= np.isfinite(magnitudes[c])
        e = torch.as_tensor(errors[c][ok], dtype=torch.float64)
        x = torch.as_tensor(log_terms[c][ok], dtype=torch.float64)
        identity = torch.zeros(x.shape[1], dtype=torch.float64)
        identity[0] = 1.0
        relative = 0.0
        if scale_only or magnitudes is None:
            exponent = identity if scale_only else log_linear_variance_fit(e, x)[1:]
            log_std = x @ exponent
            k0 = 0.5 * float(torch.log(torch.mean((e * torch.exp(-log_std)) ** 2)))   # the likelihood's level
        else:
            m = torch.as_tensor(magnitudes[c][ok], dtype=torch.float64)
            theta, relative = relative_variance_fit(e, x, m, log_linear_variance_fit(e, x))
            exponent, k0 = theta[1:], float(theta[0])
            log_std = x @ exponent
        sigma = torch.exp(k0 + log_std)
        if relative > 0:
            sigma = torch.sqrt(sigma ** 2 + (relative * m) ** 2)
        factor = float(std_scale_factors((e / sigma).numpy()[None])[0])
        scales.append(math.exp(k0) * factor)
        exponents.append(exponent.tolist())
        relatives.append(relative * factor)
    return np.asarray(scales), np.asarray(exponents), np.asarray(relatives)


def std_scale_factors(z: np.ndarray, current: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """New ``std_scale`` (3,): ``current`` times each component's factor ``k``.

    ``k`` minimises the larger of the two coverage misses in units of their tolerances,
    ``|P(z <= k) - 0.683| / 0.05`` and ``|P(z <= 2k) - 0.954| / 0.03`` (the benchmark's
    targets, :data:`TOLERANCES`): for Gaussian errors that is the 68.3 % quantile of ``z``;
    for heavier tails it trades a little of the first for the second.
    """
    z = np.asarray(z, dtype=np.float64)
    factors = []
    for row in z:
        row = np.sort(row[np.isfinite(row)])
        first = np.quantile(row, ONE_SIGMA)
        candidates = first * np.linspace(0.7, 1.6, 361)
        c1 = np.searchsorted(row, candidates, side="right") / row.size
        c2 = np.searchsorted(row, 2 * candidates, side="right") / row.size
        miss = np.maximum(np.abs(c1 - ONE_SIGMA) / TOLERANCES[0], np.abs(c2 - TWO_SIGMA) / TOLERANCES[1])
        factors.append(candidates[int(np.argmin(miss))])
    return np.asarray(current, dtype=np.float64) * np.asarray(factors)


def targets_met(within: Dict[str, Sequence[float]]) -> int:
    """How many of the issue's coverage targets ``within`` meets (0-6 for three components).

    ``within``: ``{component: (fraction within 1 sigma, within 2 sigma)}`` as
    :func:`.benchmark.calibration` or :func:`coverage` return it; a target is met when its
    fraction lies within :data:`TOLERANCES` of :data:`ONE_SIGMA` or :data:`TWO_SIGMA`
    (68 +/- 5 %, 95 +/- 3 %). NaN meets nothing.
    """
    met = 0
    for one, two in within.values():
        met += int(abs(one - ONE_SIGMA) <= TOLERANCES[0]) + int(abs(two - TWO_SIGMA) <= TOLERANCES[1])
    return met


def coverage(z: np.ndarray) -> Dict[str, tuple]:
    """Fraction within 1 and 2 sigma per component of normalised errors ``z`` (3, N)."""
    return {name: within_sigma(z[c], 1.0)[:2] for c, name in enumerate(("east", "north", "up"))}


#: Recipes (:data:`.benchmark.RECIPES`) whose scenes calibrate by default: the generator of
#: model v1 and the realism one, pooled.
DEFAULT_RECIPES = ("classic", "realism")


def default_recipes(scene: SceneConfig) -> tuple:
    """:data:`DEFAULT_RECIPES`, and ``multiscale`` for a model trained on several pixel sizes."""
    return DEFAULT_RECIPES + (("multiscale",) if scene.multi_scale else ())


def calibrate_model_file(path: str, recipes: Optional[Sequence[str]] = None, scenes: int = 128,
                         seed: int = CALIBRATION_SEED, output: str = "", checkpoint: str = "",
                         scale_only: bool = False, relative: bool = False) -> dict:
    """Fit ``std_scale``, ``std_exponents`` and ``std_relative`` on held-out scenes; write the model.

    ``scenes`` scenes of each of the ``recipes``, names in :data:`.benchmark.RECIPES` (None:
    :func:`default_recipes`). The model goes to ``output`` (default: in place), atomically;
    a training ``checkpoint`` of the same network (a campaign's ``insar_gnss_3d.ckpt``) gets
    the same calibration, so the next session resumes calibrated. ``scale_only``: one factor
    per component (:func:`fit_std_calibration`); ``relative``: also the term in the network's
    departure from its GNSS interpolation (``std_relative``; off by default, see the README's
    model section for why). Returns the figures stored in the file.
    """
    model, scene, payload = load_model(path)
    if model.std_head is None:
        raise ValueError(f"{path} holds a network without a std head: nothing to calibrate.")
    recipes = default_recipes(scene) if recipes is None else tuple(recipes)
    drawn = []
    for k, name in enumerate(recipes):
        overrides, dem_path = recipe_options(name)
        dem = dem_for_scenes(dem_path, scene.pixel_m)[0] if dem_path else None
        drawn.append(error_terms(model, scene_for(scene, overrides), scenes, seed + k, dem_m=dem))
    errors, terms, magnitudes = (np.concatenate(x, 1) for x in zip(*drawn))
    before = coverage(errors / sigma_of_terms(terms, model.std_scale.numpy(), model.std_exponents.numpy(),
                                              model.std_relative.numpy(), magnitudes))
    factors, exponents, relatives = fit_std_calibration(errors, terms, scale_only,
                                                        magnitudes if relative else None)
    after = coverage(errors / sigma_of_terms(terms, factors, exponents, relatives, magnitudes))
    for name, value in (("std_scale", factors), ("std_exponents", exponents), ("std_relative", relatives)):
        getattr(model, name).copy_(torch.as_tensor(value, dtype=getattr(model, name).dtype))
    training = dict(payload.get("training", {}))
    training["std_calibration"] = {"scenes_per_recipe": int(scenes), "seed": int(seed),
                                   "recipes": list(recipes), "std_scale": factors.tolist(),
                                   "std_exponents": exponents.tolist(), "std_relative": relatives.tolist(),
                                   "within_before": before, "within_after": after}
    save_model(output or path, model, scene, training, history=payload.get("history"),
               validation=payload.get("validation"))
    if checkpoint:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if "std_scale" not in state.get("model", {}):
            raise ValueError(f"The checkpoint {checkpoint} holds no network with a std head.")
        for name in ("std_scale", "std_exponents", "std_relative"):
            state["model"][name] = getattr(model, name).detach().clone()
        with AtomicPath(checkpoint) as part:
            torch.save(state, part)
    return training["std_calibration"]


def main(argv=None):
    """Entry point of the command line."""
    p = argparse.ArgumentParser(prog="python -m insar_gnss_3d.core.calibrate",
                                description="Calibrate a model's std head (a power law per component) on "
                                            "held-out synthetic scenes and write it into the model file.")
    p.add_argument("model", help="model file with a std head (rewritten in place unless --output)")
    p.add_argument("--output", default="", help="write the calibrated model here instead")
    p.add_argument("--checkpoint", default="",
                   help="a training checkpoint of the same network (a campaign's insar_gnss_3d.ckpt) that gets "
                        "the same factors; ignored when the file does not exist")
    p.add_argument("--scenes", type=int, default=128, help="scenes per recipe")
    p.add_argument("--seed", type=int, default=CALIBRATION_SEED, help="seed of the scenes")
    p.add_argument("--scale-only", action="store_true",
                   help="one factor per component, no power law of the head's sigma and the distance "
                        "to the stations (how models before v3.1 were calibrated)")
    p.add_argument("--relative", action="store_true",
                   help="also a term in how far the network departs from its GNSS interpolation (std_relative; "
                        "tried for v3.2 and not shipped, see the README)")
    p.add_argument("--skip-without-std-head", action="store_true",
                   help="exit quietly (status 0) when the model has no std head, as after a campaign "
                        "of a network without one")
    p.add_argument("--recipes", default="",
                   help="comma-separated benchmark recipes (model, classic, stress, realism, multiscale) whose "
                        "scenes are pooled (default: classic,realism, and multiscale for a multi-scale model)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.recipes.split(",") if n.strip()] or None
    unknown = [n for n in names or () if n not in RECIPES]
    if unknown:
        raise SystemExit(f"--recipes: unknown {unknown}; choose from {sorted(RECIPES)}.")
    checkpoint = args.checkpoint if args.checkpoint and os.path.exists(args.checkpoint) else ""
    if args.skip_without_std_head and load_model(args.model)[0].std_head is None:
        print(f"{args.model}: no std head, nothing to calibrate.")
        return
    result = calibrate_model_file(args.model, names, args.scenes, args.seed, args.output, checkpoint,
                                  args.scale_only, args.relative)
    for key in ("within_before", "within_after"):
        print(key.replace("_", " ") + ": " + ", ".join(f"{c} {a:.3f} / {b:.3f}" for c, (a, b) in result[key].items()))
    print("std_scale: " + ", ".join(f"{v:.3f}" for v in result["std_scale"]))
    print("std_exponents (head sigma, 1 + station distance): "
          + "; ".join(", ".join(f"{v:.3f}" for v in row) for row in result["std_exponents"]))
    print("std_relative (fraction of the departure from the GNSS interpolation): "
          + ", ".join(f"{v:.3f}" for v in result["std_relative"]))


if __name__ == "__main__":
    main()
