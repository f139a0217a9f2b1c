"""The paper's evaluation: mSSIM per component against the truth's maximum displacement.

For each of ``scenes`` synthetic scenes drawn from a seed, four ways to get the 3-D field:

``cnn``
    the dual-branch CNN (:func:`.infer.predict_scene`) on exactly what training feeds it:
    the InSAR acquisitions interpolated in time onto the model's epochs
    (:func:`.features.resample_epochs`), LOS vectors, DEM and daily GNSS series;
``decomposition``
    the ascending/descending LOS decomposition into east and up, north neglected (NaN)
    (:func:`.baselines.decompose_asc_desc`) of each track's last minus first acquisition,
    with the per-pixel LOS vectors; each track is first re-referenced to GNSS (see
    :func:`reference_to_gnss`), as a careful user would;
``interpolation``
    the thin-plate spline of the GNSS stations' net displacements
    (:func:`.baselines.gnss_net_displacement`, :func:`.baselines.interpolate_gnss`);
``joint``
    the joint InSAR + GNSS per-pixel least squares (:func:`.joint.estimate_scene`, Wang &
    Wright 2012; SISTEM, Guglielmino et al. 2011): every acquisition of each track fitted
    with the GNSS network's time function, each track referenced (offset + ramp) to GNSS,
    and a bounded kriging prior of the stations (:func:`.gnss_prior.kriging_prior`).

Each is scored per component against the truth with :func:`.metrics.component_scores`:
mean SSIM (Wang et al. 2004; ``data_range`` = max - min of the truth component; pixels where
the method has no value are left out, and ``coverage`` says how many those were) and RMSE
[m]. The table is long: one row per scene, component and method (:data:`COLUMNS`).

Scenes come from :class:`.synthetic.SceneSampler` with the model's own
:class:`.synthetic.SceneConfig` (optionally overridden: :data:`RECIPES` holds a harsher
generator for an honest test on data the model was not trained on), drawn one at a time on
the CPU from ``seed + SEED_OFFSET`` so that the same seed gives the same scenes on every
machine and never replays a training run's stream (seeds ``seed + 1 + rank``) or its
validation scenes (``seed + 10000019``).

Command line: ``python -m insar_gnss_3d.core.benchmark --help``.

References
----------
.. [1] Okada, Y., & Fukushima, Y. (2025). Attempt to extract three-dimensional displacement
   fields due to fault slip by deep learning technique using InSAR and GNSS data. JpGU
   Meeting 2025 (abstract).
.. [2] Wang, Z., Bovik, A. C., Sheikh, H. R., & Simoncelli, E. P. (2004). Image quality
   assessment: from error visibility to structural similarity. IEEE Trans. Image Process.,
   13(4), 600-612. doi:10.1109/TIP.2003.819861
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .conventions import ENU_BANDS
from .raster import dem_for_scenes  # noqa: F401 (moved to raster.py; importers use it from here too)
from .runtime import BUNDLED_MODEL, AtomicPath, CancelFn, Cancelled, ProgressFn

#: Real relief (central Kyushu SRTM, 500 m, UTM 52N) for the ``stress`` recipe.
KYUSHU_DEM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "resources", "dem", "kyushu_srtm_500m.tif")

#: ``cnn`` is the product: the network with its data-consistency step (:mod:`.consistency`);
#: ``network`` the network's field before that step.
METHODS = ("cnn", "network", "decomposition", "interpolation", "joint")
COMPONENTS = ENU_BANDS
#: Columns of the long table (:func:`write_csv`), in order.
COLUMNS = ("scene", "component", "max_abs_truth_m", "method", "mssim", "rmse_m",
           "max_abs_scene_m", "coverage", "within_1sigma", "within_2sigma")
#: Scenes are drawn from ``seed + SEED_OFFSET`` (see the module docstring).
SEED_OFFSET = 500_000_003
#: The summary also reports scenes whose largest |displacement| exceeds this [m].
SIGNAL_THRESHOLD_M = 0.01
#: Scene options that define the network's input: the benchmark takes them from the model file.
MODEL_INPUT_OPTIONS = ("model_epochs", "gnss_days", "pixel_m")

#: Generator recipes. ``model``: the model's own scene configuration. ``stress``: the
#: ``classic`` generator with atmosphere from the upper third of the training range (10-30
#: mm per acquisition) with longer correlation lengths, real relief (crops of the Kyushu SRTM DEM instead of fractal
#: terrain) and both tracks always present (so the decomposition always has data).
#: ``realism``: :data:`.synthetic.REALISM` (heterogeneous slip, several faults, all mechanisms,
#: sigmoid slow slips, partial track coverage, dense to sparse networks; written out here so
#: that this module does not import torch; tests/core/test_realism.py keeps them equal).
#: ``classic``: the generator of model v1 (every realism option at its default, off), whatever
#: the model file says: the fixed "old recipe" against which a model trained on ``realism``
#: scenes is judged. ``stress`` is drawn on top of it.
CLASSIC = {"heterogeneous_slip_fraction": 0.0, "multi_fault_fraction": 0.0, "other_mechanism_fraction": 0.0,
           "tensile_fraction": 0.0,
           "sigmoid_slow_slip_fraction": 0.0, "partial_overlap_probability": 0.0,
           "decorrelated_fraction": (0.0, 0.3), "station_spacing_m": (15e3, 35e3),
           "random_station_subset": False, "pixel_m_range": (0.0, 0.0), "max_displacement_m": (1e-3, 1.0)}
RECIPES = {
    "model": {"scene": {}, "dem": None},
    "classic": {"scene": dict(CLASSIC), "dem": None},
    "stress": {"scene": {**CLASSIC, "turbulence_sigma_m": (10e-3, 30e-3),
                         "correlation_length_m": (10e3, 40e3),
                         "track_dropout_probability": 0.0},
               "dem": KYUSHU_DEM},
    "realism": {"scene": {"heterogeneous_slip_fraction": 0.5, "multi_fault_fraction": 0.3,
                          "other_mechanism_fraction": 0.4, "tensile_fraction": 0.0,
                          "sigmoid_slow_slip_fraction": 0.5,
                          "partial_overlap_probability": 0.3, "decorrelated_fraction": (0.0, 0.5),
                          "station_spacing_m": (10e3, 60e3), "random_station_subset": True,
                          "pixel_m_range": (0.0, 0.0), "max_displacement_m": (1e-3, 1.0)},
                "dem": None},
}
#: ``multiscale``: the realism recipe at pixel sizes of 0.5-4 km (ruptures of 5-320 km), up to
#: 10 m of displacement and networks of 10-150 km spacing (:data:`.synthetic.MULTI_SCALE`).
RECIPES["multiscale"] = {"scene": {**RECIPES["realism"]["scene"], "pixel_m_range": (500.0, 4000.0),
                                   "max_displacement_m": (1e-3, 10.0), "station_spacing_m": (10e3, 150e3)},
                         "dem": None}

#: ``tensile``: the classic scenes with every fault a sill or a dyke that opens
#: (``SceneConfig.tensile_fraction``): a source no recipe trains on, for judging a model
#: beyond its training world (and the data-consistency step that bounds it).
RECIPES["tensile"] = {"scene": {**CLASSIC, "tensile_fraction": 1.0}, "dem": None}

#: Cancelling a benchmark raises the one :class:`.runtime.Cancelled`.
BenchmarkCancelled = Cancelled


@dataclass
class SceneResult:
    """One scene's fields, handed to the ``on_scene`` callback of :func:`run_benchmark`.

    truth and each entry of ``predictions`` are (3, H, W) east/north/up [m] float32 on the
    scene grid (NaN = no value); ``rows`` are this scene's table rows.
    """

    index: int
    truth: np.ndarray
    predictions: Dict[str, np.ndarray]
    rows: List[dict]
    pixel_m: float
    max_abs_m: float
    notes: List[str] = field(default_factory=list)


# --------------------------------------------------------------------------- inputs


def recipe_options(name: str):
    """(scene overrides, DEM path or None) of a named recipe in :data:`RECIPES`.

    Every recipe but ``model`` sets every scene option except the network's inputs
    (:data:`MODEL_INPUT_OPTIONS`), at :class:`.configs.SceneConfig`'s default where the recipe
    is silent: it draws the same scenes whatever the model file's training scenes were (their
    size, track dropout, atmosphere), so that models trained on other scenes are judged alike.
    """
    from .configs import SceneConfig

    if name not in RECIPES:
        raise ValueError(f"Unknown generator recipe {name!r}; choose one of {', '.join(RECIPES)}.")
    recipe = RECIPES[name]
    if name == "model":
        return dict(recipe["scene"]), recipe["dem"]
    defaults = {k: v for k, v in SceneConfig().to_dict().items() if k not in MODEL_INPUT_OPTIONS}
    return {**defaults, **recipe["scene"]}, recipe["dem"]


def scene_for(model_scene, overrides: Optional[dict] = None):
    """The :class:`.configs.SceneConfig` of the scenes a model is scored on.

    ``model_scene`` (the model file's) under ``overrides`` (a recipe's, :func:`recipe_options`,
    and the user's). The network's inputs (:data:`MODEL_INPUT_OPTIONS`) must stay the model's.
    """
    from .configs import SceneConfig

    overrides = dict(overrides or {})
    fixed = {k: overrides[k] for k in MODEL_INPUT_OPTIONS
             if k in overrides and overrides[k] != getattr(model_scene, k)}
    if fixed:
        raise ValueError(f"Scene options {sorted(fixed)} define the network's input and must "
                         f"stay as in the model ({', '.join(f'{k}={getattr(model_scene, k)}' for k in fixed)}).")
    return SceneConfig.from_dict({**model_scene.to_dict(), **overrides})


def cnn_inputs(batch, scene):
    """What :func:`.infer.predict_scene` takes for scene 0 of a one-scene batch (numpy).

    The same path as training (:func:`.train.batch_to_inputs`): acquisitions interpolated in
    time onto ``model_epoch_days(scene)``; stations that exist (``gnss_valid``) only.
    Returns a dict of ``insar_epochs_m`` (2, T, H, W), ``los``, ``dem_m``, ``gnss_m``
    (S, D, 3), ``gnss_xy_m`` (S, 2) and ``pixel_m``.
    """
    from .features import resample_epochs
    from .synthetic import model_epoch_days

    epochs = resample_epochs(batch.insar_m[:1], batch.acq_days[:1], model_epoch_days(scene))[0]
    valid = batch.gnss_valid[0].cpu().numpy()
    return {"insar_epochs_m": epochs.cpu().numpy(), "los": batch.los[0].cpu().numpy(),
            "dem_m": batch.dem_m[0].cpu().numpy(), "gnss_m": batch.gnss_m[0, valid].cpu().numpy(),
            "gnss_xy_m": batch.gnss_xy_m[0, valid].cpu().numpy(), "pixel_m": float(batch.pixel_m)}


def sample_at(field_m, xy_m, pixel_m):
    """Values of (..., H, W) fields at points of the scene frame, NaN outside or next to NaN.

    Bilinear between the four surrounding pixel centres (pixel (r, c) has its centre at
    ``((c + 0.5) pixel_m, -(r + 0.5) pixel_m)``; :func:`.track_reduction.sample_bilinear`); within half
    a pixel of the border the nearest pixel. Returns (..., S).
    """
    from .track_reduction import sample_bilinear

    return sample_bilinear(field_m, -xy_m[:, 1] / pixel_m, xy_m[:, 0] / pixel_m)


def reference_to_gnss(los_m, unit, net_m, xy_m, pixel_m):
    """Remove a track's reference offset by tying it to GNSS; (referenced LOS, note).

    ``offset = median over stations on valid InSAR of (InSAR LOS - GNSS net displacement
    projected on the LOS)``, InSAR and LOS vector interpolated bilinearly at each station
    (:func:`sample_at`): the usual way to put InSAR in a GNSS frame (MintPy's reference
    point on a GNSS station), here with all stations for robustness. Without such a station,
    the scene's median LOS is removed instead (a LiCSBAS-like reference area = the whole
    scene), and the note says so.

    los_m (H, W) [m]; unit (3, H, W) LOS unit vectors; net_m (S, 3) [m]; xy_m (S, 2) [m].
    """
    insar = sample_at(los_m, xy_m, pixel_m)
    projected = (sample_at(unit, xy_m, pixel_m).T * net_m).sum(1)
    usable = np.isfinite(insar) & np.isfinite(projected)
    if usable.any():
        return los_m - float(np.median(insar[usable] - projected[usable])), ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(los_m)
    note = "no GNSS station on valid InSAR pixels: median referencing"
    return los_m - (median if np.isfinite(median) else 0.0), note


def decomposition_field(arrays, net_m, pixel_m):
    """East/NaN/up (3, H, W) [m] from asc/desc last-minus-first LOS; (field, notes)."""
    from .baselines import decompose_asc_desc

    h, w = arrays.truth_m.shape[1:]
    tracks, notes = [], []
    for t, name in enumerate(("ascending", "descending")):
        series = arrays.insar_m[t]
        d = series[-1].astype(np.float64) - series[0].astype(np.float64)
        if not np.isfinite(d).any():
            notes.append(f"no {name} data")
        else:
            d, note = reference_to_gnss(d, arrays.los[t], net_m, arrays.gnss_xy_m, pixel_m)
            if note:
                notes.append(f"{name}: {note}")
        tracks.append(d)
    east, up = decompose_asc_desc(tracks[0], tracks[1], tuple(arrays.los[0]), tuple(arrays.los[1]))
    return np.stack([east, np.full((h, w), np.nan), up]).astype(np.float32), notes


def interpolation_field(gnss_xy_m, net_m, shape, pixel_m):
    """Thin-plate interpolation of the stations' net E/N/U on a (H, W) scene grid; (field, notes).

    ``gnss_xy_m`` (S, 2) in the scene frame, ``net_m`` (S, 3); a component that the
    stations cannot carry (too few, on one line) is NaN with a note.
    """
    from .baselines import interpolate_gnss

    h, w = shape
    gx = (np.arange(w) + 0.5) * pixel_m
    gy = -(np.arange(h) + 0.5) * pixel_m
    grid_x, grid_y = np.meshgrid(gx, gy)
    out = np.full((3, h, w), np.nan, dtype=np.float32)
    notes = []
    for k, name in enumerate(COMPONENTS):
        try:
            out[k] = interpolate_gnss(gnss_xy_m[:, 0], gnss_xy_m[:, 1], net_m[:, k],
                                      grid_x, grid_y, method="thin_plate")
        except ValueError as exc:
            notes.append(f"interpolation {name}: {exc}")
    return out, notes


def joint_field(arrays, net_m, pixel_m, **options):
    """Joint InSAR + GNSS least squares (:func:`.joint.estimate_scene`) (3, H, W) [m]; (field, notes).

    Every acquisition of each track enters the fit with the GNSS time function; each track is
    referenced (offset + ramp) to the stations' net displacement ``net_m``; the prior is the
    bounded kriging of ``net_m`` (:func:`.gnss_prior.kriging_prior`). When no station moves
    significantly the time function is linear in time (noted). The prior's standard deviation
    is not rescaled (``scale_prior=False``, see :func:`.joint.estimate_scene`). ``options``
    go to :func:`.joint.estimate_scene`.
    """
    from .joint import estimate_scene

    series = [s if np.isfinite(s).any() else None for s in arrays.insar_m]
    units = list(arrays.los)
    result = estimate_scene(series, list(arrays.acq_days), units, arrays.gnss_m, arrays.gnss_xy_m,
                            pixel_m, net_m=net_m, fallback_linear=True,
                            **{"scale_prior": False, "grid_shape": np.shape(arrays.insar_m[0])[-2:], **options})
    return result.estimate_m.astype(np.float32), [f"joint: {n}" for n in result.notes]


def net_displacement(arrays):
    """Stations' net E/N/U [m] over the window, (S, 3) (:func:`.baselines.gnss_net_displacement`)."""
    from .baselines import gnss_net_displacement
    from .gnss_io import GnssSeries

    s, d = arrays.gnss_m.shape[:2]
    if s == 0:
        return np.zeros((0, 3))
    series = GnssSeries([f"S{i}" for i in range(s)], arrays.gnss_xy_m[:, 0].astype(np.float64),
                        arrays.gnss_xy_m[:, 1].astype(np.float64),
                        np.datetime64("2000-01-01") + np.arange(d), arrays.gnss_m.astype(np.float64))
    return gnss_net_displacement(series)


