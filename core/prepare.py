"""User data -> the CNN's working grid, and its prediction -> the user's grid (no QGIS here).

What ``insargnss3d:extractdisplacement`` does around the network, step by step:

1. **Working grid** (:func:`working_grid`): the model works in metres at the pixel size it
   was trained for (``SceneConfig.pixel_m``), so the scene is the first ascending InSAR
   layer's extent in the WGS 84 / UTM zone of its centre, at that pixel size. A layer that
   is already in that zone keeps its own origin (no shift of half a pixel). A multi-scale
   model (trained over ``SceneConfig.pixel_m_range``) chooses its pixel from the scene's
   extent (:func:`working_pixel_m`).
2. **Epochs** (:func:`.insar_io.track_epochs`): each track is one multi-band raster (dates in the band
   descriptions) or one single-band raster per epoch (``YYYYMMDD`` in the file names), in
   time order; units ``m``, ``mm`` or ``rad`` (:func:`.insar_io.to_los_m`).
3. **Time window** (:func:`choose_window`): the model sees ``gnss_days`` (121) consecutive
   days. It is the span of the GNSS series; when the GNSS series are longer, the
   ``gnss_days`` days that end on the last InSAR epoch. Only the InSAR epochs needed to
   interpolate inside the window are read (:func:`epochs_for_window`), and they are
   interpolated linearly in time onto the model's regularly spaced epochs
   (:func:`.features.resample_epochs`, the same code as in training).
4. **Warping** (:func:`.raster.warp_float32`, GDAL's warper, which streams the source):
   InSAR, LOS and DEM onto the working grid, ``average`` resampling where the source pixels
   are less than half the working pixel (no aliasing), else bilinear.
5. **GNSS** (:func:`gnss_window`, :func:`select_stations`): daily series cut to the window
   (NaN on days without a solution), stations kept within the training margin
   (``SceneConfig.station_margin_m``) around the working grid and with at least
   :data:`MIN_GNSS_DAYS` days in the window. Reference offsets (per InSAR epoch, per GNSS
   station) are removed by :func:`.features.network_inputs`, not here.
6. **Back to the user's grid** (:func:`.raster.write_on_reference_grid`): the working-grid prediction is warped
   (bilinear) onto the grid of the first ascending layer, written to ``<output>.part`` and
   renamed when complete; pixels that neither track covers in any epoch used are NaN.

Memory: inputs stream through GDAL's warper with its block cache capped
(:class:`.raster.gdal_cache_limit`); what is held is the working grid's arrays, one byte per output
pixel (the coverage mask) and blocks of rows, so a 10000 x 10000 input costs little more than
a 1000 x 1000 one.

Frames and signs: :mod:`.conventions`. Station positions in the working grid's frame: origin
at its upper-left corner, x east, y north, metres (as :mod:`.synthetic` and :mod:`.infer`).
Every problem with the input is a ``ValueError`` whose message says what to fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal

from .geometry import Grid
from .insar_io import (LosSource, TrackEpochs, TrackSource, check_los_angles, check_los_values,  # noqa: F401
                       los_paths, read_los, to_los_m, track_epochs)
from .raster import grid_epsg, open_raster, raster_bounds, srs_from_wkt, utm_grid  # noqa: F401
from .raster import warp_float32 as warp
from .raster import (BLOCK_PIXELS, GDAL_CACHE_BYTES, coverage_mask, gdal_cache_limit,  # noqa: F401
                     write_on_reference_grid)
from .runtime import CancelFn, Cancelled, ProgressFn, check_canceled, report

gdal.UseExceptions()

#: A GNSS station needs at least this many observed days inside the window to be used.
MIN_GNSS_DAYS = 2
#: A track starting later / ending earlier than this inside the window gets a note [days]
#: (one Sentinel-1 revisit: the model was trained with such edges).
MAX_EDGE_GAP_DAYS = 12
#: Largest working grid [pixels]: 5000 x 5000 km at 1 km.
MAX_WORKING_PIXELS = 25_000_000

#: Cancelling an extraction raises the one :class:`.runtime.Cancelled`.
ExtractionCancelled = Cancelled


# --------------------------------------------------------------------------- inputs


# --------------------------------------------------------------------------- working grid

#: A multi-scale model works at the pixel that makes the scene's longer side this many pixels
#: long (:func:`working_pixel_m`).
SCENE_SPAN_PX = 128.0


def working_pixel_m(scene, reference_path: str, what: str = "INSAR_ASC") -> float:
    """The working pixel size [m] of a model (its scene configuration ``scene``) on a raster.

    A model trained at one pixel size works at it (``scene.pixel_m``). A multi-scale model
    (``scene.pixel_m_range``) works at the pixel that makes the raster's longer side
    :data:`SCENE_SPAN_PX` pixels, within the trained range. The reason: analysts cut their
    interferograms around the deformation, so the extent grows with the event, and the network
    was trained on ruptures of 10-80 pixels whatever the size of its scenes (the fault's lengths
    scale with the pixel, ``SceneConfig.at_pixel``): a rupture filling half of a 128 px scene is
    64 px long, inside that range. The span is in pixels, not in training scenes: a model
    trained on 128 px scenes would otherwise put Illapel's ~230 km rupture at 2 km pixels
    (~110 px). A 128 km scene works at 1 km, Illapel's 542 km at 4 km.
    """
    if not scene.multi_scale:
        return float(scene.pixel_m)
    grid = working_grid(reference_path, scene.pixel_m, what)
    side_m = max(grid.width, grid.height) * grid.pixel_size
    low, high = scene.pixel_m_range
    return float(np.clip(side_m / SCENE_SPAN_PX, low, high))



def working_grid(reference_path: str, pixel_m: float, what: str = "INSAR_ASC") -> Grid:
    """The model's grid covering a raster: its centre's UTM zone at ``pixel_m`` [m].

    Parameters
    ----------
    reference_path : str
        The first layer of the first track (any CRS, any pixel size).
    pixel_m : float
        The model's pixel size [m] (``SceneConfig.pixel_m``).

    Returns
    -------
    Grid
        North-up grid in WGS 84 / UTM (``crs_wkt`` from the EPSG code) covering the raster's
        extent, at most :data:`MAX_WORKING_PIXELS` (:func:`.raster.utm_grid`).
    """
    return utm_grid(reference_path, pixel_m, what, max_pixels=MAX_WORKING_PIXELS)


# --------------------------------------------------------------------------- time window


def choose_window(track_dates: Sequence[np.ndarray], gnss_dates: np.ndarray, days: int):
    """First day of the model's window and notes for the user.

    The window is ``days`` consecutive days: those the GNSS series span; when they span
    more, the ``days`` days ending on the last InSAR epoch (of any track).

    Returns ``(start: datetime64[D], notes: list of str)``.
    """
    gnss_dates = np.asarray(gnss_dates, dtype="datetime64[D]")
    g0, g1 = gnss_dates[0], gnss_dates[-1]
    span = int((g1 - g0).astype(int)) + 1
    last_insar = max(np.asarray(d, dtype="datetime64[D]")[-1] for d in track_dates)
    notes = []
    if span > days:
        start = last_insar - np.timedelta64(days - 1, "D")
        notes.append(f"The GNSS series span {span} days ({g0} to {g1}), more than the model's "
                     f"{days}-day window: using the {days} days ending on the last InSAR epoch, "
                     f"{start} to {last_insar}.")
    else:
        start = g0
        if span < days:
            notes.append(f"The GNSS series span only {span} days ({g0} to {g1}); the model's "
                         f"{days}-day window {start} to {start + np.timedelta64(days - 1, 'D')} "
                         f"has no GNSS after {g1}.")
    return start, notes


def epochs_for_window(dates: np.ndarray, start: np.datetime64, days: int, what: str):
    """Indices of the epochs needed to interpolate inside the window, and notes.

    From the last epoch on or before the window's first day (or the first epoch) to the
    first epoch on or after its last day (or the last epoch). ``ValueError`` when the track
    does not reach into the window.
    """
    offset = (np.asarray(dates, dtype="datetime64[D]") - start).astype(np.int64)
    end = start + np.timedelta64(days - 1, "D")
    if offset[-1] < 0 or offset[0] > days - 1:
        raise ValueError(f"{what}: the epochs ({dates[0]} to {dates[-1]}) lie outside the "
                         f"model's window {start} to {end} (set by the GNSS series); give InSAR "
                         f"and GNSS data of the same period.")
    before = np.flatnonzero(offset <= 0)
    after = np.flatnonzero(offset >= days - 1)
    first = int(before[-1]) if before.size else 0
    last = int(after[0]) if after.size else len(dates) - 1
    index = list(range(first, last + 1))
    notes = []
    if len(index) < 2:
        raise ValueError(f"{what}: only one epoch ({dates[index[0]]}) falls in the window "
                         f"{start} to {end}; a displacement needs at least two.")
    if offset[0] > MAX_EDGE_GAP_DAYS or offset[-1] < days - 1 - MAX_EDGE_GAP_DAYS:
        notes.append(f"{what} covers only {max(dates[0], start)} to {min(dates[-1], end)} of the "
                     f"window {start} to {end}; the model epochs outside are held at the nearest "
                     f"InSAR epoch.")
    return index, notes


def gnss_window(dates: np.ndarray, enu_m: np.ndarray, start: np.datetime64, days: int) -> np.ndarray:
    """Daily series (S, D, 3) [m] on the window's days, NaN where there is no solution."""
    offset = (np.asarray(dates, dtype="datetime64[D]") - start).astype(np.int64)
    out = np.full((enu_m.shape[0], days, 3), np.nan)
    keep = (offset >= 0) & (offset < days)
    out[:, offset[keep]] = enu_m[:, keep]
    return out


