"""User data -> the joint InSAR + GNSS least-squares estimate (``insargnss3d:combineinsargnss``).

The reading is :mod:`.prepare`'s (working grid, epoch dates, the 121-day window, warping,
station selection), so this peer and ``extractdisplacement`` see the same scene. Unlike the
CNN, the joint estimate uses every acquisition at its own date (no resampling onto model
epochs) and needs no DEM. The estimate itself is :func:`.joint.estimate_scene`.

Station margin: a station outside the scene still informs the bounded GNSS prior
(:func:`.gnss_prior.kriging_prior`), so stations are taken within
``max(30 km, a quarter of the scene's larger side)`` of it (:func:`station_margin_m`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np

from .conventions import GNSS_DAYS
from .runtime import CancelFn, ProgressFn

#: Default working pixel size [m]: the bundled model's, so that the peers compare on one grid.
DEFAULT_PIXEL_M = 1000.0
#: Smallest station margin around the scene [m] (the model's training margin).
MIN_MARGIN_M = 30e3



@dataclass
class CombinedScene:
    """The joint estimate on the working grid and what produced it.

    ``result`` (6, H, W) float32: east, north, up [m] and their posterior standard
    deviations; ``grid`` the working grid; ``tracks`` ``{"INSAR_ASC": TrackEpochs or None,
    ...}`` (the epochs used, for the coverage mask of :func:`.prepare.write_result`);
    ``window_start`` day 0; ``quality`` the JSON-ready dict of :func:`.joint.estimate_scene`
    plus the window and grid; ``notes`` for the log.
    """

    result: np.ndarray
    grid: object
    tracks: dict
    window_start: np.datetime64
    quality: dict
    notes: List[str] = field(default_factory=list)


def _check(is_canceled: CancelFn):
    from .prepare import ExtractionCancelled
    if is_canceled is not None and is_canceled():
        raise ExtractionCancelled("Cancelled by the user; no output was written.")


def station_margin_m(grid) -> float:
    """Margin [m] around the grid within which stations are used (see the module docstring)."""
    return max(MIN_MARGIN_M, 0.25 * max(grid.width, grid.height) * grid.pixel_size)


def _read_track(track, used, grid, units, is_canceled):
    """(epochs, H, W) float32 LOS [m] of the epochs ``used`` and the notes, on ``grid``."""
    from . import prepare

    stack = np.empty((len(used.sources), grid.height, grid.width), dtype=np.float32)
    i = 0
    while i < len(used.sources):                       # one warp call per file
        path = used.sources[i][0]
        j = i
        while j < len(used.sources) and used.sources[j][0] == path:
            j += 1
        stack[i:j] = prepare.warp(path, grid, track.name, bands=[b for _, b in used.sources[i:j]])
        i = j
        _check(is_canceled)
    if units != "m":
        stack = prepare.to_los_m(stack, units).astype(np.float32, copy=False)
    notes = prepare.check_los_values(stack, units, track.name)
    for d, epoch in zip(used.dates, stack):
        if not np.isfinite(epoch).any():
            raise ValueError(f"{track.name}: the epoch {d} holds no valid pixel inside the scene.")
    return stack, notes


def _check_net_displacements(gnss_m, keep, stations, start, days: int) -> List[str]:
    """Notes on kept stations without a net displacement; ValueError when none has one.

    The joint estimate's prior is the kriging of each station's net displacement, the
    median of the window's last :data:`.time_function.END_DAYS` days minus that of its first
    (:func:`.joint.estimate_scene`). A station without a solution in either end has none;
    with no such station at all the prior is undefined (infinite standard deviation) and
    the estimate would be NaN everywhere.
    """
    from .time_function import END_DAYS, _end_levels

    first_m, last_m = _end_levels(gnss_m[keep])
    has_net = np.isfinite(last_m - first_m).all(1)
    if has_net.all():
        return []
    names = [s for s, k in zip(stations, keep) if k]
    days_seen = np.isfinite(gnss_m[keep]).all(-1).sum(-1)
    lacking = ", ".join(f"{n} ({int(c)} days)" for n, c, ok in zip(names, days_seen, has_net) if not ok)
    end = start + np.timedelta64(days - 1, "D")
    if not has_net.any():
        raise ValueError(
            f"GNSS: no station near the scene has solutions in both the first and the last "
            f"{END_DAYS} days of the window {start} to {end} ({lacking}), so none gives a "
            f"displacement over the window and the joint estimate has no GNSS to stand on. Give "
            f"series that span the window, or use decomposelos for the InSAR alone.")
    return [f"GNSS: {lacking} lack solutions in the first or the last {END_DAYS} days of the "
            f"window, so they give no displacement and are left out."]


def combine_scene(asc, desc, gnss_dates, gnss_enu_m, gnss_x, gnss_y, stations: Sequence[str], *,
                  units: str = "m", pixel_m: float = DEFAULT_PIXEL_M, event_date=None,
                  grid=None, days: int = GNSS_DAYS, progress: ProgressFn = None,
                  is_canceled: CancelFn = None) -> CombinedScene:
    """Read the user's tracks and GNSS and return the joint estimate on the working grid.

    Parameters
    ----------
    asc, desc : :class:`.insar_io.TrackSource` or None
        The tracks (at least one).
    gnss_dates : (D0,) datetime64[D]
        Consecutive days of the GNSS series.
    gnss_enu_m : (S0, D0, 3)
        Daily east/north/up [m], any constant offset, NaN gaps.
    gnss_x, gnss_y : (S0,)
        Station coordinates in the working grid's CRS [m].
    stations : sequence of str
        Station names.
    units : {"m", "mm", "rad"}
        InSAR units.
    pixel_m : float
        Working pixel size [m].
    event_date : str or datetime64, optional
        Date of a sudden event: a step at that date replaces the GNSS time function.
    grid : Grid, optional
        The working grid (default :func:`.prepare.working_grid` of the first layer).
    days : int
        Window length [days] (as ``extractdisplacement``).
    progress, is_canceled : callables, optional

    Returns
    -------
    CombinedScene
    """
    from . import prepare
    from .joint import estimate_scene

    if asc is None and desc is None:
        raise ValueError("Give at least one InSAR track (INSAR_ASC and/or INSAR_DESC).")
    reference = asc if asc is not None else desc
    if grid is None:
        grid = prepare.working_grid(reference.paths[0], pixel_m, reference.name)
    given = [t for t in (asc, desc) if t is not None]
    for track in given:
        if not track.los_path:
            prepare.check_los_angles(track.los)
    epochs = {t.name: prepare.track_epochs(t) for t in given}
    gnss_dates = np.asarray(gnss_dates, dtype="datetime64[D]")
    gnss_enu_m = np.asarray(gnss_enu_m, dtype=np.float64)
    if gnss_dates.size == 0 or gnss_enu_m.shape[0] == 0:
        raise ValueError("GNSS: the layer holds no station series.")
    start, notes = prepare.choose_window([e.dates for e in epochs.values()], gnss_dates, days)
    gnss = prepare.gnss_window(gnss_dates, gnss_enu_m, start, days)
    keep, more = prepare.select_stations(gnss_x, gnss_y, gnss, grid, station_margin_m(grid))
    notes += more
    notes += _check_net_displacements(gnss, keep, stations, start, days)
    event_day = None
    if event_date is not None:
        try:
            event = np.datetime64(str(event_date).strip()[:10], "D")
        except ValueError:
            raise ValueError(f"EVENT_DATE {event_date!r} is not a date; give it as YYYY-MM-DD.") from None
        event_day = float((event - start).astype(np.int64))
        if not 0 < event_day < days:
            raise ValueError(f"EVENT_DATE {event} lies outside the window {start} to "
                             f"{start + np.timedelta64(days - 1, 'D')}; the displacement would be "
                             f"zero or undefined.")
    tracks = {"INSAR_ASC": None, "INSAR_DESC": None}
    series, epoch_days, units_list = [], [], []
    for k, (name, track) in enumerate((("INSAR_ASC", asc), ("INSAR_DESC", desc))):
        if track is None:
            series.append(None)
            epoch_days.append(None)
            units_list.append(None)
            continue
        e = epochs[name]
        index, more = prepare.epochs_for_window(e.dates, start, days, name)
        notes += [m.replace("model epochs", "days") for m in more]
        used = prepare.TrackEpochs(name, e.dates[index], [e.sources[i] for i in index])
        tracks[name] = used
        stack, more = _read_track(track, used, grid, units, is_canceled)
        notes += more
        series.append(stack)
        epoch_days.append((used.dates - start).astype(np.float64))
        units_list.append(prepare.read_los(track.los, grid, resampling="auto", dtype=np.float32))
        if progress is not None:
            progress((k + 1) / 3.0, f"{name}: {len(index)} epochs read")
    xy = np.stack([np.asarray(gnss_x, dtype=np.float64)[keep] - grid.x0,
                   np.asarray(gnss_y, dtype=np.float64)[keep] - grid.y0], -1)
    names = [s for s, k in zip(stations, keep) if k]
    joint = estimate_scene(series, epoch_days, units_list, gnss[keep], xy, grid.pixel_size,
                           gnss_days=np.arange(days, dtype=np.float64), event_day=event_day,
                           station_names=names, scale_prior=False)
    _check(is_canceled)
    result = np.concatenate([joint.estimate_m, joint.std_m]).astype(np.float32)
    quality = dict(joint.quality)
    quality.update(window_start=str(start), window_end=str(start + np.timedelta64(days - 1, "D")),
                   pixel_m=float(grid.pixel_size), grid_size_px=[int(grid.width), int(grid.height)],
                   event_date=None if event_day is None else str(start + np.timedelta64(int(event_day), "D")))
    for q, name in zip(quality["tracks"], ("INSAR_ASC", "INSAR_DESC")):
        q["parameter"] = name
    return CombinedScene(result, grid, tracks, start, quality, notes + joint.notes)
