"""GDAL grids and GeoTIFFs: bounds, UTM working grids, warping, atomic block-wise writing, style.

No QGIS here. A raster is written to ``<name>.part`` and renamed only when complete, so a
cancelled or failed run leaves no half-written output.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal, osr

from .conventions import ENU_BANDS
from .geometry import Grid, utm_epsg
from .runtime import AtomicPath, CancelFn, ProgressFn, check_canceled, report

gdal.UseExceptions()

#: Bytes of float64 pixels one GDAL warp call may return at once (bands are grouped).
WARP_CHUNK_BYTES = 256 * 2 ** 20
#: Pixels per block when streaming an output and its coverage masks.
BLOCK_PIXELS = 4_000_000
#: GDAL block cache while inputs stream through the warper [bytes] (see gdal_cache_limit).
GDAL_CACHE_BYTES = 256 * 2 ** 20


def crs_wkt_from_epsg(epsg: int) -> str:
    """WKT of an EPSG code."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(int(epsg))
    return srs.ExportToWkt()


# --------------------------------------------------------------------------- grids


def srs_from_wkt(wkt: str) -> osr.SpatialReference:
    """A spatial reference with x = easting/longitude first (GIS order, as in geotransforms)."""
    srs = osr.SpatialReference(wkt=wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


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


def raster_bounds(ds, target_wkt: str):
    """(xmin, ymin, xmax, ymax) of a GDAL dataset in ``target_wkt`` (edges densified, 21 points).

    ``RuntimeError`` from GDAL when the extent cannot be transformed.
    """
    gt = ds.GetGeoTransform()
    xmin, ymax = gt[0], gt[3]
    xmax, ymin = gt[0] + ds.RasterXSize * gt[1], gt[3] + ds.RasterYSize * gt[5]
    src, dst = srs_from_wkt(ds.GetProjection()), srs_from_wkt(target_wkt)
    if src.IsSame(dst):
        return xmin, ymin, xmax, ymax
    return osr.CoordinateTransformation(src, dst).TransformBounds(xmin, ymin, xmax, ymax, 21)


def utm_grid(path: str, pixel_m: float, what: str, max_pixels: Optional[int] = None) -> Grid:
    """North-up grid in the WGS 84 / UTM zone of a raster's centre covering its extent.

    ``pixel_m`` [m] squares; when the raster already is in that zone the grid starts at its
    corner. ``ValueError`` naming ``what`` when the raster cannot be placed in UTM or the grid
    would exceed ``max_pixels``.
    """
    ds = open_raster(path, what)
    gt = ds.GetGeoTransform()
    cx = gt[0] + 0.5 * ds.RasterXSize * gt[1]
    cy = gt[3] + 0.5 * ds.RasterYSize * gt[5]
    src = srs_from_wkt(ds.GetProjection())
    wgs84 = srs_from_wkt(crs_wkt_from_epsg(4326))
    try:
        lon, lat, _ = osr.CoordinateTransformation(src, wgs84).TransformPoint(cx, cy)
        epsg = utm_epsg(((lon + 180.0) % 360.0) - 180.0, lat)
        wkt = crs_wkt_from_epsg(epsg)
        bounds = raster_bounds(ds, wkt)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{what}: {os.path.basename(path)} cannot be placed in UTM ({exc}); "
                         f"check its CRS.") from None
    if not all(math.isfinite(v) for v in bounds):
        raise ValueError(f"{what}: the extent of {os.path.basename(path)} cannot be "
                         f"expressed in UTM (EPSG:{epsg}); check its CRS.")
    return Grid.from_extent(*bounds, pixel_m, crs_wkt=wkt, max_pixels=max_pixels)


def grid_epsg(grid: Grid) -> Optional[int]:
    """EPSG code of a grid's CRS (None when it has none)."""
    srs = osr.SpatialReference(wkt=grid.crs_wkt)
    srs.AutoIdentifyEPSG()
    code = srs.GetAuthorityCode(None)
    return int(code) if code else None