def score_rows(index, truth, predictions, stds=None):
    """Table rows (:data:`COLUMNS`) of one scene: every method x component.

    ``stds``: {method: (3, H, W) standard deviation [m]} (the CNN's output bands; the
    network's std head); those methods' rows then carry the fraction of pixels whose
    |error| lies within one and two standard deviations (NaN elsewhere).
    """
    from .metrics import component_scores, within_sigma

    max_scene = float(np.nanmax(np.abs(truth)))
    rows = []
    for method in METHODS:
        for k, s in enumerate(component_scores(predictions[method], truth, COMPONENTS)):
            within = (float("nan"), float("nan"))
            std_m = (stds or {}).get(method)
            if std_m is not None:
                within = within_sigma(np.asarray(predictions[method][k], dtype=np.float64) - truth[k],
                                      std_m[k])[:2]
            rows.append({"scene": index, "component": s["name"], "max_abs_truth_m": s["max_abs_truth"],
                         "method": method, "mssim": s["mssim"], "rmse_m": s["rmse"],
                         "max_abs_scene_m": max_scene, "coverage": s["valid_fraction"],
                         "within_1sigma": within[0], "within_2sigma": within[1]})
    return rows


# --------------------------------------------------------------------------- the run

#: ``tracks`` of :func:`run_benchmark`: both as drawn, or only the ascending (track 0) or
#: the descending (track 1) one.
TRACKS = ("asc", "desc", "both")


