"""InSAR inputs without QGIS: epoch dates, units, plausibility checks, warping onto a grid.

An InSAR track is given either as one multi-band raster (bands = epochs, dates in the band
descriptions) or as one single-band raster per epoch (dates as ``YYYYMMDD`` in the file
names). Values are cumulative LOS displacement per epoch relative to the first epoch
(LiCSBAS ``cum``, MintPy ``timeseries``) in ``m``, ``mm`` or ``rad`` (LiCSAR unwrapped
phase); conventions in :mod:`.conventions`.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal

from .conventions import phase_to_los_m
from .geometry import Grid, los_unit_vector, unit_vector_error
from .raster import open_raster, raster_grid, warp_to_grid  # noqa: F401 (raster_grid: importers)

gdal.UseExceptions()

#: Units accepted for InSAR values (``INSAR_UNITS``), in the order of the Processing enum.
INSAR_UNITS = ("m", "mm", "rad")

#: Larger |LOS displacement| [m] than this cannot come from InSAR (decorrelation and
#: unwrapping limit real cumulative LOS to metres even for great earthquakes): the unit
#: must be wrong.
MAX_LOS_M = 50.0
#: The 99th percentile of |LOS| [m] above which a note warns that the unit may be wrong.
LARGE_LOS_M = 2.0
#: The 99th percentile of |LOS| [m] below which a note warns that the unit may be wrong:
#: atmospheric delays alone give several mm over a 121-day series, so metres read as
#: millimetres (values 1000 times too small) fall below it.
SMALL_LOS_M = 1e-3
#: Largest accepted | |v| - 1 | of a LOS unit vector raster (bilinear resampling of a
#: smooth unit-vector field changes the norm by far less).
UNIT_VECTOR_TOLERANCE = 0.02

_DATE_RE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


def dates_in_text(text: str) -> List[np.datetime64]:
    """Distinct calendar dates written as ``YYYYMMDD`` or ``YYYY-MM-DD`` in ``text``.

    Only valid dates between 1970 and 2100 count, so other 8-digit numbers are ignored.
    """
    found = []
    for y, m, d in _DATE_RE.findall(text or ""):
        try:
            date = _dt.date(int(y), int(m), int(d))
        except ValueError:
            continue
        if 1970 <= date.year <= 2100:
            value = np.datetime64(date, "D")
            if value not in found:
                found.append(value)
    return found


def epoch_dates(labels: Sequence[str], what: str) -> Optional[np.ndarray]:
    """One date per epoch from band descriptions or file names, or None if none has one.

    Parameters
    ----------
    labels : sequence of str
        Band descriptions or file names, one per epoch in the given order.
    what : str
        How the labels are named in messages ("band description", "file name").

    Returns
    -------
    numpy.ndarray of datetime64[D] or None
        None when no label holds a date. Names with two dates that all share the first
        (``<reference>_<epoch>``, a cumulative series from one reference) are dated by the
        second. Raises ``ValueError`` when only some labels hold a date, when a label holds
        two dates of an interferogram (pairs not sharing one reference) or when the dates are
        not strictly increasing.
    """
    per_label = [dates_in_text(text) for text in labels]
    if not any(per_label):
        return None
    pairs = [found for found in per_label if len(found) == 2]
    if len(pairs) == len(per_label) > 1 and len({found[0] for found in pairs}) == 1:
        # reference_epoch names sharing one reference (OPERA DISP-S1, MintPy exports): a
        # cumulative series from that reference, each epoch dated by its second date
        per_label = [found[1:] for found in pairs]
    for text, found in zip(labels, per_label):
        if not found:
            raise ValueError(f"The {what} '{text}' holds no date (YYYYMMDD or YYYY-MM-DD) "
                             f"while others do; name every epoch by its date.")
        if len(found) > 1:
            raise ValueError(
                f"The {what} '{text}' holds {len(found)} dates, like an interferogram "
                f"(date1_date2). Give cumulative displacement per epoch (a LiCSBAS 'cum' or "
                f"MintPy 'timeseries' export), one date per epoch.")
    dates = np.array([found[0] for found in per_label], dtype="datetime64[D]")
    check_epoch_dates(dates)
    return dates


def check_epoch_dates(dates: np.ndarray):
    """Refuse fewer than 2 epochs or dates that are not strictly increasing (``ValueError``)."""
    if len(dates) < 2:
        raise ValueError(f"{len(dates)} epoch: a displacement needs at least 2 epochs.")
    steps = np.diff(dates.astype("datetime64[D]").astype(np.int64))
    bad = np.nonzero(steps <= 0)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"Epoch dates are not in time order: {dates[i]} is followed by "
                         f"{dates[i + 1]}. Order the layers (or bands) from the first epoch "
                         f"to the last.")


def to_los_m(values, units: str) -> np.ndarray:
    """Convert InSAR values to LOS displacement [m, + towards the satellite].

    ``m``: unchanged; ``mm``: / 1000; ``rad``: LiCSAR unwrapped phase,
    ``d = -WAVELENGTH_M / (4 pi) * phase`` (:func:`.conventions.phase_to_los_m`).
    """
    values = np.asarray(values, dtype=np.float64)
    if units == "m":
        return values
    if units == "mm":
        return values / 1000.0
    if units == "rad":
        return phase_to_los_m(values)
    raise ValueError(f"Unknown InSAR unit {units!r}; choose one of {', '.join(INSAR_UNITS)}.")


def check_los_values(los_m: np.ndarray, units: str, what: str) -> List[str]:
    """Plausibility of LOS displacement [m]; ``ValueError`` when impossible, else notes.

    Impossible: no finite value, or any |LOS| above :data:`MAX_LOS_M`. Notes (returned as
    sentences, not raised) flag a 99th percentile of |LOS| above :data:`LARGE_LOS_M` or
    below :data:`SMALL_LOS_M`, and phase that looks wrapped (all within +-pi rad).
    """
    finite = los_m[np.isfinite(los_m)]
    if finite.size == 0:
        raise ValueError(f"{what} holds no valid value (all NoData/NaN).")
    largest = float(np.max(np.abs(finite)))
    if largest > MAX_LOS_M:
        raise ValueError(
            f"{what} reaches {largest:.4g} m of LOS displacement with INSAR_UNITS={units}; "
            f"InSAR cannot measure more than tens of metres, so the unit is wrong "
            f"(millimetres read as metres, or radians as metres?).")
    notes = []
    p99 = float(np.percentile(np.abs(finite), 99))
    if p99 > LARGE_LOS_M:
        notes.append(f"{what}: 99 % of |LOS| reaches {p99:.3g} m with INSAR_UNITS={units}, unusually "
                     f"large for InSAR; check INSAR_UNITS: if the rasters hold millimetres set "
                     f"INSAR_UNITS=mm, if unwrapped phase INSAR_UNITS=rad.")
    elif p99 < SMALL_LOS_M:
        notes.append(f"{what}: 99 % of |LOS| is below {p99 * 1e3:.3g} mm with INSAR_UNITS={units}, "
                     f"unusually small (atmospheric noise alone gives several mm); check "
                     f"INSAR_UNITS: if the rasters hold metres set INSAR_UNITS=m.")
    if units == "rad":
        phase = finite / phase_to_los_m(1.0)
        if np.all(np.abs(phase) <= np.pi + 1e-6) and np.ptp(phase) > np.pi:
            notes.append(f"{what}: every phase lies within +-pi; is it wrapped? The input "
                         f"must be unwrapped.")
    return notes


def check_los_unit_vector(east, north, up, what: str):
    """Refuse a LOS raster that is not a ground-to-satellite unit vector (``ValueError``)."""
    error = unit_vector_error(east, north, up)
    if not np.isfinite(error):
        raise ValueError(f"{what} holds no valid LOS vector (all NoData/NaN).")
    if error > UNIT_VECTOR_TOLERANCE:
        raise ValueError(
            f"{what} is not a unit vector: |(E, N, U)| differs from 1 by up to {error:.3g}. "
            f"Give the three components of the LOS unit vector (LiCSAR *.geo.E/N/U.tif) as "
            f"bands 1-3, not angles.")
    up = np.asarray(up)
    if np.any(up[np.isfinite(up)] <= 0):
        raise ValueError(f"{what} has a non-positive up component: the vector must point "
                         f"from the ground to the satellite (LiCSAR convention); flip its sign.")


# --------------------------------------------------------------------------- InSAR stacks


@dataclass
class InsarStack:
    """One track's LOS displacement on a grid.

    Attributes
    ----------
    los_m : numpy.ndarray, shape (E, H, W)
        LOS displacement [m, + towards the satellite] of the epochs read (all, or only the
        first and last), NaN = no data.
    dates : numpy.ndarray of datetime64[D] or None
        Dates of *all* epochs of the track (None when the inputs carry none).
    epoch_count : int
        Number of epochs in the input (``len(dates)`` when dates exist).
    notes : list of str
        Plausibility warnings to show the user.
    """

    los_m: np.ndarray
    dates: Optional[np.ndarray]
    epoch_count: int
    notes: List[str] = field(default_factory=list)


# --------------------------------------------------------------------------- tracks


@dataclass(frozen=True)
class TrackSource:
    """One InSAR track as the user holds it.

    Attributes
    ----------
    name : str
        Parameter name used in messages (``INSAR_ASC`` / ``INSAR_DESC``).
    paths : tuple of str
        One multi-band raster (bands = epochs, dates in the band descriptions) or one
        single-band raster per epoch in time order (``YYYYMMDD`` in each file name).
    los_path : str, optional
        3-band raster of the LOS unit vector (east, north, up; ground -> satellite), or one
        of LiCSAR's ``*.E.tif`` / ``*.N.tif`` / ``*.U.tif`` whose two siblings lie beside it.
    heading_deg, incidence_deg : float, optional
        Constant geometry when there is no LOS raster (:func:`.geometry.los_unit_vector`).
    """

    name: str
    paths: Tuple[str, ...]
    los_path: Optional[str] = None
    heading_deg: Optional[float] = None
    incidence_deg: Optional[float] = None

    @property
    def los(self) -> "LosSource":
        """The track's LOS geometry (``LOS_ASC`` for ``INSAR_ASC``)."""
        return LosSource(self.name.replace("INSAR", "LOS"), self.los_path, self.heading_deg,
                         self.incidence_deg)


