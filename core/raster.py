"""GeoTIFF reading and atomic, block-wise writing with GDAL, plus the displacement style.

No QGIS here. A raster is written to ``<name>.part`` and renamed only when complete, so a
cancelled or failed run leaves no half-written output.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal, osr

from .geometry import Grid

gdal.UseExceptions()


def crs_wkt_from_epsg(epsg: int) -> str:
    """WKT of an EPSG code."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(int(epsg))
    return srs.ExportToWkt()


def read_raster(path: str, bands: Optional[Sequence[int]] = None, window=None):
    """Read bands of a raster as float64 with NoData -> NaN.

    Returns ``(data (nbands, rows, cols), grid, descriptions)``. ``window`` is
    ``(row0, col0, rows, cols)``. The grid's ``pixel_size`` is the x pixel size; a raster
    with rotation terms is refused.
    """
    ds = gdal.Open(path)
    if ds is None:
        raise ValueError(f"GDAL cannot open {path}.")
    gt = ds.GetGeoTransform()
    if gt[2] != 0 or gt[4] != 0:
        raise ValueError(f"{path} has a rotated geotransform; warp it to a north-up grid first.")
    band_numbers = list(bands) if bands is not None else list(range(1, ds.RasterCount + 1))
    row0, col0, rows, cols = window if window is not None else (0, 0, ds.RasterYSize, ds.RasterXSize)
    data = np.empty((len(band_numbers), rows, cols), dtype=np.float64)
    descriptions = []
    for i, b in enumerate(band_numbers):
        band = ds.GetRasterBand(b)
        values = band.ReadAsArray(col0, row0, cols, rows).astype(np.float64)
        nodata = band.GetNoDataValue()
        if nodata is not None and not np.isnan(nodata):
            values[values == nodata] = np.nan
        data[i] = values
        descriptions.append(band.GetDescription())
    grid = Grid(gt[0] + col0 * gt[1], gt[3] + row0 * gt[5], abs(gt[1]), cols, rows,
                ds.GetProjection())
    return data, grid, descriptions


class RasterWriter:
    """Float32 GeoTIFF written block by block, renamed into place by :meth:`commit`.

    Use as a context manager: leaving the block without :meth:`commit` (an exception, a
    cancel) deletes the partial file.
    """

    def __init__(self, path: str, grid: Grid, descriptions: Sequence[str],
                 nodata: float = float("nan"), pixel_size_y: Optional[float] = None):
        self.path = path
        self.part_path = path + ".part"
        driver = gdal.GetDriverByName("GTiff")
        big = grid.width * grid.height * len(descriptions) * 4 > 2 ** 31
        options = ["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=3", "BIGTIFF=" + ("YES" if big else "IF_SAFER")]
        self.ds = driver.Create(self.part_path, grid.width, grid.height, len(descriptions),
                                gdal.GDT_Float32, options=options)
        gt = list(grid.geotransform)
        if pixel_size_y is not None:
            gt[5] = -abs(pixel_size_y)
        self.ds.SetGeoTransform(gt)
        if grid.crs_wkt:
            self.ds.SetProjection(grid.crs_wkt)
        for i, text in enumerate(descriptions):
            band = self.ds.GetRasterBand(i + 1)
            band.SetDescription(text)
            band.SetNoDataValue(nodata)
        self.committed = False

    def write(self, data: np.ndarray, row0: int = 0, col0: int = 0):
        """Write ``data`` of shape (bands, rows, cols) at pixel (row0, col0)."""
        for i in range(data.shape[0]):
            self.ds.GetRasterBand(i + 1).WriteArray(np.asarray(data[i], dtype=np.float32), col0, row0)

    def commit(self):
        """Close the file and move it into place."""
        self.ds.FlushCache()
        self.ds = None
        os.replace(self.part_path, self.path)
        self.committed = True

    def discard(self):
        """Close and delete the partial file."""
        self.ds = None
        if os.path.exists(self.part_path):
            gdal.GetDriverByName("GTiff").Delete(self.part_path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.committed:
            self.discard()
        return False


def write_raster(path: str, grid: Grid, data: np.ndarray, descriptions: Sequence[str], **kw):
    """Write a whole (bands, rows, cols) array at once (see :class:`RasterWriter`)."""
    with RasterWriter(path, grid, descriptions, **kw) as writer:
        writer.write(data)
        writer.commit()


def diverging_qml(band: int, limit: float, label: str = "displacement [m]") -> str:
    """QGIS layer style: single-band pseudocolour, blue-white-red ramp centred on zero.

    ``limit`` is the symmetric colour range [-limit, +limit] in data units.
    """
    limit = float(limit) if np.isfinite(limit) and limit > 0 else 1e-3
    stops = [(-1.0, "#2166ac"), (-0.5, "#67a9cf"), (-0.15, "#d1e5f0"), (0.0, "#f7f7f7"),
             (0.15, "#fddbc7"), (0.5, "#ef8a62"), (1.0, "#b2182b")]
    items = "\n".join(
        f'            <item alpha="255" value="{s * limit:.6g}" label="{s * limit:.4g}" color="{c}"/>'
        for s, c in stops)
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="{band}" opacity="1" alphaBand="-1"
                    classificationMin="{-limit:.6g}" classificationMax="{limit:.6g}" nodataColor="">
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0"
                         minimumValue="{-limit:.6g}" maximumValue="{limit:.6g}" labelPrecision="4">
{items}
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
  </pipe>
  <customproperties><Option type="Map"><Option name="legend" type="QString"
                                              value="{label}"/></Option></customproperties>
</qgis>
"""


def write_diverging_style(raster_path: str, band: int, limit: float) -> str:
    """Write ``<raster basename>.qml`` beside the raster: QGIS loads it as the default style."""
    qml_path = os.path.splitext(raster_path)[0] + ".qml"
    part = qml_path + ".part"
    try:
        with open(part, "w", encoding="utf-8") as f:
            f.write(diverging_qml(band, limit))
        os.replace(part, qml_path)
    finally:
        if os.path.exists(part):
            os.remove(part)
    return qml_path


def robust_limit(data: np.ndarray, percentile: float = 99.0) -> float:
    """Symmetric colour limit: the given percentile of |data| over finite pixels."""
    values = np.abs(data[np.isfinite(data)])
    return float(np.percentile(values, percentile)) if values.size else 0.0
