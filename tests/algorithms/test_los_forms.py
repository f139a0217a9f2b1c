"""Every algorithm that takes a LOS geometry accepts its three forms, through qgis_process.

The forms (:func:`insar_gnss_3d.core.insar_io.read_los`): a 3-band raster (east, north, up)
on the InSAR grid; LiCSAR's ``<track>.geo.E.tif`` with ``.N`` and ``.U`` beside it, in
EPSG:4326 at 0.005 deg like LiCSAR frames; heading and incidence. The geometry is the
Sentinel-1 one of ``test_geometry.py`` and constant, so the three forms describe the same
vectors and must give the same result.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from osgeo import gdal, osr

from insar_gnss_3d.core.geometry import Grid, enu_to_los, los_unit_vector
from insar_gnss_3d.core.raster import crs_wkt_from_epsg, write_raster

H = __import__("importlib").util.spec_from_file_location(
    "helpers_scenes", Path(__file__).resolve().parents[1] / "helpers_scenes.py")
helpers = __import__("importlib").util.module_from_spec(H)
H.loader.exec_module(helpers)

FORMS = ("raster", "licsar", "angles")
GEOMETRY = {"_ASC": (-12.0, 39.0), "_DESC": (-168.0, 39.0)}
GRID = Grid(600e3, 3650e3, 1000.0, 24, 20, crs_wkt_from_epsg(32652))
DATES = ["2024-01-05", "2024-02-10"]


def write_licsar_triple(folder, stem, vector, grid, pixel_deg=0.005):
    """``<stem>.geo.E/N/U.tif``: constant components in EPSG:4326 covering ``grid`` with a margin."""
    src = osr.SpatialReference(wkt=grid.crs_wkt)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    xmin, ymin, xmax, ymax = osr.CoordinateTransformation(src, dst).TransformBounds(*grid.extent, 21)
    west, north = math.floor(xmin / pixel_deg) * pixel_deg - 0.02, math.ceil(ymax / pixel_deg) * pixel_deg + 0.02
    width = int(math.ceil((xmax + 0.02 - west) / pixel_deg))
    height = int(math.ceil((north - ymin + 0.02) / pixel_deg))
    paths = []
    for c, value in zip("ENU", vector):
        path = str(Path(folder) / f"{stem}.geo.{c}.tif")
        ds = gdal.GetDriverByName("GTiff").Create(path, width, height, 1, gdal.GDT_Float32)
        ds.SetGeoTransform((west, pixel_deg, 0.0, north, 0.0, -pixel_deg))
        ds.SetProjection(dst.ExportToWkt())
        ds.GetRasterBand(1).SetNoDataValue(float("nan"))
        ds.GetRasterBand(1).WriteArray(np.full((height, width), value, dtype=np.float32))
        ds = None
        paths.append(path)
    return paths[0]


def los_forms(folder, grid):
    """{form: [qgis_process arguments]} giving both tracks' geometry in that form."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    forms = {form: [] for form in FORMS}
    for suffix, (heading, incidence) in GEOMETRY.items():
        vector = los_unit_vector(heading, incidence)
        three = str(folder / f"los{suffix.lower()}.tif")
        write_raster(three, grid, np.stack([np.full((grid.height, grid.width), c) for c in vector]),
                     ("east", "north", "up"))
        forms["raster"].append(f"LOS{suffix}={three}")
        licsar = write_licsar_triple(folder, f"track{suffix.lower()}", vector, grid)
        forms["licsar"].append(f"LOS{suffix}={licsar}")
        forms["angles"] += [f"HEADING{suffix}={heading}", f"INCIDENCE{suffix}={incidence}"]
    return forms