def _lonlat_text(lon: float, lat: float) -> str:
    return f"{abs(lat):.2f} deg {'N' if lat >= 0 else 'S'}, {abs(lon):.2f} deg {'E' if lon >= 0 else 'W'}"


def _far_stations_message(x, y, grid: Grid, margin_m: float) -> str:
    """Why no station is near the scene, without blaming either layer: where each one lies."""
    from osgeo import osr
    xmin, ymin, xmax, ymax = grid.extent
    distance_km = np.hypot(np.maximum(np.maximum(xmin - x, x - xmax), 0.0),
                           np.maximum(np.maximum(ymin - y, y - ymax), 0.0)) / 1e3
    nearest = int(np.nanargmin(distance_km))
    text = (f"The InSAR scene (grid of the first INSAR_ASC layer, or INSAR_DESC) and the GNSS layer "
            f"cover different areas: none of the {len(x)} GNSS stations lies inside the scene or within "
            f"{margin_m / 1e3:g} km of it; the nearest is {distance_km[nearest]:,.0f} km away.")
    try:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(grid.crs_wkt)
        wgs84 = osr.SpatialReference()
        wgs84.ImportFromEPSG(4326)
        for ref in (srs, wgs84):
            ref.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        to_lonlat = osr.CoordinateTransformation(srs, wgs84)
        scene_lon, scene_lat = to_lonlat.TransformPoint(0.5 * (xmin + xmax), 0.5 * (ymin + ymax))[:2]
        gnss_lon, gnss_lat = to_lonlat.TransformPoint(float(x[nearest]), float(y[nearest]))[:2]
    except Exception:  # no usable CRS: the distance says enough
        return text + " Check which of the two is misplaced (its CRS or its coordinates)."
    text += (f" The scene is centred at {_lonlat_text(scene_lon, scene_lat)}, the nearest station at "
             f"{_lonlat_text(gnss_lon, gnss_lat)}.")
    if scene_lat * gnss_lat < 0 and min(abs(scene_lat), abs(gnss_lat)) > 1.0:
        text += (" They lie in different hemispheres: check the sign of the latitudes in the InSAR "
                 "rasters' georeferencing and in the GNSS layer.")
    return text + " Check which of the two is misplaced (its CRS or its coordinates)."