def run_benchmark(model_path: Optional[str], scenes: int, seed: int, device="cpu",
                  progress: ProgressFn = None, is_canceled: CancelFn = None,
                  scene_overrides: Optional[dict] = None, *, dem_path: Optional[str] = None,
                  on_scene: Optional[Callable[[SceneResult], None]] = None,
                  tile_px: int = 128, tracks: str = "both", views: Optional[int] = None) -> List[dict]:
    """Score the CNN and the classical peers on ``scenes`` synthetic scenes.

    Parameters
    ----------
    model_path : str or None
        Model file (:mod:`.modelfile`); None = the bundled model (:data:`BUNDLED_MODEL`).
    scenes : int
        Number of scenes (>= 1).
    seed : int
        Scenes are drawn from ``SceneSampler(config, seed + SEED_OFFSET)`` on the CPU, one
        at a time: the same seed gives the same scenes for every model and device.
    device : str
        ``auto`` (CUDA when present), ``cpu`` or ``cuda`` for the network.
    progress : callable(fraction, message), optional
        Called after every scene.
    is_canceled : callable() -> bool, optional
        Checked before every scene and between inference tiles; True raises
        :class:`BenchmarkCancelled`.
    scene_overrides : dict, optional
        :class:`.synthetic.SceneConfig` fields replacing the model's own (e.g.
        ``{"turbulence_sigma_m": (0.01, 0.03)}``; see :data:`RECIPES`). Fields that define
        the network's input (``model_epochs``, ``gnss_days``, ``pixel_m``) cannot change.
    dem_path : str, optional
        A DEM: scenes use random crops of it (:func:`dem_for_scenes`) instead of fractal
        terrain.
    on_scene : callable(SceneResult), optional
        Receives every scene's fields (for maps in a report); the caller decides what to keep.
    tile_px : int
        Inference tile size [pixels] (:func:`.infer.predict_scene`).
    tracks : str
        ``both`` (as drawn), ``asc`` or ``desc``: the other track is removed from every
        scene for every method, after the draw, so the three runs score the same scenes
        (:data:`TRACKS`; the two-tracks-against-one check).
    views : int, optional
        2: the network on each scene and its mirror image, averaged; 1: the network alone
        (:func:`.infer.predict_views`). None: as extraction runs it (:data:`.infer.VIEWS`).

    Returns
    -------
    list of dict
        Long table, one row per scene, component (east, north, up) and method (cnn,
        decomposition, interpolation, joint) with the keys of :data:`COLUMNS`: ``mssim`` and
        ``rmse_m`` [m] are NaN where the method gives nothing (north of the decomposition,
        a dropped track, fewer than 3 stations); ``coverage`` = fraction of pixels scored;
        ``max_abs_truth_m`` of the component and ``max_abs_scene_m`` of all three [m].
    """
    import torch

    from .consistency import consistent_field
    from .infer import VIEWS, InferenceCancelled, predict_scene
    from .modelfile import load_model
    from .synthetic import SceneSampler, model_epoch_days, scene_arrays
    from .runtime import select_device

    if int(scenes) < 1:
        raise ValueError(f"scenes must be >= 1, got {scenes}.")
    if tracks not in TRACKS:
        raise ValueError(f"tracks must be one of {', '.join(TRACKS)}, got {tracks!r}.")
    if seed is None:
        raise ValueError("seed must be an integer (the scenes are reproducible by design).")
    dev = select_device(device)
    path = model_path or BUNDLED_MODEL
    if not model_path and not os.path.isfile(path):
        raise ValueError(f"The bundled model {path} is missing; pass a model file (train one "
                         "with python -m insar_gnss_3d.core.train or the trainmodel algorithm).")
    model, scene, _ = load_model(path, device=dev)
    config = scene_for(scene, scene_overrides)
    dem = None
    if dem_path:
        dem, _ = dem_for_scenes(dem_path, config.pixel_m)
    sampler = SceneSampler(config, seed=int(seed) + SEED_OFFSET, device="cpu", dem_m=dem)
    canceled = is_canceled or (lambda: False)
    rows: List[dict] = []
    for i in range(int(scenes)):
        if canceled():
            raise BenchmarkCancelled(f"Benchmark cancelled after {i} of {scenes} scenes.")
        with torch.no_grad():
            batch = sampler.sample(1)
        if tracks != "both":
            batch.insar_m[:, {"asc": 1, "desc": 0}[tracks]] = float("nan")    # the other track goes
        arrays = scene_arrays(batch, 0)
        inputs = cnn_inputs(batch, config)
        try:
            network, network_std = predict_scene(model, inputs["insar_epochs_m"], inputs["los"], inputs["dem_m"],
                                                 inputs["gnss_m"], inputs["gnss_xy_m"], inputs["pixel_m"],
                                                 tile_px=tile_px, device=dev, is_canceled=canceled, with_std=True,
                                                 views=VIEWS if views is None else views)
        except InferenceCancelled as exc:
            raise BenchmarkCancelled(f"Benchmark cancelled in scene {i + 1} of {scenes}.") from exc
        consistent = consistent_field(network, inputs["insar_epochs_m"], inputs["los"], model_epoch_days(config),
                                      inputs["gnss_m"], inputs["gnss_xy_m"], inputs["pixel_m"],
                                      network_std_m=network_std,
                                      acquisition_days=arrays.acq_days)
        cnn = consistent.estimate_m.astype(np.float32)
        net = net_displacement(arrays)
        pixel_m = inputs["pixel_m"]          # the batch's (multi-scale recipes draw it)
        decomposition, notes = decomposition_field(arrays, net, pixel_m)
        interpolation, more = interpolation_field(arrays.gnss_xy_m, net, arrays.truth_m.shape[1:], pixel_m)
        joint, joint_notes = joint_field(arrays, net, pixel_m)
        more = more + joint_notes
        predictions = {"cnn": cnn, "network": network, "decomposition": decomposition,
                       "interpolation": interpolation, "joint": joint}
        scene_rows = score_rows(i, arrays.truth_m, predictions, {"cnn": consistent.std_m, "network": network_std})
        rows.extend(scene_rows)
        max_abs = float(np.nanmax(np.abs(arrays.truth_m)))
        if on_scene is not None:
            on_scene(SceneResult(i, arrays.truth_m, predictions, scene_rows, pixel_m,
                                 max_abs, notes + more))
        if progress is not None:
            cnn_scores = " ".join(f"{r['component'][0].upper()} {r['mssim']:.2f}"
                                  for r in scene_rows if r["method"] == "cnn")
            progress((i + 1) / int(scenes), f"scene {i + 1}/{scenes}: max |truth| "
                                            f"{1e3 * max_abs:.1f} mm, CNN mSSIM {cnn_scores}")
    return rows