@dataclass
class TrackEpochs:
    """Epoch dates of a track and where each epoch is stored: ``(path, band)`` per epoch.

    ``dates`` is None only for a track read without dates (:func:`track_epochs`).
    """

    name: str
    dates: Optional[np.ndarray]
    sources: List[Tuple[str, int]]


def track_epochs(track: TrackSource, require_dates: bool = True) -> TrackEpochs:
    """Dates and storage of every epoch of a track (nothing is read but metadata).

    Raises ``ValueError`` for fewer than two epochs, missing dates (unless not
    ``require_dates``: then ``dates`` is None and the given order is the time order), dates
    out of order, a file that GDAL cannot open or that has no CRS, and several multi-band
    files.
    """
    paths = list(track.paths)
    if not paths:
        raise ValueError(f"{track.name}: no layer given.")
    if len(paths) == 1:
        ds = open_raster(paths[0], track.name)
        count = ds.RasterCount
        if count < 2:
            raise ValueError(
                f"{track.name}: {os.path.basename(paths[0])} holds a single epoch (one band is one "
                f"epoch); a displacement needs at least two. Give a multi-band raster (one band per "
                f"epoch) or one raster per epoch.")
        labels = [ds.GetRasterBand(b + 1).GetDescription() for b in range(count)]
        dates = _named(epoch_dates, track.name, labels, "band description")
        sources = [(paths[0], b + 1) for b in range(count)]
        where = "band descriptions"
    else:
        for p in paths:
            n = open_raster(p, track.name).RasterCount
            if n != 1:
                raise ValueError(
                    f"{track.name}: {os.path.basename(p)} has {n} bands; with several layers each "
                    f"must be one epoch (one band). Give a multi-band raster alone instead.")
        dates = _named(epoch_dates, track.name, [os.path.basename(p) for p in paths], "file name")
        sources = [(p, 1) for p in paths]
        where = "file names"
    if dates is None and require_dates:
        raise ValueError(
            f"{track.name}: no epoch dates found in the {where}; they place the epochs in time "
            f"(the model's 121-day window). Put the date (YYYY-MM-DD or YYYYMMDD) in each band "
            f"description, or YYYYMMDD in each file name.")
    return TrackEpochs(track.name, dates, sources)