def select_stations(x, y, series_m, grid: Grid, margin_m: float, min_days: int = MIN_GNSS_DAYS):
    """Stations near the grid with enough observed days.

    Within ``margin_m`` of the grid (in x and in y, as in training) with at least
    ``min_days`` observed days.

    Returns ``(keep: bool array (S,), notes)``; ``ValueError`` when none is left.
    """
    xmin, ymin, xmax, ymax = grid.extent
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    dx = np.maximum(np.maximum(xmin - x, x - xmax), 0.0)
    dy = np.maximum(np.maximum(ymin - y, y - ymax), 0.0)
    near = (dx <= margin_m) & (dy <= margin_m)          # the band training drew stations from
    inside = (dx == 0) & (dy == 0)
    observed = np.isfinite(series_m).all(-1).sum(-1) >= min_days
    keep = near & observed
    notes = [f"GNSS: {int(keep.sum())} of {len(x)} stations used ({int((inside & observed).sum())} "
             f"inside the scene, {int((keep & ~inside).sum())} within {margin_m / 1e3:g} km of it); "
             f"{int((~near).sum())} farther away and {int((near & ~observed).sum())} with fewer "
             f"than {min_days} days in the window are ignored."]
    if not keep.any():
        if not near.any():
            raise ValueError(_far_stations_message(x, y, grid, margin_m))
        raise ValueError(f"No GNSS station near the scene has {min_days} or more days of data in "
                         f"the model's window; give GNSS series of the InSAR period.")
    return keep, notes