# --------------------------------------------------------------------------- summaries


def _median(values):
    values = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    return float(np.median(values)) if values else float("nan")


def summarize(rows: Sequence[dict], threshold_m: float = SIGNAL_THRESHOLD_M) -> List[dict]:
    """Median mSSIM and RMSE per method and component, over all scenes and strong ones.

    Returns one dict per (subset, method, component) with ``subset`` ("all" or
    "max > 10 mm" for scenes whose ``max_abs_scene_m`` exceeds ``threshold_m``), ``scenes``
    (count in the subset), ``scored`` (scenes where the method gave a value),
    ``median_mssim``, ``median_rmse_m`` (over scored scenes) and ``cnn_wins`` (fraction of
    scored scenes where the CNN's mSSIM beats this method's; NaN for the CNN itself).
    """
    by_key = {(r["scene"], r["component"], r["method"]): r for r in rows}
    label = f"max > {1e3 * threshold_m:g} mm"
    out = []
    for subset in ("all", label):
        keep = [r for r in rows if subset == "all" or r["max_abs_scene_m"] > threshold_m]
        scene_ids = sorted({r["scene"] for r in keep})
        for method in METHODS:
            for comp in COMPONENTS:
                sel = [r for r in keep if r["method"] == method and r["component"] == comp]
                scored = [r for r in sel if math.isfinite(r["mssim"])]
                wins = float("nan")
                if method != "cnn" and scored:
                    cnn = [by_key.get((r["scene"], comp, "cnn"), {}).get("mssim", float("nan")) for r in scored]
                    wins = float(np.mean([c > r["mssim"] for c, r in zip(cnn, scored)]))
                out.append({"subset": subset, "method": method, "component": comp,
                            "scenes": len(scene_ids), "scored": len(scored),
                            "median_mssim": _median([r["mssim"] for r in scored]),
                            "median_rmse_m": _median([r["rmse_m"] for r in scored]),
                            "cnn_wins": wins})
    return out