def pixel_size_m(ds) -> float:
    """Approximate pixel size of a dataset in metres (geographic CRS: at its centre)."""
    gt = ds.GetGeoTransform()
    srs = srs_from_wkt(ds.GetProjection())
    size = abs(gt[1])
    if srs.IsGeographic():
        lat = gt[3] + 0.5 * ds.RasterYSize * gt[5]
        return size * 111_320.0 * max(math.cos(math.radians(lat)), 0.01)
    return size * srs.GetLinearUnits()


def auto_resampling(ds, grid: Grid) -> str:
    """``average`` when the source is at least twice finer than the grid, else ``bilinear``."""
    return "average" if pixel_size_m(ds) < 0.5 * grid.pixel_size else "bilinear"


def warp_to_grid(path: str, grid: Grid, what: str, bands: Optional[Sequence[int]] = None,
                 resampling: str = "bilinear") -> np.ndarray:
    """Read bands of a raster resampled onto ``grid``: float64 (bands, H, W), NoData = NaN.

    GDAL's warper in memory (no file); a raster already on the grid is read unchanged.
    Bilinear resampling leaves NoData pixels out of the weights; ``resampling="auto"`` is
    :func:`auto_resampling`. ``ValueError`` when the raster does not overlap the grid at all.
    """
    ds = open_raster(path, what)
    try:
        bounds = raster_bounds(ds, grid.crs_wkt)
    except RuntimeError:
        bounds = None
    gxmin, gymin, gxmax, gymax = grid.extent
    if bounds is None or not (bounds[0] < gxmax and bounds[2] > gxmin
                              and bounds[1] < gymax and bounds[3] > gymin):
        raise ValueError(f"{what} ({os.path.basename(path)}) does not overlap the reference "
                         f"grid (the first ascending InSAR layer, or the truth); check the "
                         f"layers and their CRS.")
    if resampling == "auto":
        resampling = auto_resampling(ds, grid)
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
    return out.ReadAsArray().astype(np.float64, copy=False).reshape(len(band_list), grid.height, grid.width)