# --------------------------------------------------------------------------- LOS, DEM


def read_dem(path: str, grid: Grid, what: str = "DEM") -> Tuple[np.ndarray, List[str]]:
    """Elevation [m] on ``grid`` (float32, NaN outside the DEM) and notes."""
    dem = warp(path, grid, what, bands=[1])[0]
    finite = np.isfinite(dem)
    if not finite.any():
        raise ValueError(f"{what} has no valid elevation inside the InSAR scene.")
    notes = []
    if finite.mean() < 0.9:
        notes.append(f"{what} covers only {100 * finite.mean():.0f} % of the scene; elsewhere "
                     f"the model sees sea level.")
    return dem, notes


# --------------------------------------------------------------------------- the whole step


@dataclass
class PreparedScene:
    """Everything :func:`.infer.predict_scene` takes, on the working grid.

    Attributes
    ----------
    grid : Grid
        Working grid (UTM, model pixel size).
    insar_epochs_m : (2, T, H, W) float32
        LOS [m, + towards the satellite] of asc and desc on the model epochs, relative to
        the first; NaN = no data (a whole track NaN when it is missing).
    los : (2, 3, H, W) float32
        LOS unit vectors (NaN for a missing track).
    dem_m : (H, W) float32
    gnss_m : (S, D, 3) float64
        Daily east/north/up [m] on the window's days, NaN gaps, offsets not removed.
    gnss_xy_m : (S, 2)
        Station positions in the working grid's frame (origin upper-left, x east, y north).
    stations : list of str
    window_start : datetime64[D]
        Day 0 of the window; the result is the displacement from it to day ``D - 1``.
    tracks : dict
        ``{"INSAR_ASC": TrackEpochs or None, "INSAR_DESC": ...}`` with only the epochs used.
    notes : list of str
        What the user should know (window choice, partial coverage, ignored stations).
    """

    grid: Grid
    insar_epochs_m: np.ndarray
    los: np.ndarray
    dem_m: np.ndarray
    gnss_m: np.ndarray
    gnss_xy_m: np.ndarray
    stations: List[str]
    window_start: np.datetime64
    tracks: dict
    notes: List[str] = field(default_factory=list)

    def acquisition_days(self) -> list:
        """Per track (asc, desc), the days of its acquisitions the epochs were interpolated from.

        On the GNSS day axis (0 = ``window_start``); None for a missing track or one without dates.
        """
        used = [self.tracks.get(name) for name in ("INSAR_ASC", "INSAR_DESC")]
        return [None if u is None or u.dates is None else days_after(self.window_start, u.dates) for u in used]


def days_after(start: np.datetime64, dates) -> np.ndarray:
    """Days (float) of ``dates`` after ``start``: the window's GNSS day axis when ``start`` is its day 0."""
    return (np.asarray(dates, dtype="datetime64[D]") - start).astype(np.float64)


_check = check_canceled
_report = report