def _named(fn, name, *args):
    """``fn(*args)`` with the track's name put in front of a ``ValueError``'s message."""
    try:
        return fn(*args)
    except ValueError as exc:
        text = str(exc)
        raise ValueError(text if text.startswith(name) else f"{name}: {text}") from None


def read_insar_stack(paths: Sequence[str], grid: Grid, units: str, what: str,
                     only_ends: bool = False, require_dates: bool = True) -> InsarStack:
    """Read one track (one multi-band raster, or one single-band raster per epoch) onto ``grid``.

    Parameters
    ----------
    paths : sequence of str
        One raster with a band per epoch (dates from band descriptions), or one single-band
        raster per epoch in time order (dates from the file names); :func:`track_epochs`.
    grid : Grid
        Target grid (values are warped bilinearly onto it).
    units : {"m", "mm", "rad"}
        Unit of the values (:func:`to_los_m`).
    what : str
        Name of the track in messages (e.g. "INSAR_ASC").
    only_ends : bool
        Read only the first and last epoch (for their difference); dates are still checked.
    require_dates : bool
        Refuse inputs without dates (``ValueError``); otherwise the given order is taken as
        time order and ``dates`` is None.
    """
    if units not in INSAR_UNITS:
        raise ValueError(f"Unknown InSAR unit {units!r}; choose one of {', '.join(INSAR_UNITS)}.")
    epochs = track_epochs(TrackSource(what, tuple(paths)), require_dates=require_dates)
    count = len(epochs.sources)
    index = [0, count - 1] if only_ends else list(range(count))
    parts, i = [], 0
    while i < len(index):                     # consecutive epochs of one file: one warp
        path = epochs.sources[index[i]][0]
        j = i
        while j < len(index) and epochs.sources[index[j]][0] == path:
            j += 1
        parts.append(warp_to_grid(path, grid, what, bands=[epochs.sources[k][1] for k in index[i:j]]))
        i = j
    los_m = to_los_m(np.concatenate(parts), units)
    notes = check_los_values(los_m, units, what)
    dates = epochs.dates
    for i, epoch in zip(index, los_m):
        if not np.isfinite(epoch).any():
            label = str(dates[i]) if dates is not None else f"epoch {i + 1}"
            raise ValueError(f"{what}: {label} holds no valid pixel on the reference grid.")
    return InsarStack(los_m, dates, count, notes)