def warp_float32(path: str, grid: Grid, what: str, bands: Optional[Sequence[int]] = None,
                 chunk_bytes: int = WARP_CHUNK_BYTES) -> np.ndarray:
    """Bands of a raster on ``grid`` as float32 (bands, H, W), NaN = no data.

    :func:`warp_to_grid` with :func:`auto_resampling`, a few bands per call so that no call
    returns more than ``chunk_bytes`` of float64 pixels.
    """
    ds = open_raster(path, what)
    bands = list(bands) if bands is not None else list(range(1, ds.RasterCount + 1))
    method = auto_resampling(ds, grid)
    out = np.empty((len(bands), grid.height, grid.width), dtype=np.float32)
    per_call = max(1, chunk_bytes // (8 * grid.width * grid.height))
    for i in range(0, len(bands), per_call):
        part = bands[i:i + per_call]
        out[i:i + len(part)] = warp_to_grid(path, grid, what, bands=part, resampling=method)
    return out


def dem_for_scenes(path: str, pixel_m: float, max_pixels: int = 4096 * 4096):
    """Elevation [m] of a DEM warped onto the scene pixel size in its centre's UTM zone.

    What scene generation takes as real relief (training and the benchmark's ``stress``
    recipe).

    Parameters
    ----------
    path : str
        Any GDAL raster with a CRS (band 1 = elevation [m]).
    pixel_m : float
        Scene pixel size [m] (``SceneConfig.pixel_m``).
    max_pixels : int
        Largest grid accepted.

    Returns
    -------
    dem_m : numpy.ndarray, (H, W) float64
        ``average`` resampling (GDAL leaves NoData out); sea, voids and NoData as 0 (sea level,
        where the scene sampler puts no InSAR phase and no station); negative heights as 0.
    grid : Grid
        The grid (WGS 84 / UTM, :func:`utm_grid`); its upper-left corner is the origin of the
        frame in which :class:`.synthetic.SceneSampler` takes ``stations_xy_m``.
    """
    grid = utm_grid(path, pixel_m, "DEM", max_pixels=max_pixels)
    dem = warp_to_grid(path, grid, "DEM", bands=[1], resampling="average")[0]
    if not np.isfinite(dem).any():
        raise ValueError(f"DEM {os.path.basename(path)} holds no valid elevation.")
    return np.where(np.isfinite(dem), np.maximum(dem, 0.0), 0.0), grid


class gdal_cache_limit(contextlib.ContextDecorator):  # noqa: N801 (a context manager / decorator)
    """Lower GDAL's block cache to ``limit_bytes`` for the block, then restore it.

    GDAL's default cache is 5 % of the RAM (1.2 GB on 24 GB, 3 GB on 64 GB) and fills up
    while big rasters stream through the warper, so memory would grow with the machine
    rather than with the data; the cache only speeds up re-reads, which streaming avoids.
    """

    def __init__(self, limit_bytes: int = GDAL_CACHE_BYTES):
        self.limit = int(limit_bytes)
        self.saved = None

    def __enter__(self):
        self.saved = gdal.GetCacheMax()
        if self.saved > self.limit:
            gdal.SetCacheMax(self.limit)
        return self

    def __exit__(self, *exc):
        gdal.SetCacheMax(self.saved)
        return False


# --------------------------------------------------------------------------- results onto a reference grid


def _same_grid(ds, other) -> bool:
    if (ds.RasterXSize, ds.RasterYSize) != (other.RasterXSize, other.RasterYSize):
        return False
    if not np.allclose(ds.GetGeoTransform(), other.GetGeoTransform(), rtol=0, atol=1e-9 * abs(ds.GetGeoTransform()[1])):
        return False
    return srs_from_wkt(ds.GetProjection()).IsSame(srs_from_wkt(other.GetProjection()))


def _valid(values: np.ndarray, nodata) -> np.ndarray:
    ok = np.isfinite(values)
    if nodata is not None and not np.isnan(nodata):
        ok &= values != nodata
    return ok


def _native_mask(ds, bands: Sequence[int], is_canceled: CancelFn) -> np.ndarray:
    """uint8 (H, W) on the dataset's own grid: 1 where any of ``bands`` holds data (by blocks)."""
    w, h = ds.RasterXSize, ds.RasterYSize
    mask = np.zeros((h, w), dtype=np.uint8)
    rows = max(1, BLOCK_PIXELS // w)
    for r in range(0, h, rows):
        check_canceled(is_canceled)
        n = min(rows, h - r)
        for b in bands:
            band = ds.GetRasterBand(b)
            mask[r:r + n] |= _valid(band.ReadAsArray(0, r, w, n), band.GetNoDataValue())
    return mask


def coverage_mask(reference_path: str, tracks: dict, is_canceled: CancelFn = None) -> np.ndarray:
    """uint8 (H, W) on the reference raster's grid: 1 where a track has data in an epoch used.

    Each file's mask is made on its own grid (block by block, one byte per pixel) and
    carried to the reference grid by nearest neighbour.
    """
    from osgeo import gdal_array

    ref = open_raster(reference_path, "INSAR_ASC")
    gt, w, h = ref.GetGeoTransform(), ref.RasterXSize, ref.RasterYSize
    covered = np.zeros((h, w), dtype=np.uint8)
    for name, used in tracks.items():
        if used is None:
            continue
        files = {}
        for path, band in used.sources:
            files.setdefault(path, []).append(band)
        for path, bands in files.items():
            ds = open_raster(path, name)
            mask = _native_mask(ds, bands, is_canceled)
            if _same_grid(ds, ref):
                np.bitwise_or(covered, mask, out=covered)
                continue
            mem = gdal_array.OpenArray(mask)                     # wraps the array, no copy
            mem.SetGeoTransform(ds.GetGeoTransform())
            mem.SetProjection(ds.GetProjection())
            options = gdal.WarpOptions(
                format="MEM", outputBounds=(gt[0], gt[3] + h * gt[5], gt[0] + w * gt[1], gt[3]),
                width=w, height=h, dstSRS=ref.GetProjection(), resampleAlg="near",
                outputType=gdal.GDT_Byte, warpOptions=["INIT_DEST=0"])
            warped = gdal.Warp("", mem, options=options)
            del mem, mask
            np.bitwise_or(covered, warped.GetRasterBand(1).ReadAsArray(), out=covered)
            warped = None
            check_canceled(is_canceled)
    return covered


#: Working memory of GDAL's warper when writing a result back [bytes] (its default is 64 MB).
WARP_MEMORY_BYTES = 512 * 2 ** 20


@gdal_cache_limit()
def write_on_reference_grid(result: np.ndarray, grid: Grid, reference_path: str, out_path: str,
                            tracks: dict, descriptions=ENU_BANDS,
                 progress: ProgressFn = None, is_canceled: CancelFn = None) -> str:
    """Warp the working-grid result onto the reference raster's grid and write it atomically.

    Parameters
    ----------
    result : (3, H, W) float32
        East/north/up [m] on ``grid``.
    grid : Grid
        The working grid.
    reference_path : str
        The raster whose grid the output takes (the first INSAR_ASC layer).
    out_path : str
        GeoTIFF written as ``out_path + ".part"`` and renamed when complete.
    tracks : dict
        :attr:`.prepare.PreparedScene.tracks`: pixels that no track covers in any epoch used are NaN.

    Returns
    -------
    str
        ``out_path``.
    """
    ref = open_raster(reference_path, "INSAR_ASC")
    gt, w, h = ref.GetGeoTransform(), ref.RasterXSize, ref.RasterYSize
    src = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, result.shape[0], gdal.GDT_Float32)
    src.SetGeoTransform(grid.geotransform)
    src.SetProjection(grid.crs_wkt)
    for i in range(result.shape[0]):
        band = src.GetRasterBand(i + 1)
        band.SetNoDataValue(float("nan"))
        band.WriteArray(np.asarray(result[i], dtype=np.float32))

    def callback(fraction, message, data):
        report(progress, 0.6 * fraction, "warping to the input grid")
        return 0 if (is_canceled is not None and is_canceled()) else 1

    big = w * h * result.shape[0] * 4 > 2 ** 31
    options = gdal.WarpOptions(
        format="GTiff", outputBounds=(gt[0], gt[3] + h * gt[5], gt[0] + w * gt[1], gt[3]),
        width=w, height=h, dstSRS=ref.GetProjection(), resampleAlg="bilinear",
        srcNodata="nan", dstNodata="nan", outputType=gdal.GDT_Float32,
        creationOptions=["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=3", "NUM_THREADS=ALL_CPUS",
                         "BIGTIFF=" + ("YES" if big else "IF_SAFER")],
        # the warper computes and the GeoTIFF driver compresses on every core (same bytes)
        multithread=True, warpMemoryLimit=WARP_MEMORY_BYTES,
        warpOptions=["INIT_DEST=NO_DATA", "NUM_THREADS=ALL_CPUS"], callback=callback)
    with AtomicPath(out_path, remove=gdal.GetDriverByName("GTiff").Delete) as part:
        out = None
        try:
            try:
                out = gdal.Warp(part, src, options=options)
            except RuntimeError as exc:
                check_canceled(is_canceled)
                raise ValueError(f"The result could not be warped onto the input grid: {exc}") from exc
            if out is None:
                check_canceled(is_canceled)
                raise ValueError("The result could not be warped onto the input grid.")
            check_canceled(is_canceled)
            out = None
            covered = coverage_mask(reference_path, tracks, is_canceled)
            report(progress, 0.8, "masking pixels without InSAR coverage")
            out = gdal.Open(part, gdal.GA_Update)
            # the reference's geotransform itself: the warper recomputes the pixel size from
            # the bounds (0.005 deg came back as 0.004999999999999919)
            out.SetGeoTransform(gt)
            rows = max(1, BLOCK_PIXELS // (w * result.shape[0]))
            for r in range(0, h, rows):
                check_canceled(is_canceled)
                n = min(rows, h - r)
                hole = covered[r:r + n] == 0
                for i, text in enumerate(descriptions):
                    band = out.GetRasterBand(i + 1)
                    if r == 0:
                        band.SetDescription(text)
                    if hole.any():
                        values = band.ReadAsArray(0, r, w, n)
                        values[hole] = np.nan
                        band.WriteArray(values, 0, r)
                report(progress, 0.8 + 0.2 * (r + n) / h, "masking pixels without InSAR coverage")
            out.FlushCache()
            out = None
            check_canceled(is_canceled)
        finally:
            out = None                  # closed before the part file is renamed or deleted
    return out_path


# --------------------------------------------------------------------------- files


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
                 nodata: float = float("nan"), pixel_size_y: Optional[float] = None, unit: str = "m"):
        self.path = path
        self.file = AtomicPath(path, remove=gdal.GetDriverByName("GTiff").Delete)
        self.part_path = self.file.part
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
            if unit:   # GDAL's band unit ("m"); "" for unitless bands such as LOS unit vectors
                band.SetUnitType(unit)
        self.committed = False

    def write(self, data: np.ndarray, row0: int = 0, col0: int = 0):
        """Write ``data`` of shape (bands, rows, cols) at pixel (row0, col0)."""
        for i in range(data.shape[0]):
            self.ds.GetRasterBand(i + 1).WriteArray(np.asarray(data[i], dtype=np.float32), col0, row0)

    def commit(self):
        """Close the file and move it into place."""
        self.ds.FlushCache()
        self.ds = None
        self.file.commit()
        self.committed = True

    def discard(self):
        """Close and delete the partial file."""
        self.ds = None
        self.file.discard()

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


def diverging_qml(band: int, limit: float, label: str = "displacement [m]", unit: str = "m") -> str:
    """QGIS layer style: single-band pseudocolour, blue-white-red ramp centred on zero.

    ``limit`` is the symmetric colour range [-limit, +limit] in data units; every legend
    label carries ``unit`` (class labels and the continuous legend's suffix).
    """
    suffix = f" {unit}" if unit else ""
    limit = float(limit) if np.isfinite(limit) and limit > 0 else 1e-3
    stops = [(-1.0, "#2166ac"), (-0.5, "#67a9cf"), (-0.15, "#d1e5f0"), (0.0, "#f7f7f7"),
             (0.15, "#fddbc7"), (0.5, "#ef8a62"), (1.0, "#b2182b")]
    items = "\n".join(
        f'            <item alpha="255" value="{s * limit:.6g}" label="{s * limit:.4g}{suffix}" color="{c}"/>'
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
          <rampLegendSettings minimumLabel="" maximumLabel="" prefix="" suffix="{suffix}" direction="0"
                              useContinuousLegend="1" orientation="2"/>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
  </pipe>
  <customproperties><Option type="Map"><Option name="legend" type="QString"
                                              value="{label}"/></Option></customproperties>
</qgis>
"""


def write_diverging_style(raster_path: str, band: int, limit: float, unit: str = "m") -> str:
    """Write ``<raster basename>.qml`` beside the raster: QGIS loads it as the default style."""
    qml_path = os.path.splitext(raster_path)[0] + ".qml"
    with AtomicPath(qml_path) as part, open(part, "w", encoding="utf-8") as f:
        f.write(diverging_qml(band, limit, unit=unit))
    return qml_path


def robust_limit(data: np.ndarray, percentile: float = 99.0) -> float:
    """Symmetric colour limit: the given percentile of |data| over finite pixels."""
    values = np.abs(data[np.isfinite(data)])
    return float(np.percentile(values, percentile)) if values.size else 0.0