def strong_summary(rows: Sequence[dict], threshold_m: float = SIGNAL_THRESHOLD_M) -> Dict[tuple, dict]:
    """:func:`summarize`'s figures over the scenes above ``threshold_m``, keyed by (method, component)."""
    return {(s["method"], s["component"]): s for s in summarize(rows, threshold_m) if s["subset"] != "all"}


#: Bins of the scene's largest |displacement| [m] for :func:`by_displacement` (the paper's curve).
DISPLACEMENT_BINS_M = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, math.inf)


def by_displacement(rows: Sequence[dict], edges_m: Sequence[float] = DISPLACEMENT_BINS_M,
                    methods: Sequence[str] = ("cnn", "joint", "interpolation")) -> List[dict]:
    """Median mSSIM per bin of the scene's largest |displacement| (``max_abs_scene_m``).

    One dict per non-empty bin: ``low_m``, ``high_m``, ``scenes``, and per method
    ``median_mssim`` (east, north, up) over the scenes it scored, ``scored`` (scenes with an
    east value) and ``cnn_wins`` (east, north, up): the share of those scenes where the CNN's
    mSSIM is higher (NaN for the CNN). A peer that scores only some scenes (interpolation
    needs three stations) has its median over those, so compare through ``cnn_wins``.
    """
    score = {(r["scene"], r["component"], r["method"]): r["mssim"] for r in rows}
    out = []
    for low, high in zip(edges_m[:-1], edges_m[1:]):
        scenes = sorted({r["scene"] for r in rows if low < r["max_abs_scene_m"] <= high})
        if not scenes:
            continue
        entry = {"low_m": low, "high_m": high, "scenes": len(scenes), "median_mssim": {}, "scored": {},
                 "cnn_wins": {}}
        for m in methods:
            values = [[(score[s, c, "cnn"], score[s, c, m]) for s in scenes
                       if math.isfinite(score.get((s, c, m), math.nan))] for c in COMPONENTS]
            entry["median_mssim"][m] = tuple(_median([v for _, v in pairs]) for pairs in values)
            entry["scored"][m] = len(values[0])
            entry["cnn_wins"][m] = tuple(math.nan if m == "cnn" or not pairs else
                                         float(np.mean([a > b for a, b in pairs])) for pairs in values)
        out.append(entry)
    return out