def check_tracks(asc: Optional[TrackSource], desc: Optional[TrackSource], scene) -> List[str]:
    """Refuse a missing track when the model was not trained for it; notes otherwise."""
    if asc is None and desc is None:
        raise ValueError("Give at least one InSAR track (INSAR_ASC and/or INSAR_DESC).")
    if asc is not None and desc is not None:
        return []
    have, missing = ("INSAR_ASC", "INSAR_DESC") if desc is None else ("INSAR_DESC", "INSAR_ASC")
    p = float(getattr(scene, "track_dropout_probability", 0.0))
    if p <= 0:
        raise ValueError(f"{missing} is missing and this model was trained with both tracks "
                         f"always present (track_dropout_probability = 0): it cannot work from "
                         f"{have} alone. Give both tracks, or use a model trained with track "
                         f"dropout.")
    return [f"Only {have} is given: the model was trained with one track missing in "
            f"{100 * p:.0f} % of its scenes (track_dropout_probability = {p:g}), so it can run; "
            f"expect north and the component along the missing look direction to be less certain."]


def check_scene_size(grid: Grid, scene, name: str) -> List[str]:
    """A warning when the scene is smaller than half the model's training scenes.

    The network sees tens of pixels around each pixel (two-level U-Net of 3 x 3 convolutions,
    trained on ``scene.size_px`` squares): on a smaller scene most of that context is padding,
    and the output is not meaningful.
    """
    need = max(8, int(scene.size_px) // 2)
    if min(grid.width, grid.height) >= need:
        return []
    km = grid.pixel_size / 1e3
    return [f"{name} covers only {grid.width} x {grid.height} pixels of {grid.pixel_size:g} m on the model's "
            f"working grid, less than the {need} x {need} pixels ({need * km:g} x {need * km:g} km) of "
            f"context the network needs (it was trained on {scene.size_px} x {scene.size_px}-pixel "
            "scenes): the result is not meaningful. Give InSAR rasters covering a larger area."]


def check_look_directions(los_east_mean: dict) -> List[str]:
    """Warnings when a track's LOS points the other way than its name says.

    ``los_east_mean`` maps ``"INSAR_ASC"`` / ``"INSAR_DESC"`` to the mean east component of
    that track's ground-to-satellite LOS unit vector (None when the track is absent). A
    right-looking SAR (Sentinel-1, and what the model was trained on) sees the ground to the
    east when ascending (east component about -0.6) and to the west when descending (+0.6);
    see :mod:`.conventions`.
    """
    asc, desc = los_east_mean.get("INSAR_ASC"), los_east_mean.get("INSAR_DESC")
    west = lambda v: v is not None and v < -0.1      # noqa: E731  ascending-like
    east = lambda v: v is not None and v > 0.1       # noqa: E731  descending-like
    if east(asc) and west(desc):
        return [f"The tracks look swapped: LOS_ASC points east (mean east component {asc:+.2f}), as a "
                f"descending track does, and LOS_DESC west ({desc:+.2f}), as an ascending one does. "
                "Check the inputs: if INSAR_ASC holds the descending track, give it and its LOS as "
                "INSAR_DESC/LOS_DESC and the other as INSAR_ASC/LOS_ASC (the model reads them in that order)."]
    if asc is not None and desc is not None and (east(asc) and east(desc) or west(asc) and west(desc)):
        way = "east (both descending-like)" if east(asc) else "west (both ascending-like)"
        return [f"LOS_ASC and LOS_DESC point the same way, {way}: mean east components {asc:+.2f} "
                f"and {desc:+.2f}. Check the inputs: one track may be given twice. INSAR_ASC/LOS_ASC "
                "must be the ascending track (LOS east component about -0.6 for Sentinel-1) and "
                "INSAR_DESC/LOS_DESC the descending one (about +0.6)."]
    if east(asc) and desc is None:
        return [f"LOS_ASC points east (mean east component {asc:+.2f}), as a descending track does; "
                "check the inputs: if this is the descending track, give it as INSAR_DESC/LOS_DESC."]
    if west(desc) and asc is None:
        return [f"LOS_DESC points west (mean east component {desc:+.2f}), as an ascending track does; "
                "check the inputs: if this is the ascending track, give it as INSAR_ASC/LOS_ASC."]
    return []


@gdal_cache_limit()
def prepare_scene(asc: Optional[TrackSource], desc: Optional[TrackSource], dem_path: str,
                  gnss_dates, gnss_enu_m, gnss_x, gnss_y, stations: Sequence[str], scene,
                  units: str = "m", grid: Optional[Grid] = None,
                  progress: ProgressFn = None, is_canceled: CancelFn = None) -> PreparedScene:
    """Read, check and resample every input onto the model's working grid and epochs.

    Parameters
    ----------
    asc, desc : TrackSource or None
        The tracks; one may be None when the model was trained with track dropout.
    dem_path : str
        DEM raster [m] in any CRS and resolution.
    gnss_dates : (D0,) datetime64[D]
        Consecutive days of the GNSS series.
    gnss_enu_m : (S0, D0, 3)
        Daily east/north/up [m] (any constant offset), NaN gaps.
    gnss_x, gnss_y : (S0,)
        Station coordinates in the working grid's CRS [m] (:func:`working_grid`).
    stations : sequence of str
        Station names.
    scene : SceneConfig
        The model's scene configuration (pixel size, epochs, window length, margin).
    units : {"m", "mm", "rad"}
        InSAR units (:func:`.insar_io.to_los_m`).
    grid : Grid, optional
        The working grid, if already computed with :func:`working_grid`.
    progress : callable(fraction, message), optional
    is_canceled : callable() -> bool, optional

    Returns
    -------
    PreparedScene
    """
    from .synthetic import model_epoch_days

    notes = check_tracks(asc, desc, scene)
    for track in (asc, desc):
        if track is not None and not track.los_path:
            check_los_angles(track.los)
    reference = asc if asc is not None else desc
    if grid is None:
        grid = working_grid(reference.paths[0], working_pixel_m(scene, reference.paths[0], reference.name),
                            reference.name)
    notes += check_scene_size(grid, scene, reference.name)
    days = int(scene.gnss_days)
    tracks = {"INSAR_ASC": None, "INSAR_DESC": None}
    given = [t for t in (asc, desc) if t is not None]
    epochs = {t.name: track_epochs(t) for t in given}

    gnss_dates = np.asarray(gnss_dates, dtype="datetime64[D]")
    gnss_enu_m = np.asarray(gnss_enu_m, dtype=np.float64)
    if gnss_dates.size == 0 or gnss_enu_m.shape[0] == 0:
        raise ValueError("GNSS: the layer holds no station series.")
    start, window_notes = choose_window([e.dates for e in epochs.values()], gnss_dates, days)
    notes += window_notes
    selected = {}
    for name, e in epochs.items():
        index, more = epochs_for_window(e.dates, start, days, name)
        notes += more
        selected[name] = index
    gnss = gnss_window(gnss_dates, gnss_enu_m, start, days)
    keep, more = select_stations(gnss_x, gnss_y, gnss, grid, scene.station_margin_m)
    notes += more
    _check(is_canceled)

    model_days = model_epoch_days(scene)
    t_count = len(model_days)
    insar = np.full((2, t_count, grid.height, grid.width), np.nan, dtype=np.float32)
    los = np.full((2, 3, grid.height, grid.width), np.nan, dtype=np.float32)
    steps = len(given) * 2 + 1
    step = 0
    for k, name in enumerate(("INSAR_ASC", "INSAR_DESC")):
        track = asc if k == 0 else desc
        if track is None:
            continue
        e = epochs[name]
        index = selected[name]
        used = TrackEpochs(name, e.dates[index], [e.sources[i] for i in index])
        tracks[name] = used
        stack = np.empty((len(index), grid.height, grid.width), dtype=np.float32)
        # group consecutive epochs of one file into one warp call
        i = 0
        while i < len(index):
            path = used.sources[i][0]
            j = i
            while j < len(index) and used.sources[j][0] == path:
                j += 1
            stack[i:j] = warp(path, grid, name, bands=[b for _, b in used.sources[i:j]])
            i = j
            _check(is_canceled)
            _report(progress, (step + i / len(index)) / steps, f"{name}: read {i} of {len(index)} epochs")
        stack = to_los_m(stack, units).astype(np.float32, copy=False) if units != "m" else stack
        notes += check_los_values(stack, units, name)
        for d, epoch in zip(used.dates, stack):
            if not np.isfinite(epoch).any():
                raise ValueError(f"{name}: the epoch {d} holds no valid pixel inside the scene.")
        acq = days_after(start, used.dates)
        insar[k] = resample_in_blocks(stack, acq, model_days)
        del stack
        step += 1
        _report(progress, step / steps, f"{name}: {len(index)} epochs on {t_count} model epochs")
        los[k] = read_los(track.los, grid, resampling="auto", dtype=np.float32)
        step += 1
        _report(progress, step / steps, f"{name}: LOS read")
        _check(is_canceled)
    notes += check_look_directions({name: (float(np.nanmean(los[k, 0])) if tracks[name] is not None else None)
                                    for k, name in enumerate(("INSAR_ASC", "INSAR_DESC"))})
    dem, more = read_dem(dem_path, grid)
    notes += more
    _report(progress, 1.0, "DEM read")
    xy = np.stack([np.asarray(gnss_x, dtype=np.float64)[keep] - grid.x0,
                   np.asarray(gnss_y, dtype=np.float64)[keep] - grid.y0], -1)
    return PreparedScene(grid, insar, los, dem, gnss[keep], xy,
                         [s for s, k in zip(stations, keep) if k], start, tracks, notes)


def resample_in_blocks(stack, acq_days, model_days, block_bytes: int = 128 * 2 ** 20) -> np.ndarray:
    """:func:`.features.resample_epochs` of one track, block by block of rows.

    ``stack`` (A, H, W) LOS [m] at ``acq_days`` (A,) days from the window start ->
    (T, H, W) float32 at ``model_days``, relative to the first model epoch.
    """
    import torch

    from .features import resample_epochs

    a, h, w = stack.shape
    t = len(model_days)
    out = np.empty((t, h, w), dtype=np.float32)
    rows = max(1, block_bytes // (4 * w * (3 * a + 4 * t)))
    days = torch.as_tensor(acq_days, dtype=torch.float64)[None, None]
    for r in range(0, h, rows):
        block = torch.from_numpy(np.ascontiguousarray(stack[:, r:r + rows]))[None, None]
        out[:, r:r + rows] = resample_epochs(block, days, model_days)[0, 0].numpy()
    return out


#: The result onto the first InSAR layer's grid (:func:`.raster.write_on_reference_grid`).
write_result = write_on_reference_grid


# --------------------------------------------------------------------------- the network


def check_model_inputs(model, scene):
    """Refuse a model whose inputs do not match its scene configuration (``ModelFileError``)."""
    from .modelfile import ModelFileError

    cfg = model.config
    problems = []
    if cfg.epochs != scene.model_epochs:
        problems.append(f"{cfg.epochs} InSAR epochs in the network but {scene.model_epochs} in "
                        f"its scene configuration")
    if cfg.gnss_days != scene.gnss_days:
        problems.append(f"{cfg.gnss_days} GNSS days in the network but {scene.gnss_days} in its "
                        f"scene configuration")
    if not (scene.pixel_m > 0 and math.isfinite(scene.pixel_m)):
        problems.append(f"pixel size {scene.pixel_m}")
    if problems:
        raise ModelFileError("The model file expects other inputs than it describes: "
                             + "; ".join(problems) + ". Retrain or re-export it.")


def run_model(prepared: PreparedScene, model, device="cpu", tile_px: int = 128,
              overlap_px: int = 32, progress: ProgressFn = None,
              is_canceled: CancelFn = None, with_std: bool = False):
    """East/north/up [m] (3, H, W) float32 on the working grid (:func:`.infer.predict_scene`).

    Tiles of ``tile_px`` overlapping by ``overlap_px`` are blended without seams; NaN where
    no tile had InSAR data. ``with_std``: ``(mean, std or None)`` as ``predict_scene``.
    """
    from .infer import predict_scene

    try:
        return predict_scene(model, prepared.insar_epochs_m, prepared.los, prepared.dem_m,
                             prepared.gnss_m, prepared.gnss_xy_m, prepared.grid.pixel_size,
                             tile_px=tile_px, overlap_px=overlap_px, device=device,
                             progress=progress, is_canceled=is_canceled, with_std=with_std)
    except Cancelled as exc:
        raise Cancelled("Cancelled by the user; no output was written.") from exc
