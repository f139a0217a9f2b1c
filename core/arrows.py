"""Horizontal motion as arrows: a 3-band east/north/up raster sampled on a regular sub-grid.

Geodesists draw horizontal motion as arrows (length = horizontal magnitude, direction =
azimuth) and vertical motion as colour. :func:`arrow_samples` returns the points and their
values; the Processing side (``algorithms/arrows.py``) writes them as a point layer styled
that way. Conventions: east/north/up in metres (``core/conventions.py``); azimuth in degrees
clockwise from grid north (the raster's CRS), 0 = moving north, 90 = moving east.
"""

from __future__ import annotations

import math

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

#: Arrows along the longer side of the raster by default.
ARROWS_PER_SIDE = 20


def arrow_samples(path: str, per_side: int = ARROWS_PER_SIDE) -> dict:
    """East/north/up at the pixels of a regular sub-grid of a 3-band raster, with arrow values.

    Parameters
    ----------
    path : str
        Raster whose bands 1-3 are east, north, up [m] (NoData/NaN allowed; further bands
        are ignored).
    per_side : int
        Arrows along the longer side; the step is the same in x and y (square sub-grid).

    Returns
    -------
    dict of numpy.ndarray
        ``x``, ``y`` (pixel centres in the raster's CRS), ``east``, ``north``, ``up`` [m],
        ``magnitude`` [m] = hypot(east, north) (horizontal), ``azimuth`` [deg] =
        atan2(east, north) in [0, 360), clockwise from grid north. Pixels with a NaN
        component are left out. Only the sampled pixels are read (GDAL decimated read).
    """
    if per_side < 1:
        raise ValueError(f"per_side must be >= 1, got {per_side}.")
    ds = gdal.Open(path)
    if ds is None or ds.RasterCount < 3:
        raise ValueError(f"{path} must be a raster with bands east, north, up [m].")
    width, height = ds.RasterXSize, ds.RasterYSize
    step = max(1, math.ceil(max(width, height) / per_side))
    cols = np.arange(step // 2, width, step)
    rows = np.arange(step // 2, height, step)
    values = np.empty((3, rows.size, cols.size))
    for b in range(3):
        band = ds.GetRasterBand(b + 1)
        nodata = band.GetNoDataValue()
        for i, r in enumerate(rows):
            line = band.ReadAsArray(0, int(r), width, 1)[0].astype(np.float64)
            if nodata is not None and not np.isnan(nodata):
                line[line == nodata] = np.nan
            values[b, i] = line[cols]
    gt = ds.GetGeoTransform()
    cc, rr = np.meshgrid(cols + 0.5, rows + 0.5)
    x = gt[0] + cc * gt[1] + rr * gt[2]
    y = gt[3] + cc * gt[4] + rr * gt[5]
    east, north, up = values
    keep = np.isfinite(values).all(axis=0)
    magnitude = np.hypot(east, north)
    azimuth = np.degrees(np.arctan2(east, north)) % 360.0
    return {"x": x[keep], "y": y[keep], "east": east[keep], "north": north[keep], "up": up[keep],
            "magnitude": magnitude[keep], "azimuth": azimuth[keep]}