# --------------------------------------------------------------------------- LOS geometry

_LICSAR_LOS_RE = re.compile(r"^(.*[._-])([ENU])(\.[^.]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class LosSource:
    """A LOS geometry in one of its three forms (ground -> satellite, :mod:`.conventions`).

    Attributes
    ----------
    key : str
        Parameter name in messages (``LOS_ASC``, ``LOS_DESC``, ``LOS``); the angles are
        named ``HEADING`` / ``INCIDENCE`` with the same suffix.
    path : str, optional
        A 3-band raster (east, north, up), or one of LiCSAR's ``*.geo.E.tif`` /
        ``.N.`` / ``.U.`` whose two siblings lie beside it.
    heading_deg, incidence_deg : float, optional
        Constant geometry when there is no raster (:func:`.geometry.los_unit_vector`).
    """

    key: str = "LOS"
    path: Optional[str] = None
    heading_deg: Optional[float] = None
    incidence_deg: Optional[float] = None


def los_paths(path: str, what: str) -> List[str]:
    """The raster(s) holding the LOS east, north, up components.

    A 3-band raster is used alone; a single-band LiCSAR ``<frame>.geo.E.tif`` (or ``.N.``,
    ``.U.``) brings its two siblings of the same name.
    """
    count = open_raster(path, what).RasterCount
    if count == 3:
        return [path]
    folder, name = os.path.split(path)
    match = _LICSAR_LOS_RE.match(name)
    if count == 1 and match:
        head, _, tail = match.groups()
        upper = match.group(2).isupper()
        siblings = [os.path.join(folder, head + (c if upper else c.lower()) + tail) for c in "ENU"]
        missing = [s for s in siblings if not os.path.exists(s)]
        if not missing:
            return siblings
        raise ValueError(f"{what}: {name} is one LOS component; its siblings "
                         f"{', '.join(os.path.basename(m) for m in missing)} are missing.")
    raise ValueError(f"{what} has {count} band(s); it must hold the LOS unit vector's east, "
                     f"north and up components as bands 1-3 (or be a LiCSAR *.geo.E.tif with "
                     f"its .N and .U siblings).")


def check_los_angles(source: LosSource):
    """Without a LOS raster, both angles must be given and the incidence lie in (0, 90) deg."""
    suffix = source.key[3:]
    if source.heading_deg is None or source.incidence_deg is None:
        raise ValueError(f"Give either {source.key} (3-band LOS unit vector raster, or a LiCSAR "
                         f"*.geo.E.tif) or both HEADING{suffix} and INCIDENCE{suffix} [deg] "
                         f"(Sentinel-1: heading about -12 ascending / -168 descending, incidence "
                         f"30-46).")
    if not 0.0 < source.incidence_deg < 90.0:
        raise ValueError(f"INCIDENCE{suffix} = {source.incidence_deg} deg: the incidence angle from "
                         f"the vertical must lie between 0 and 90 deg.")


def read_los(source: LosSource, grid: Grid, resampling: str = "bilinear",
             dtype=np.float64) -> np.ndarray:
    """(3, H, W) LOS unit vector (east, north, up) on ``grid`` from any of its three forms.

    A raster (3-band, or a LiCSAR E/N/U triple) is warped onto ``grid`` with ``resampling``
    (``"auto"``: :func:`.raster.auto_resampling`), pixels missing a component are NaN, and
    the vectors are checked (:func:`check_los_unit_vector`). Without a raster the two angles
    give one vector for every pixel (a read-only broadcast view).
    """
    if source.path:
        paths = los_paths(source.path, source.key)
        if len(paths) == 1:
            e, n, u = warp_to_grid(paths[0], grid, source.key, resampling=resampling).astype(dtype, copy=False)
        else:
            e, n, u = (warp_to_grid(p, grid, source.key, bands=[1], resampling=resampling)[0].astype(dtype, copy=False)
                       for p in paths)
        bad = ~(np.isfinite(e) & np.isfinite(n) & np.isfinite(u))   # a partial vector is none
        for c in (e, n, u):
            c[bad] = np.nan
        check_los_unit_vector(e, n, u, source.key)
        return np.stack([e, n, u])
    check_los_angles(source)
    vector = np.asarray(los_unit_vector(source.heading_deg, source.incidence_deg), dtype=dtype)
    return np.broadcast_to(vector[:, None, None], (3, grid.height, grid.width))


def los_from_raster(path: str, grid: Grid, what: str):
    """(east, north, up) LOS unit vector arrays from a raster (3-band or LiCSAR triple) on ``grid``."""
    return tuple(read_los(LosSource(what, path), grid))
