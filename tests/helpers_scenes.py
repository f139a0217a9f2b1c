"""Scenes written as the files users hold, for the tests of extractdisplacement and core.prepare.

Plain functions (no fixtures, no QGIS): tests import this file with
``load_helpers()`` below (tests run with ``--import-mode=importlib``, so ``tests`` is no
package). Two forms of one scene:

* the plugin's own grid (what ``synthesizescene`` writes): UTM, multi-band InSAR rasters
  [m] with the dates as band descriptions, 3-band LOS rasters, DEM, truth;
* LiCSAR-like (:func:`write_licsar_like`): EPSG:4326 at 0.005 deg, unwrapped phase [rad],
  one ``<track>_YYYYMMDD.geo.unw.tif`` per epoch, LOS as ``<track>.geo.E/N/U.tif``, the DEM
  as ``<track>.geo.hgt.tif``.
"""

from __future__ import annotations

import datetime
import importlib.util
import math
import os
from pathlib import Path

import numpy as np

TINY_SCENE = {"size_px": 32, "model_epochs": 4, "max_stations": 12}
TINY_MODEL = {"width": 8, "gnss_width": 8}
START = datetime.date(2024, 1, 1)
#: UTM 52N (Kyushu): upper-left corner of the test scenes [m].
UTM_EPSG = 32652
ORIGIN = (600_000.0, 3_660_000.0)