def by_displacement_text(bins: Sequence[dict]) -> str:
    """:func:`by_displacement` as a plain-text table.

    Per method the median mSSIM E/N/U, the scenes it scored and, for the peers, the share of
    them where the CNN is better (E/N/U).
    """
    if not bins:
        return ""
    methods = list(bins[0]["median_mssim"])
    lines = [(f"{'largest |displacement|':<22}{'scenes':>7}" + "".join(
        f"  {m + ' E/N/U (n' + ('' if m == 'cnn' else '; CNN better') + ')':<40}" for m in methods)).rstrip()]
    for b in bins:
        span = (f"> {1e3 * b['low_m']:g} mm" if math.isinf(b["high_m"])
                else f"{1e3 * b['low_m']:g}-{1e3 * b['high_m']:g} mm")
        cells = ""
        for m in methods:
            cell = "/".join(f"{v:.2f}" for v in b["median_mssim"][m]) + f" ({b['scored'][m]}"
            if m != "cnn":
                cell += "; " + "/".join("-" if math.isnan(w) else f"{100 * w:.0f}" for w in b["cnn_wins"][m]) + " %"
            cells += f"  {cell + ')':<40}"
        lines.append(f"{span:<22}{b['scenes']:>7}{cells}".rstrip())
    return "\n".join(lines)


