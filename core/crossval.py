"""Checks that need no truth: leave-one-station-out errors and LOS residuals on real data.

Each chosen GNSS station is removed in turn; the network (with its data-consistency step),
the joint InSAR + GNSS peer and GNSS interpolation are rerun without it, and their 3-D
displacement at the station is compared with the station's own net displacement, an
observation none of them saw (METHOD.md, "Real-data checks without truth"). Frames:
:mod:`.conventions`; positions in the working grid's frame (origin upper-left, x east,
y north, metres).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional, Sequence

import numpy as np

from .benchmark import interpolation_field, net_displacement, sample_at

#: Methods compared, in table order.
METHODS = ("cnn", "joint", "interpolation")


def nearest_to_largest(prepared, count: Optional[int] = None, within_m: Optional[float] = None) -> List[int]:
    """Indices of the stations inside the grid nearest the one with the largest net motion.

    ``count`` nearest (all by default), optionally only those within ``within_m`` [m].
    Stations outside the grid (in the margin) cannot be compared with a field and are skipped.
    """
    net = net_displacement(prepared)
    size = np.linalg.norm(np.nan_to_num(net), axis=1)
    if size.size == 0:
        return []
    xy = prepared.gnss_xy_m
    grid = prepared.grid
    inside = ((xy[:, 0] >= 0) & (xy[:, 0] < grid.width * grid.pixel_size)
              & (xy[:, 1] <= 0) & (xy[:, 1] > -grid.height * grid.pixel_size))
    dist = np.hypot(*(xy - xy[int(np.argmax(size))]).T)
    order = [int(i) for i in np.argsort(dist) if np.isfinite(net[i]).all() and inside[i]]
    if within_m is not None:
        order = [i for i in order if dist[i] <= within_m]
    return order[:count] if count is not None else order


def _without(prepared, index: int):
    keep = np.arange(len(prepared.stations)) != index
    return dataclasses.replace(prepared, gnss_m=prepared.gnss_m[keep], gnss_xy_m=prepared.gnss_xy_m[keep],
                               stations=[s for s, k in zip(prepared.stations, keep) if k])


def joint_on_prepared(prepared, scene, event_day: Optional[float] = None):
    """The joint peer (:func:`.joint.estimate_scene`, kriging prior) on a prepared scene.

    The tracks' series on the model epochs (a missing track is all NaN; the time function
    sampled as those epochs were, from the acquisition days), the window's daily GNSS; a
    step at ``event_day`` or the GNSS time function (linear when nothing moves).
    """
    from .joint import estimate_scene
    from .synthetic import model_epoch_days

    days = model_epoch_days(scene)
    series = [e if np.isfinite(e).any() else None for e in prepared.insar_epochs_m]
    return estimate_scene(series, [days, days], list(prepared.los), prepared.gnss_m, prepared.gnss_xy_m,
                          prepared.grid.pixel_size, event_day=event_day, fallback_linear=True,
                          acquisition_days_list=prepared.acquisition_days())


def _fields(prepared, model, scene, device, event_day, methods):
    """Each method's (3, H, W) field and standard deviation [m] on the prepared scene.

    ``{method: (field, std or None)}``: the CNN's std bands, the joint peer's posterior
    standard deviation; the interpolation has none.
    """
    from .consistency import consistent_extraction
    from .prepare import run_model

    out = {}
    if "cnn" in methods:
        network, network_std = run_model(prepared, model, device=device, with_std=True)
        output = consistent_extraction(prepared, network, scene, event_day, network_std)[0]
        out["cnn"] = (output[:3], output[3:])
    if "joint" in methods:
        joint = joint_on_prepared(prepared, scene, event_day)
        out["joint"] = (joint.estimate_m, joint.std_m)
    if "interpolation" in methods:
        grid = prepared.grid
        out["interpolation"] = (interpolation_field(prepared.gnss_xy_m, net_displacement(prepared),
                                                    (grid.height, grid.width), grid.pixel_size)[0], None)
    return out


def leave_one_out(prepared, model, scene, indices: Sequence[int], device="cpu",
                  event_day: Optional[float] = None, methods: Sequence[str] = METHODS,
                  progress: Optional[Callable[[float, str], None]] = None) -> List[dict]:
    """Leave-one-station-out 3-D errors (one row per station and method).

    Parameters
    ----------
    prepared : PreparedScene
        The scene with every station (:func:`.prepare.prepare_scene`).
    model, scene
        The network and its :class:`.synthetic.SceneConfig` (:func:`.modelfile.load_model`).
    indices : sequence of int
        Stations to leave out, in turn (e.g. :func:`nearest_to_largest`).
    event_day : float, optional
        Step at this window day instead of the GNSS time function.

    Returns
    -------
    list of dict
        ``station``, ``method``, ``observed_m`` and ``predicted_m`` (east, north, up),
        ``predicted_std_m`` (the method's standard deviation there; NaN for the
        interpolation), ``error_3d_m`` (Euclidean norm of the difference; NaN where the
        method gives nothing there) and ``distance_to_largest_m``.
    """
    net = net_displacement(prepared)
    size = np.linalg.norm(np.nan_to_num(net), axis=1)
    origin = prepared.gnss_xy_m[int(np.argmax(size))] if size.size else np.zeros(2)
    rows = []
    for n, i in enumerate(indices):
        fields = _fields(_without(prepared, i), model, scene, device, event_day, methods)
        at = prepared.gnss_xy_m[i:i + 1]
        for method in methods:
            field, std = fields[method]
            pred = sample_at(np.asarray(field, dtype=np.float64), at, prepared.grid.pixel_size)[:, 0]
            sd = (np.full(3, np.nan) if std is None else
                  sample_at(np.asarray(std, dtype=np.float64), at, prepared.grid.pixel_size)[:, 0])
            rows.append({"station": prepared.stations[i], "method": method,
                         "observed_m": [float(v) for v in net[i]], "predicted_m": [float(v) for v in pred],
                         "predicted_std_m": [float(v) for v in sd],
                         "error_3d_m": float(np.linalg.norm(pred - net[i])),
                         "distance_to_largest_m": float(np.hypot(*(prepared.gnss_xy_m[i] - origin)))})
        if progress is not None:
            progress((n + 1) / len(indices), f"left out {prepared.stations[i]} ({n + 1} of {len(indices)})")
    return rows


def median_errors(rows: Sequence[dict]) -> dict:
    """Median leave-one-out 3-D error [m] per method (NaN rows ignored)."""
    out = {}
    for method in METHODS:
        values = [r["error_3d_m"] for r in rows if r["method"] == method and np.isfinite(r["error_3d_m"])]
        out[method] = float(np.median(values)) if values else float("nan")
    return out


def coverage_at_stations(rows: Sequence[dict]) -> dict:
    """Per method: fractions of the left-out stations' components within 1 and 2 sigma, count.

    ``|predicted - observed| <= k * predicted_std`` over every component of every left-out
    station (the station's own net-displacement error, millimetres, is left out beside
    errors of centimetres): the uncertainty checked against data no method saw. NaN for a
    method without a standard deviation. A calibrated Gaussian gives 0.683 and 0.954.
    """
    from .metrics import within_sigma

    out = {}
    for method in METHODS:
        sel = [r for r in rows if r["method"] == method and "predicted_std_m" in r]
        out[method] = within_sigma([np.subtract(r["predicted_m"], r["observed_m"]) for r in sel],
                                   [r["predicted_std_m"] for r in sel])
    return out


#: Columns of the leave-one-out table (CSV).
TABLE_COLUMNS = ("station", "method", "distance_to_largest_km", "observed_east_m", "observed_north_m",
                 "observed_up_m", "predicted_east_m", "predicted_north_m", "predicted_up_m", "error_3d_m",
                 "std_east_m", "std_north_m", "std_up_m")


def write_table(path: str, rows: Sequence[dict]) -> str:
    """The leave-one-out rows as CSV (:data:`TABLE_COLUMNS`), atomically."""
    import csv

    from .runtime import AtomicPath

    with AtomicPath(path) as part, open(part, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_COLUMNS)
        for r in rows:
            writer.writerow([r["station"], r["method"], f"{r['distance_to_largest_m'] / 1e3:.1f}",
                             *[f"{v:.6g}" for v in r["observed_m"]], *[f"{v:.6g}" for v in r["predicted_m"]],
                             f"{r['error_3d_m']:.6g}",
                             *[f"{v:.6g}" for v in r.get("predicted_std_m", [float("nan")] * 3)]])
    return path


def error_figure(rows: Sequence[dict]):
    """Bar chart: leave-one-out 3-D error [mm] per station (by distance) and method."""
    from .report import new_figure

    stations = sorted({r["station"] for r in rows},
                      key=lambda s: next(r["distance_to_largest_m"] for r in rows if r["station"] == s))
    fig = new_figure(max(5.0, 0.6 * len(stations) + 2.0), 3.2)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(METHODS)
    for k, method in enumerate(METHODS):
        values = [next((1e3 * r["error_3d_m"] for r in rows if r["station"] == s and r["method"] == method),
                       np.nan) for s in stations]
        ax.bar(np.arange(len(stations)) + (k - 1) * width, values, width, label=method)
    ax.set_xticks(np.arange(len(stations)), stations, rotation=45, ha="right")
    ax.set_ylabel("3-D error at the left-out station [mm]")
    ax.set_title("Leave-one-station-out (stations ordered by distance to the largest motion)")
    ax.legend()
    return fig


def report_html(rows: Sequence[dict], quality: Optional[dict] = None) -> str:
    """HTML report: median errors, the bar chart, the table and the LOS residuals per track."""
    from .report import figure_html, html_document, html_table, paragraph

    med = median_errors(rows)
    parts = [paragraph("Each station was left out in turn; every method was rerun without it and "
                       "compared with the station's own net displacement (GNSS as independent truth)."),
             html_table(["method", "median 3-D error [mm]"], [[m, 1e3 * med[m]] for m in METHODS], ".1f"),
             html_table(["method", "components within 1 sigma", "within 2 sigma", "components"],
                        [[m, *coverage_at_stations(rows)[m]] for m in METHODS], ".2f"),
             paragraph("How far to trust the standard deviations: the share of the left-out stations' "
                       "east, north and up whose error lies within one and two of the method's own "
                       "standard deviations there (0.68 and 0.95 for a calibrated Gaussian; a few "
                       "stations make a rough figure).", "note"),
             figure_html(error_figure(rows), "leave-one-out errors"),
             html_table(["station", "method", "distance [km]", "3-D error [mm]"],
                        [[r["station"], r["method"], r["distance_to_largest_m"] / 1e3, 1e3 * r["error_3d_m"]]
                         for r in rows], ".1f")]
    if quality:
        parts.append("<h2>LOS residual of the network's output with every station (data consistency)</h2>")
        parts.append(html_table(["track", "noise estimate [mm]", "LOS residual RMS [mm]"],
                                [[t["track"], 1e3 * t["noise_m"], 1e3 * t["los_residual_rms_m"]]
                                 for t in quality.get("tracks", []) if t.get("used")], ".1f"))
        parts += [paragraph(f"{n['level'].upper()}: {n['text']}") for n in quality.get("notes", [])]
    return html_document("InSAR-GNSS 3D: cross-validation without truth", parts)
