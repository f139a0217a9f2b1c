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
from typing import List, Optional, Sequence

import numpy as np
from osgeo import gdal, osr

from .conventions import phase_to_los_m
from .geometry import Grid, unit_vector_error

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
        None when no label holds a date. Raises ``ValueError`` when only some do, when a
        label holds two dates (an interferogram pair, not a cumulative epoch) or when the
        dates are not strictly increasing.
    """
    per_label = [dates_in_text(text) for text in labels]
    if not any(per_label):
        return None
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


# --------------------------------------------------------------------------- grids, GDAL


def open_raster(path: str, what: str):
    """Open with GDAL, refusing rasters without CRS or north-up geotransform (``ValueError``)."""
    try:
        ds = gdal.Open(path)
    except RuntimeError as exc:
        raise ValueError(f"{what}: GDAL cannot open {path}: {exc}") from exc
    if ds is None:
        raise ValueError(f"{what}: GDAL cannot open {path}.")
    if not ds.GetProjection():
        raise ValueError(f"{what} ({os.path.basename(path)}) has no coordinate reference "
                         f"system; assign one (Raster > Projections > Assign Projection, or "
                         f"gdal_edit.py -a_srs EPSG:...).")
    gt = ds.GetGeoTransform()
    if gt[2] != 0 or gt[4] != 0 or gt[5] >= 0:
        raise ValueError(f"{what} ({os.path.basename(path)}) is not a north-up grid; warp it "
                         f"first (gdalwarp).")
    return ds


def raster_grid(path: str, what: str) -> Grid:
    """The :class:`.geometry.Grid` of a raster (square pixels required)."""
    ds = open_raster(path, what)
    gt = ds.GetGeoTransform()
    if abs(abs(gt[5]) - gt[1]) > 1e-6 * gt[1]:
        raise ValueError(f"{what} ({os.path.basename(path)}) has non-square pixels "
                         f"({gt[1]:.6g} x {abs(gt[5]):.6g}); resample it to square pixels "
                         f"(gdalwarp -tr {gt[1]:.6g} {gt[1]:.6g}).")
    return Grid(gt[0], gt[3], gt[1], ds.RasterXSize, ds.RasterYSize, ds.GetProjection())


def _bounds_in(ds, target_wkt: str):
    """(xmin, ymin, xmax, ymax) of a dataset transformed into ``target_wkt``."""
    gt = ds.GetGeoTransform()
    xmin, ymax = gt[0], gt[3]
    xmax = gt[0] + ds.RasterXSize * gt[1]
    ymin = gt[3] + ds.RasterYSize * gt[5]
    src = osr.SpatialReference(wkt=ds.GetProjection())
    dst = osr.SpatialReference(wkt=target_wkt)
    if src.IsSame(dst):
        return xmin, ymin, xmax, ymax
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    try:
        return osr.CoordinateTransformation(src, dst).TransformBounds(xmin, ymin, xmax, ymax, 21)
    except RuntimeError:
        return None


def warp_to_grid(path: str, grid: Grid, what: str, bands: Optional[Sequence[int]] = None,
                 resampling: str = "bilinear") -> np.ndarray:
    """Read bands of a raster resampled onto ``grid``: float64 (bands, H, W), NoData = NaN.

    GDAL's warper in memory (no file); a raster already on the grid is read unchanged.
    Bilinear resampling leaves NoData pixels out of the weights. ``ValueError`` when the
    raster does not overlap the grid at all.
    """
    ds = open_raster(path, what)
    bounds = _bounds_in(ds, grid.crs_wkt)
    gxmin, gymin, gxmax, gymax = grid.extent
    if bounds is None or not (bounds[0] < gxmax and bounds[2] > gxmin
                              and bounds[1] < gymax and bounds[3] > gymin):
        raise ValueError(f"{what} ({os.path.basename(path)}) does not overlap the reference "
                         f"grid (the first ascending InSAR layer, or the truth); check the "
                         f"layers and their CRS.")
    band_list = list(bands) if bands is not None else list(range(1, ds.RasterCount + 1))
    if ds.RasterCount == len(band_list) and band_list == list(range(1, ds.RasterCount + 1)):
        src = ds
    else:  # a VRT with just the wanted bands
        src = gdal.Translate("", ds, format="VRT", bandList=band_list)
    nodata = src.GetRasterBand(1).GetNoDataValue()
    options = gdal.WarpOptions(
        format="MEM", outputBounds=grid.extent, width=grid.width, height=grid.height,
        dstSRS=grid.crs_wkt, resampleAlg=resampling, outputType=gdal.GDT_Float64,
        srcNodata=nodata if nodata is not None else "nan", dstNodata="nan",
        multithread=True)
    out = gdal.Warp("", src, options=options)
    data = out.ReadAsArray().astype(np.float64, copy=False).reshape(len(band_list), grid.height, grid.width)
    return data


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


def read_insar_stack(paths: Sequence[str], grid: Grid, units: str, what: str,
                     only_ends: bool = False, require_dates: bool = True) -> InsarStack:
    """Read one track (one multi-band raster, or one single-band raster per epoch) onto ``grid``.

    Parameters
    ----------
    paths : sequence of str
        One raster with a band per epoch (dates from band descriptions), or one single-band
        raster per epoch in time order (dates from the file names).
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
    paths = list(paths)
    if not paths:
        raise ValueError(f"{what}: no layer given.")
    if len(paths) == 1:
        ds = open_raster(paths[0], what)
        count = ds.RasterCount
        labels = [ds.GetRasterBand(b + 1).GetDescription() for b in range(count)]
        if count < 2:
            raise ValueError(f"{what}: one single-band raster is one epoch; give a multi-band "
                             f"raster (one band per epoch) or one raster per epoch.")
        dates = epoch_dates(labels, "band description")
        index = [0, count - 1] if only_ends else list(range(count))
        los = warp_to_grid(paths[0], grid, what, bands=[i + 1 for i in index])
    else:
        count = len(paths)
        for p in paths:
            n = open_raster(p, what).RasterCount
            if n != 1:
                raise ValueError(f"{what}: {os.path.basename(p)} has {n} bands; with several "
                                 f"layers each must be one epoch (one band). Give a multi-band "
                                 f"raster alone instead.")
        dates = epoch_dates([os.path.basename(p) for p in paths], "file name")
        index = [0, count - 1] if only_ends else list(range(count))
        los = np.concatenate([warp_to_grid(paths[i], grid, what) for i in index])
    if dates is None and require_dates:
        raise ValueError(f"{what}: no epoch dates found; put YYYYMMDD in the band descriptions "
                         f"(multi-band raster) or in the file names (one raster per epoch).")
    los_m = to_los_m(los, units)
    notes = check_los_values(los_m, units, what)
    for i, epoch in zip(index, los_m):
        if not np.isfinite(epoch).any():
            label = str(dates[i]) if dates is not None else f"epoch {i + 1}"
            raise ValueError(f"{what}: {label} holds no valid pixel on the reference grid.")
    return InsarStack(los_m, dates, count, notes)


def los_from_raster(path: str, grid: Grid, what: str):
    """(east, north, up) LOS unit vector arrays from a 3-band raster, checked, on ``grid``."""
    ds = open_raster(path, what)
    if ds.RasterCount != 3:
        raise ValueError(f"{what} has {ds.RasterCount} band(s); it must hold the LOS unit "
                         f"vector's east, north and up components as bands 1-3.")
    e, n, u = warp_to_grid(path, grid, what)
    check_los_unit_vector(e, n, u, what)
    return e, n, u