def read(path):
    return gdal.Open(str(path)).ReadAsArray().astype(np.float64)


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A smooth east/north/up field, its LOS on both tracks (2 epochs) and the three forms."""
    folder = tmp_path_factory.mktemp("los_forms")
    x, y = GRID.centres()
    u = (x - GRID.x0) / (GRID.width * GRID.pixel_size)
    v = (GRID.y0 - y) / (GRID.height * GRID.pixel_size)
    truth = np.stack([0.05 * np.sin(3 * u) * v, 0.02 * u, -0.08 * u * v + 0.01])
    paths = {"truth": str(folder / "truth.tif")}
    write_raster(paths["truth"], GRID, truth, ("east", "north", "up"))
    for suffix, (heading, incidence) in GEOMETRY.items():
        d = enu_to_los(*truth, *los_unit_vector(heading, incidence))
        paths["INSAR" + suffix] = str(folder / f"insar{suffix.lower()}.tif")
        write_raster(paths["INSAR" + suffix], GRID, np.stack([np.zeros_like(d), d]), DATES)
    return {"paths": paths, "truth": truth, "forms": los_forms(folder / "los", GRID)}


@pytest.mark.parametrize("form", FORMS)
def test_decomposelos_takes_every_los_form(qgis_process, field, form, tmp_path):
    p = field["paths"]
    out = tmp_path / f"decomposed_{form}.tif"
    qgis_process(["run", "insargnss3d:decomposelos", "--json", "--", f"INSAR_ASC={p['INSAR_ASC']}",
                  f"INSAR_DESC={p['INSAR_DESC']}", "INSAR_UNITS=m", *field["forms"][form], f"OUTPUT={out}"])
    east, north, up = read(out)
    # Sentinel-1's two tracks see north almost alike: its leak is (n_a u_d - n_d u_a) / det
    # = 0 into east and -0.42 x north into up at 39 deg incidence (core/baselines.py, Notes)
    e_a, n_a, u_a = los_unit_vector(*GEOMETRY["_ASC"])
    e_d, n_d, u_d = los_unit_vector(*GEOMETRY["_DESC"])
    leak_up = (e_a * n_d - e_d * n_a) / (e_a * u_d - e_d * u_a)
    truth = field["truth"]
    assert np.isnan(north).all()
    assert_allclose(east, truth[0], atol=2e-6)
    assert_allclose(up, truth[2] + leak_up * truth[1], atol=2e-6)


@pytest.mark.parametrize("form", FORMS)
def test_projectlos_takes_every_los_form(qgis_process, field, form, tmp_path):
    out = tmp_path / f"los_{form}.tif"
    # projectlos has one geometry, named without a suffix: take the ascending one
    args = [a.replace("_ASC=", "=") for a in field["forms"][form] if "_ASC=" in a]
    qgis_process(["run", "insargnss3d:projectlos", "--json", "--",
                  f"DISPLACEMENT={field['paths']['truth']}", *args, f"OUTPUT={out}"])
    expected = enu_to_los(*field["truth"].astype(np.float32).astype(np.float64),
                          *los_unit_vector(*GEOMETRY["_ASC"]))
    assert_allclose(read(out), expected, rtol=1e-5, atol=1e-7)
    # the ascending geometry: westward and upward motion are towards the satellite
    assert float(np.mean(read(out))) == pytest.approx(float(np.mean(expected)), rel=1e-5)


@pytest.mark.slow
def test_extractdisplacement_takes_every_los_form(provider, qgis_process, tmp_path):
    """Three qgis_process runs of an untrained tiny model (~30 s: torch loads in each)."""
    import processing

    folder = tmp_path / "scene"
    folder.mkdir()
    outputs = {k: str(folder / f"{k.lower()}.tif") for k in ("INSAR_ASC", "INSAR_DESC", "LOS_ASC", "LOS_DESC",
                                                              "DEM_OUT", "TRUTH")}
    outputs.update(GNSS=str(folder / "gnss.gpkg"), FAULT=str(folder / "fault.gpkg"))
    scene = processing.run("insargnss3d:synthesizescene", {
        "SEED": 5, "EXTENT": "600000,632000,3628000,3660000 [EPSG:32652]", "PIXEL_SIZE": 1000.0,
        "MAX_DISPLACEMENT_M": 0.5, "START_DATE": "2024-01-01", **outputs})
    model = helpers.untrained_model(tmp_path / "tiny.pt")
    grid = Grid(600e3, 3660e3, 1000.0, 32, 32, crs_wkt_from_epsg(32652))
    forms = los_forms(tmp_path / "los", grid)
    results = {}
    for form in FORMS:
        out = tmp_path / f"enu_{form}.tif"
        qgis_process(["run", "insargnss3d:extractdisplacement", "--json", "--",
                      f"INSAR_ASC={scene['INSAR_ASC']}", f"INSAR_DESC={scene['INSAR_DESC']}", "INSAR_UNITS=m",
                      *forms[form], f"DEM={scene['DEM_OUT']}", f"GNSS={scene['GNSS']}", f"MODEL={model}",
                      "DEVICE=cpu", f"OUTPUT={out}"])
        results[form] = read(out)
    assert results["raster"].shape[1:] == (32, 32) and results["raster"].shape[0] >= 3   # E, N, U (+ std)
    assert np.isfinite(results["raster"]).sum() > 300          # the synthetic scene has holes
    # the three forms are one set of float32 vectors: one result, to the last bit
    assert_allclose(results["licsar"], results["raster"], rtol=0, atol=0)
    assert_allclose(results["angles"], results["raster"], rtol=0, atol=0)