def load_helpers():
    """Load this module, importable from any test file."""
    spec = importlib.util.spec_from_file_location("helpers_scenes", __file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_tiny_model(path, seed=0, model_options=None, **scene):
    """Train a tiny model (seconds on a CPU) into ``path``; returns the path.

    ``model_options``: architecture overrides (e.g. ``{"pixel_size_input": True}``).
    """
    from insar_gnss_3d.core.train import TrainConfig, Trainer

    cfg = TrainConfig(samples=8, epochs=1, batch_size=4, validation_samples=4, learning_rate=3e-3,
                      seed=seed, device="cpu", checkpoint_dir="", resume=False,
                      scene={**TINY_SCENE, **scene}, model={**TINY_MODEL, **(model_options or {})})
    Trainer(cfg).fit(str(path))
    return str(path)


def untrained_model(path, **scene):
    """Save an untrained tiny network with the given scene options (no training)."""
    from insar_gnss_3d.core.model import DualBranchNet, ModelConfig
    from insar_gnss_3d.core.modelfile import save_model
    from insar_gnss_3d.core.synthetic import SceneConfig

    config = SceneConfig.from_dict({**TINY_SCENE, **scene})
    model = DualBranchNet(ModelConfig(epochs=config.model_epochs, gnss_days=config.gnss_days, **TINY_MODEL))
    save_model(str(path), model, config, {})
    return str(path)


def sample_scene(seed=1, size_px=64, pixel_m=1000.0, **options):
    """One synthetic scene (:class:`insar_gnss_3d.core.synthetic.SceneArrays`)."""
    from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler, scene_arrays

    config = SceneConfig.from_dict({**SceneConfig().to_dict(), "size_px": size_px, "pixel_m": pixel_m,
                                    "sea_probability": 0.0, "track_dropout_probability": 0.0,
                                    "frame_edge_probability": 0.0, **options})
    return scene_arrays(SceneSampler(config, seed=seed).sample(1), 0)


def scene_grid(size_px, pixel_m=1000.0):
    """The test scenes' grid in UTM 52N."""
    from insar_gnss_3d.core.geometry import Grid
    from insar_gnss_3d.core.raster import crs_wkt_from_epsg

    return Grid(ORIGIN[0], ORIGIN[1], pixel_m, size_px, size_px, crs_wkt_from_epsg(UTM_EPSG))


def write_scene(arrays, folder, pixel_m=1000.0, start=START):
    """Write a scene as ``synthesizescene`` does; returns paths and the GNSS series.

    Returns a dict with ``INSAR_ASC``, ``INSAR_DESC``, ``LOS_ASC``, ``LOS_DESC``, ``DEM``,
    ``TRUTH`` (paths), ``grid``, and ``gnss`` = dict(dates, enu_m, x, y, stations) with x/y
    in the grid's CRS.
    """
    from insar_gnss_3d.core.raster import write_raster

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = arrays.dem_m.shape[0]
    grid = scene_grid(size, pixel_m)
    out = {"grid": grid}
    for t, key in enumerate(("INSAR_ASC", "INSAR_DESC")):
        dates = [(start + datetime.timedelta(days=int(d))).isoformat() for d in arrays.acq_days[t]]
        path = str(folder / f"{key.lower()}.tif")
        write_raster(path, grid, arrays.insar_m[t], dates)
        out[key] = path
        los = str(folder / f"los_{key[6:].lower()}.tif")
        write_raster(los, grid, arrays.los[t], ("east", "north", "up"))
        out["LOS" + key[5:]] = los
    out["DEM"] = str(folder / "dem.tif")
    write_raster(out["DEM"], grid, arrays.dem_m[None], ("elevation_m",))
    out["TRUTH"] = str(folder / "truth.tif")
    write_raster(out["TRUTH"], grid, arrays.truth_m, ("east", "north", "up"))
    xy = arrays.gnss_xy_m
    out["gnss"] = dict(dates=np.datetime64(start.isoformat()) + np.arange(arrays.gnss_m.shape[1]),
                       enu_m=arrays.gnss_m.astype(np.float64), x=grid.x0 + xy[:, 0], y=grid.y0 + xy[:, 1],
                       stations=[f"S{i + 1:03d}" for i in range(len(xy))])
    return out


def write_gnss_csv(gnss, path, lonlat=True, fields=("station", "date", "east", "north", "up")):
    """GNSS long-format CSV (x/y as lon/lat when ``lonlat``); returns the path."""
    from pyproj import Transformer

    x, y = gnss["x"], gnss["y"]
    if lonlat:
        x, y = Transformer.from_crs(UTM_EPSG, 4326, always_xy=True).transform(x, y)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{fields[0]},{fields[1]},x,y,{fields[2]},{fields[3]},{fields[4]}\n")
        for s, name in enumerate(gnss["stations"]):
            for d, day in enumerate(gnss["dates"]):
                e, n, u = gnss["enu_m"][s, d]
                if np.isfinite(e):
                    f.write(f"{name},{day},{x[s]:.8f},{y[s]:.8f},{e:.6f},{n:.6f},{u:.6f}\n")
    return str(path)


def write_first_days_of_one_station(gnss_path, out_path, days=2):
    """The first ``days`` features of a GNSS layer's first station, as a GeoPackage.

    A layer whose only station has no solution at the end of the model's window (no
    displacement over it). Returns ``(out_path, station name)``.
    """
    from osgeo import gdal

    source = gdal.OpenEx(str(gnss_path))
    name = source.GetLayer(0).GetName()
    first = source.GetLayer(0).GetNextFeature().GetField("station")
    gdal.VectorTranslate(str(out_path), source, format="GPKG", SQLStatement=(
        f"SELECT * FROM \"{name}\" WHERE station = '{first}' ORDER BY date LIMIT {int(days)}"))
    return str(out_path), first


def _to_lonlat_grid(path, pixel_deg):
    """Bounds of a raster in EPSG:4326, snapped outwards to ``pixel_deg``."""
    from osgeo import gdal, osr

    ds = gdal.Open(path)
    gt = ds.GetGeoTransform()
    src = osr.SpatialReference(wkt=ds.GetProjection())
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    xmin, ymin, xmax, ymax = osr.CoordinateTransformation(src, dst).TransformBounds(
        gt[0], gt[3] + ds.RasterYSize * gt[5], gt[0] + ds.RasterXSize * gt[1], gt[3], 21)
    snap = lambda v, f: f(v / pixel_deg) * pixel_deg  # noqa: E731
    return (snap(xmin, math.floor), snap(ymin, math.floor), snap(xmax, math.ceil), snap(ymax, math.ceil))


def _warp(path, out, bounds, pixel_deg, band=None, resampling="bilinear", nodata=float("nan")):
    from osgeo import gdal

    src = gdal.Translate("", path, format="VRT", bandList=[band]) if band else path
    gdal.Warp(out, src, dstSRS="EPSG:4326", outputBounds=bounds, xRes=pixel_deg, yRes=pixel_deg,
              resampleAlg=resampling, srcNodata="nan", dstNodata=nodata,
              outputType=gdal.GDT_Float32, creationOptions=["COMPRESS=DEFLATE"])
    return out


def write_licsar_like(scene, folder, pixel_deg=0.005):
    """Re-write a plugin-grid scene (:func:`write_scene` paths) as LiCSAR products.

    Returns a dict: ``INSAR_ASC`` / ``INSAR_DESC`` = lists of per-epoch phase files [rad]
    (in time order), ``LOS_ASC`` / ``LOS_DESC`` = the ``*.geo.E.tif`` files (siblings .N, .U),
    ``LOS_*_3BAND`` = a 3-band VRT of the three, ``DEM`` = ``*.geo.hgt.tif``, ``bounds``.
    """
    from osgeo import gdal

    from insar_gnss_3d.core.conventions import WAVELENGTH_M

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bounds = _to_lonlat_grid(scene["INSAR_ASC"], pixel_deg)
    out = {"bounds": bounds}
    to_rad = -4.0 * math.pi / WAVELENGTH_M
    for key, short in (("INSAR_ASC", "asc"), ("INSAR_DESC", "desc")):
        ds = gdal.Open(scene[key])
        files = []
        for b in range(1, ds.RasterCount + 1):
            day = ds.GetRasterBand(b).GetDescription().replace("-", "")
            name = str(folder / f"{short}_{day}.geo.unw.tif")
            mem = gdal.Warp("", gdal.Translate("", scene[key], format="VRT", bandList=[b]), format="MEM",
                            dstSRS="EPSG:4326", outputBounds=bounds, xRes=pixel_deg, yRes=pixel_deg,
                            resampleAlg="bilinear", srcNodata="nan", dstNodata="nan",
                            outputType=gdal.GDT_Float32)
            phase = mem.GetRasterBand(1).ReadAsArray() * to_rad
            mem.GetRasterBand(1).WriteArray(phase)
            mem.GetRasterBand(1).SetNoDataValue(float("nan"))
            gdal.Translate(name, mem, creationOptions=["COMPRESS=DEFLATE"])
            files.append(name)
        out[key] = files
        los_key = "LOS_" + short.upper()
        comps = []
        for b, c in enumerate("ENU"):
            comps.append(_warp(scene[los_key], str(folder / f"{short}.geo.{c}.tif"), bounds, pixel_deg, band=b + 1))
        out[los_key] = comps[0]
        vrt = str(folder / f"{short}_los.vrt")
        gdal.BuildVRT(vrt, comps, separate=True)
        out[los_key + "_3BAND"] = vrt
    out["DEM"] = _warp(scene["DEM"], str(folder / "asc.geo.hgt.tif"), bounds, pixel_deg, band=1)
    return out


def truth_on(reference_path, truth_path):
    """The truth (3, H, W) warped bilinearly onto a reference raster's grid."""
    from osgeo import gdal

    ref = gdal.Open(reference_path)
    gt = ref.GetGeoTransform()
    w, h = ref.RasterXSize, ref.RasterYSize
    ds = gdal.Warp("", truth_path, format="MEM", dstSRS=ref.GetProjection(),
                   outputBounds=(gt[0], gt[3] + h * gt[5], gt[0] + w * gt[1], gt[3]), width=w, height=h,
                   resampleAlg="bilinear", srcNodata="nan", dstNodata="nan", outputType=gdal.GDT_Float64)
    return ds.ReadAsArray()


def read_array(path):
    """All bands of a raster as float64 (bands, H, W) and the dataset's (geotransform, size, wkt)."""
    from osgeo import gdal

    ds = gdal.Open(path)
    return ds.ReadAsArray().astype(np.float64), (ds.GetGeoTransform(), (ds.RasterXSize, ds.RasterYSize),
                                                 ds.GetProjection())


def mssim(pred, truth):
    """Mean SSIM of each component (east, north, up) with NaN pixels left out."""
    from insar_gnss_3d.core.metrics import ssim

    return [ssim(pred[c], truth[c]) for c in range(3)]


def exists_any(folder, pattern="*"):
    """Files in ``folder`` matching ``pattern`` (names)."""
    return sorted(p.name for p in Path(folder).glob(pattern))


def remove(path):
    """Delete a file if it exists."""
    if os.path.exists(path):
        os.remove(path)