def summary_text(summary: Sequence[dict]) -> str:
    """The summary as a plain-text table (what the command line prints)."""
    header = (f"{'subset':<14}{'method':<15}{'scenes':>7}  "
              + "".join(f"{c + ' mSSIM':>12}" for c in COMPONENTS)
              + "".join(f"{c[0].upper() + ' RMSE mm':>11}" for c in COMPONENTS) + "   CNN wins E/N/U")
    lines = [header]
    groups = {}
    for s in summary:
        groups.setdefault((s["subset"], s["method"]), {})[s["component"]] = s
    for (subset, method), comps in groups.items():
        n = comps["east"]["scenes"]
        ms = "".join(f"{comps[c]['median_mssim']:>12.3f}" for c in COMPONENTS)
        rm = "".join(f"{1e3 * comps[c]['median_rmse_m']:>11.2f}" for c in COMPONENTS)
        wins = "/".join("-" if math.isnan(comps[c]["cnn_wins"]) else f"{100 * comps[c]['cnn_wins']:.0f}%"
                        for c in COMPONENTS)
        lines.append(f"{subset:<14}{method:<15}{n:>7}  {ms}{rm}   {wins}")
    return "\n".join(lines)


def write_csv(path: str, rows: Sequence[dict]) -> str:
    """The long table (:data:`COLUMNS`) as CSV, atomically (``.part`` then rename).

    Floats with 6 significant digits (metres: micrometre resolution for mm signals), NaN as
    ``nan``.
    """
    with AtomicPath(path) as part, open(part, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([f"{r[c]:.6g}" if isinstance(r[c], float) else r[c] for c in COLUMNS])
    return path


def read_csv(path: str) -> List[dict]:
    """Rows written by :func:`write_csv` (numbers back as int / float)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["scene"] = int(r["scene"])
        for c in COLUMNS:
            if c not in ("scene", "component", "method"):
                r[c] = float(r[c])
    return rows


# --------------------------------------------------------------------------- calibration


def calibration(rows: Sequence[dict], threshold_m: float = SIGNAL_THRESHOLD_M, method: str = "cnn") -> dict:
    """Pooled fraction of a method's pixels within 1 and 2 standard deviations, per component.

    ``method`` ``cnn`` (the output's std bands) or ``network`` (the std head alone). Scenes
    whose largest |displacement| exceeds ``threshold_m``; each scene weighted by its scored
    pixels (``coverage``). Returns ``{component: (within_1sigma, within_2sigma)}``; a
    calibrated Gaussian uncertainty gives (0.683, 0.954).
    """
    out = {}
    for comp in COMPONENTS:
        sel = [r for r in rows if r["method"] == method and r["component"] == comp
               and r["max_abs_scene_m"] > threshold_m and math.isfinite(r.get("within_1sigma", math.nan))]
        weight = np.array([r["coverage"] for r in sel], dtype=np.float64)
        if not sel or weight.sum() <= 0:
            out[comp] = (math.nan, math.nan)
            continue
        out[comp] = tuple(float(np.sum(weight * [r[key] for r in sel]) / weight.sum())
                          for key in ("within_1sigma", "within_2sigma"))
    return out


# --------------------------------------------------------------------------- command line


def build_parser():
    """The command line (every option documented)."""
    p = argparse.ArgumentParser(
        prog="python -m insar_gnss_3d.core.benchmark",
        description="Score the CNN against asc/desc decomposition and GNSS interpolation on "
                    "synthetic scenes (mSSIM and RMSE per component); prints the summary table.")
    p.add_argument("--model", default="", help="model file (default: the bundled model)")
    p.add_argument("--scenes", type=int, default=100, help="number of scenes")
    p.add_argument("--seed", type=int, default=0, help="seed of the scenes")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--recipe", default="model", choices=sorted(RECIPES),
                   help="scene generator: the model's own, 'classic' (model v1's), 'stress' (10-30 mm "
                        "atmosphere, real Kyushu relief, no track dropout), 'realism', 'multiscale', or "
                        "'tensile' (sills and dykes, a source no model trains on)")
    p.add_argument("--scene", default="{}", help="SceneConfig overrides as JSON (after the recipe)")
    p.add_argument("--dem", default="", help="DEM whose crops replace the fractal terrain")
    p.add_argument("--tracks", default="both", choices=TRACKS,
                   help="keep both tracks, or only asc or desc (the same scenes; two tracks against one)")
    p.add_argument("--views", type=int, default=None, choices=(1, 2),
                   help="2: the network on each scene and its east-west mirror image, averaged; 1: the network "
                        "alone (default: as extraction runs it, 2)")
    p.add_argument("--csv", default="", help="write the long table here")
    p.add_argument("--report", default="", help="write the HTML report here")
    return p


def main(argv=None):
    """Entry point of the command line."""
    args = build_parser().parse_args(argv)
    overrides, dem = recipe_options(args.recipe)
    overrides.update(json.loads(args.scene))
    from .benchmark_report import ExampleKeeper, report_html

    keeper = ExampleKeeper()
    start = time.time()

    def report(fraction, message):
        print(f"[{100 * fraction:5.1f} %] {message}", file=sys.stderr, flush=True)

    rows = run_benchmark(args.model or None, args.scenes, args.seed, args.device, report, None,
                         overrides, dem_path=args.dem or dem, on_scene=keeper, tracks=args.tracks,
                         views=args.views)
    if args.csv:
        write_csv(args.csv, rows)
    if args.report:
        from .report import write_html
        meta = {"model": args.model or BUNDLED_MODEL, "scenes": args.scenes, "seed": args.seed,
                "recipe": args.recipe, "scene overrides": json.dumps(overrides), "tracks": args.tracks,
                "network views": args.views or "as extraction"}
        write_html(args.report, report_html(rows, keeper.examples, meta))
    print(summary_text(summarize(rows)))
    print("Median mSSIM by the scene's largest |displacement|:")
    print(by_displacement_text(by_displacement(rows)))
    for method, label in (("cnn", "CNN output"), ("network", "network std head")):
        cal = calibration(rows, method=method)
        if any(math.isfinite(a) for a, _ in cal.values()):
            print(f"{label} std calibration (> 10 mm scenes), within 1 / 2 sigma: " + ", ".join(
                f"{c} {a:.3f} / {b:.3f}" for c, (a, b) in cal.items()))
    print(f"{args.scenes} scenes in {time.time() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
