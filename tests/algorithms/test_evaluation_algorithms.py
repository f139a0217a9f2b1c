"""decomposelos, projectlos and evaluatedisplacement through processing.run and qgis_process.

Fixtures are small GeoTIFFs written in tmp_path: an Okada thrust (zero north motion where
the decomposition must be exact), InSAR tracks as a multi-band raster (ascending, dates in
band descriptions) and as one file per epoch (descending, dates in file names).
"""

import math
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose
from osgeo import gdal

from insar_gnss_3d.core.geometry import Grid, enu_to_los, los_unit_vector
from insar_gnss_3d.core.metrics import rmse, ssim
from insar_gnss_3d.core.okada import Fault, surface_displacement
from insar_gnss_3d.core.raster import crs_wkt_from_epsg, write_raster

UTM52 = crs_wkt_from_epsg(32652)
GRID = Grid(600e3, 3650e3, 1000.0, 60, 48, UTM52)
DATES = ["2024-01-05", "2024-01-17", "2024-01-29", "2024-02-10", "2024-02-22"]
ASC = los_unit_vector(-12.0, 39.0)
DESC = los_unit_vector(-168.0, 39.0)


def okada_truth(grid=GRID, depth=3e3):
    east, north = grid.centres()
    fault = Fault(east=GRID.x0 + 30e3, north=GRID.y0 - 24e3, depth=depth, strike=200.0, dip=15.0,
                  length=30e3, width=20e3, rake=90.0, slip=1.0)
    return np.stack(surface_displacement(fault, east, north))


def los_field(heading, grid=GRID):
    """LOS unit vectors with incidence varying across the swath (31..45 deg), (3, H, W)."""
    incidence = np.broadcast_to(np.linspace(31.0, 45.0, grid.width), (grid.height, grid.width))
    return np.stack(los_unit_vector(np.full(incidence.shape, heading), incidence))


@pytest.fixture
def scene(tmp_path):
    """Files of a noise-free scene with zero north motion; returns a dict of paths and arrays."""
    truth = okada_truth()
    truth[1] = 0.0
    los_a, los_d = los_field(-12.0), los_field(-168.0)
    fraction = np.linspace(0.0, 1.0, len(DATES))  # slip grows over the window
    offset = np.array([0.0, 0.002, -0.001, 0.003, 0.0])  # per-epoch reference offsets [m]
    d_a = enu_to_los(*truth, *los_a)
    d_d = enu_to_los(*truth, *los_d)
    asc_cube = fraction[:, None, None] * d_a + offset[:, None, None]
    desc_cube = fraction[:, None, None] * d_d + offset[:, None, None]
    asc_cube[:, 3:6, 10:14] = np.nan  # unwrapping holes
    paths = {"truth": tmp_path / "truth.tif", "asc": tmp_path / "asc_cum.tif",
             "los_asc": tmp_path / "los_asc.tif", "los_desc": tmp_path / "los_desc.tif",
             "desc": [tmp_path / f"desc_{d.replace('-', '')}.geo.tif" for d in DATES]}
    write_raster(str(paths["truth"]), GRID, truth, ("east", "north", "up"))
    write_raster(str(paths["asc"]), GRID, asc_cube, DATES)
    for path, epoch in zip(paths["desc"], desc_cube):
        write_raster(str(path), GRID, epoch[None], ("los",))
    write_raster(str(paths["los_asc"]), GRID, los_a, ("east", "north", "up"))
    write_raster(str(paths["los_desc"]), GRID, los_d, ("east", "north", "up"))
    return {"paths": paths, "truth": truth, "los_a": los_a, "los_d": los_d,
            "asc_cube": asc_cube, "desc_cube": desc_cube}


def decompose_params(scene, out, **override):
    p = scene["paths"]
    params = {"INSAR_ASC": [str(p["asc"])], "INSAR_DESC": [str(x) for x in p["desc"]],
              "INSAR_UNITS": "m", "LOS_ASC": str(p["los_asc"]), "LOS_DESC": str(p["los_desc"]),
              "OUTPUT": str(out)}
    params.update(override)
    return params


def read(path):
    ds = gdal.Open(str(path))
    data = ds.ReadAsArray().astype(np.float64)
    names = [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)]
    return data, names, ds


def no_output(out):
    return not out.exists() and not out.with_name(out.name + ".part").exists()


# ------------------------------------------------------------------------ decomposelos

def expected_decomposition(scene):
    """East/up of the noise-free scene, NaN where the ascending track has holes."""
    truth = scene["truth"].copy()
    hole = ~np.isfinite(scene["asc_cube"][-1])
    truth[:, hole] = np.nan
    return truth


def test_decomposelos_recovers_east_and_up(run_alg, scene, tmp_path):
    out = tmp_path / "decomposed.tif"
    result = run_alg("decomposelos", decompose_params(scene, out))
    assert result["OUTPUT"] == str(out)
    data, names, ds = read(out)
    assert names == ["east", "north", "up"]
    assert ds.GetGeoTransform() == GRID.geotransform
    assert ds.GetSpatialRef().GetAuthorityCode(None) == "32652"
    expected = expected_decomposition(scene)
    assert np.isnan(data[1]).all()
    assert_allclose(data[[0, 2]], expected[[0, 2]], rtol=1e-5, atol=1e-6)  # float32 file
    assert (tmp_path / "decomposed.qml").exists()


def test_decomposelos_with_angles_and_millimetres(run_alg, scene, tmp_path):
    """Constant geometry from HEADING/INCIDENCE; data in mm."""
    truth = scene["truth"]
    a = los_unit_vector(-12.0, 39.0)
    d = los_unit_vector(-168.0, 39.0)
    asc = tmp_path / "asc_mm.tif"
    write_raster(str(asc), GRID, np.stack([np.zeros(truth[0].shape), 1e3 * enu_to_los(*truth, *a)]),
                 ["20240105", "20240222"])
    desc = tmp_path / "desc_mm.tif"
    write_raster(str(desc), GRID, np.stack([np.zeros(truth[0].shape), 1e3 * enu_to_los(*truth, *d)]),
                 ["20240105", "20240222"])
    out = tmp_path / "angles.tif"
    run_alg("decomposelos", {"INSAR_ASC": [str(asc)], "INSAR_DESC": [str(desc)],
                             "INSAR_UNITS": "mm", "HEADING_ASC": -12, "INCIDENCE_ASC": 39,
                             "HEADING_DESC": -168, "INCIDENCE_DESC": 39, "OUTPUT": str(out)})
    data, _, _ = read(out)
    assert_allclose(data[[0, 2]], truth[[0, 2]], rtol=1e-4, atol=1e-6)


def test_decomposelos_radians(run_alg, scene, tmp_path):
    """LiCSAR phase: d = -0.05546 / (4 pi) * phase."""
    truth = scene["truth"]
    factor = -0.05546 / (4 * math.pi)
    paths = {}
    for name, los in (("asc", scene["los_a"]), ("desc", scene["los_d"])):
        phase = np.stack([np.zeros(truth[0].shape), enu_to_los(*truth, *los) / factor])
        paths[name] = tmp_path / f"{name}_rad.tif"
        write_raster(str(paths[name]), GRID, phase, ["2024-01-05", "2024-02-22"])
    out = tmp_path / "rad.tif"
    run_alg("decomposelos", decompose_params(scene, out, INSAR_ASC=[str(paths["asc"])],
                                             INSAR_DESC=[str(paths["desc"])], INSAR_UNITS="rad"))
    data, _, _ = read(out)
    assert_allclose(data[[0, 2]], truth[[0, 2]], rtol=1e-4, atol=1e-6)


def test_decomposelos_warps_descending_onto_the_ascending_grid(run_alg, scene, tmp_path):
    """A descending track on a coarser, shifted grid is resampled onto the ascending grid."""
    coarse = Grid(GRID.x0 - 3e3, GRID.y0 + 2e3, 2000.0, 34, 28, UTM52)
    fine = okada_truth(GRID, depth=8e3)  # smooth enough for a 2 km grid
    fine[1] = 0.0
    truth = okada_truth(coarse, depth=8e3)
    truth[1] = 0.0
    d = los_unit_vector(-168.0, 39.0)
    desc = tmp_path / "desc_coarse.tif"
    write_raster(str(desc), coarse, np.stack([np.zeros(truth[0].shape), enu_to_los(*truth, *d)]),
                 ["2024-01-05", "2024-02-22"])
    asc = tmp_path / "asc_fine.tif"
    write_raster(str(asc), GRID, np.stack([np.zeros(fine[0].shape),
                                           enu_to_los(*fine, *scene["los_a"])]),
                 ["2024-01-05", "2024-02-22"])
    out = tmp_path / "mixed.tif"
    run_alg("decomposelos", decompose_params(scene, out, INSAR_ASC=[str(asc)],
                                             INSAR_DESC=[str(desc)], LOS_DESC=None,
                                             HEADING_DESC=-168, INCIDENCE_DESC=39))
    data, _, ds = read(out)
    assert (ds.RasterXSize, ds.RasterYSize) == (GRID.width, GRID.height)
    assert ds.GetGeoTransform() == GRID.geotransform
    # bilinear resampling of a 2 km grid: a few % of the peak
    for k in (0, 2):
        assert rmse(data[k], fine[k]) < 0.03 * np.abs(fine[k]).max()


def test_decomposelos_qgis_process(qgis_process, scene, tmp_path):
    p = scene["paths"]
    out = tmp_path / "cli.tif"
    args = ["run", "insargnss3d:decomposelos", "--json", "--", f"INSAR_ASC={p['asc']}"]
    args += [f"INSAR_DESC={x}" for x in p["desc"]]
    args += ["INSAR_UNITS=m", f"LOS_ASC={p['los_asc']}", f"LOS_DESC={p['los_desc']}",
             f"OUTPUT={out}"]
    _, result, _ = qgis_process(args)
    assert result["results"]["OUTPUT"] == str(out)
    data, names, _ = read(out)
    assert names == ["east", "north", "up"]
    assert_allclose(data[[0, 2]], expected_decomposition(scene)[[0, 2]], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------ bad inputs

def _write(path, data, names, grid=GRID):
    write_raster(str(path), grid, data, names)
    return str(path)


def bad_cases(scene, tmp_path):
    """(parameter overrides, expected message fragment) of inputs that must be refused."""
    h, w = GRID.height, GRID.width
    cube = scene["asc_cube"]
    far = Grid(200e3, 1000e3, 1000.0, 20, 20, UTM52)
    no_crs = tmp_path / "nocrs.tif"
    write_raster(str(no_crs), Grid(GRID.x0, GRID.y0, 1000.0, w, h, ""), cube, DATES)
    return [
        ({"INSAR_DESC": [_write(tmp_path / "far.tif", np.zeros((2, 20, 20)), DATES[:2], far)]},
         "does not overlap"),
        ({"INSAR_ASC": [str(no_crs)]}, "coordinate reference system"),
        ({"INSAR_DESC": [_write(tmp_path / "nan.tif", np.full((2, h, w), np.nan), DATES[:2])]},
         "no valid"),
        ({"LOS_ASC": _write(tmp_path / "angles.tif", np.stack([np.full((h, w), 39.0)] * 3),
                            ("inc", "az", "x"))}, "not a unit vector"),
        ({"LOS_DESC": _write(tmp_path / "down.tif", -scene["los_d"], ("e", "n", "u"))},
         "ground to the satellite"),
        ({"INSAR_ASC": [_write(tmp_path / "order.tif", cube, DATES[::-1])]}, "not in time order"),
        ({"INSAR_DESC": [str(p) for p in scene["paths"]["desc"][::-1]]}, "not in time order"),
        ({"INSAR_ASC": [_write(tmp_path / "one.tif", cube[-1:], DATES[-1:])]}, "one epoch"),
        ({"INSAR_ASC": [_write(tmp_path / "asc_mm_as_m.tif", cube * 1e5, DATES)]}, "unit is wrong"),
        ({"INSAR_ASC": [_write(tmp_path / "pair_20240105_20240117.tif", cube[:1], ["los"]),
                        _write(tmp_path / "pair_20240117_20240129.tif", cube[1:2], ["los"])]},
         "interferogram"),
        ({"LOS_DESC": None}, "HEADING_DESC"),
        ({"LOS_ASC": _write(tmp_path / "two.tif", scene["los_a"][:2], ("e", "n"))}, "band"),
    ]


def test_bad_inputs_are_refused_without_output(run_alg, scene, tmp_path):
    from qgis.core import QgsProcessingException
    for i, (override, message) in enumerate(bad_cases(scene, tmp_path)):
        out = tmp_path / f"bad{i}.tif"
        with pytest.raises(QgsProcessingException, match=message):
            run_alg("decomposelos", decompose_params(scene, out, **override))
        assert no_output(out), override


def test_cancel_leaves_no_output(provider, scene, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback
    import processing
    out = tmp_path / "cancelled.tif"
    for alg, params in (("decomposelos", decompose_params(scene, out)),
                        ("projectlos", {"DISPLACEMENT": str(scene["paths"]["truth"]),
                                        "HEADING": -12, "INCIDENCE": 39, "OUTPUT": str(out)}),
                        ("evaluatedisplacement", {"PREDICTION": str(scene["paths"]["truth"]),
                                                  "TRUTH": str(scene["paths"]["truth"]),
                                                  "REPORT": str(out)})):
        feedback = QgsProcessingFeedback()
        feedback.cancel()
        with pytest.raises(QgsProcessingException, match="Cancel"):
            processing.run(f"insargnss3d:{alg}", params, context=QgsProcessingContext(),
                           feedback=feedback)
        assert no_output(out)


# ------------------------------------------------------------------------ projectlos

def test_projectlos_with_los_raster(run_alg, scene, tmp_path):
    truth = okada_truth()  # with north motion
    disp = tmp_path / "disp.tif"
    write_raster(str(disp), GRID, truth, ("east", "north", "up"))
    out = tmp_path / "los.tif"
    result = run_alg("projectlos", {"DISPLACEMENT": str(disp),
                                    "LOS": str(scene["paths"]["los_asc"]), "OUTPUT": str(out)})
    assert result["OUTPUT"] == str(out)
    data, names, ds = read(out)
    assert names == ["los"] and ds.RasterCount == 1
    expected = enu_to_los(*truth.astype(np.float32).astype(np.float64), *scene["los_a"])
    assert_allclose(data, expected, rtol=1e-5, atol=1e-7)
    assert (tmp_path / "los.qml").exists()


def test_projectlos_sign_uplift_is_towards_the_satellite(run_alg, tmp_path):
    up = np.zeros((3, 12, 12))
    up[2] = 0.1
    disp = tmp_path / "uplift.tif"
    write_raster(str(disp), Grid(GRID.x0, GRID.y0, 1000.0, 12, 12, UTM52), up, ("east", "north", "up"))
    out = tmp_path / "uplift_los.tif"
    run_alg("projectlos", {"DISPLACEMENT": str(disp), "HEADING": -168, "INCIDENCE": 39,
                           "OUTPUT": str(out)})
    data, _, _ = read(out)
    assert_allclose(data, 0.1 * math.cos(math.radians(39)), rtol=1e-6)


def test_projectlos_qgis_process(qgis_process, scene, tmp_path):
    out = tmp_path / "los_cli.tif"
    args = ["run", "insargnss3d:projectlos", "--json", "--",
            f"DISPLACEMENT={scene['paths']['truth']}", "HEADING=-12", "INCIDENCE=39",
            f"OUTPUT={out}"]
    _, result, _ = qgis_process(args)
    assert result["results"]["OUTPUT"] == str(out)
    data, _, _ = read(out)
    expected = enu_to_los(*scene["truth"].astype(np.float32).astype(np.float64), *ASC)
    assert_allclose(data, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("override, message", [
    ({"HEADING": None}, "HEADING"),
    ({"INCIDENCE": 0}, "between 0 and 90"),
])
def test_projectlos_bad_input(run_alg, scene, tmp_path, override, message):
    from qgis.core import QgsProcessingException
    out = tmp_path / "bad_los.tif"
    params = {"DISPLACEMENT": str(scene["paths"]["truth"]), "HEADING": -12, "INCIDENCE": 39,
              "OUTPUT": str(out), **override}
    with pytest.raises(QgsProcessingException, match=message):
        run_alg("projectlos", params)
    assert no_output(out)


def test_projectlos_refuses_a_one_band_displacement(run_alg, scene, tmp_path):
    from qgis.core import QgsProcessingException
    out = tmp_path / "bad_los.tif"
    with pytest.raises(QgsProcessingException, match="east, north and up"):
        run_alg("projectlos", {"DISPLACEMENT": str(scene["paths"]["desc"][0]), "HEADING": -12,
                               "INCIDENCE": 39, "OUTPUT": str(out)})
    assert no_output(out)


# ------------------------------------------------------------------------ evaluatedisplacement

NUMBERS = ["MSSIM_EAST", "MSSIM_NORTH", "MSSIM_UP", "RMSE_EAST", "RMSE_NORTH", "RMSE_UP"]


def test_evaluate_matches_core_metrics(run_alg, scene, tmp_path):
    truth = okada_truth()
    rng = np.random.default_rng(0)
    pred = truth + 0.01 * rng.standard_normal(truth.shape)
    pred[:, 20:25, 30:40] = np.nan
    tp, pp = tmp_path / "t.tif", tmp_path / "p.tif"
    write_raster(str(tp), GRID, truth, ("east", "north", "up"))
    write_raster(str(pp), GRID, pred, ("east", "north", "up"))
    report = tmp_path / "report.html"
    result = run_alg("evaluatedisplacement", {"PREDICTION": str(pp), "TRUTH": str(tp),
                                              "REPORT": str(report)})
    t32, p32 = (a.astype(np.float32).astype(np.float64) for a in (truth, pred))
    for k, c in enumerate(("EAST", "NORTH", "UP")):
        assert result[f"MSSIM_{c}"] == pytest.approx(ssim(p32[k], t32[k]), abs=1e-9)
        assert result[f"RMSE_{c}"] == pytest.approx(rmse(p32[k], t32[k]), rel=1e-9)
        assert 0.0 < result[f"MSSIM_{c}"] < 1.0
    text = report.read_text()
    assert text.count("data:image/png;base64,") == 1 and "mSSIM" in text
    assert "residual" in text


def test_evaluate_decomposition_gives_nan_north(run_alg, scene, tmp_path):
    decomposed = tmp_path / "decomposed.tif"
    run_alg("decomposelos", decompose_params(scene, decomposed))
    result = run_alg("evaluatedisplacement", {"PREDICTION": str(decomposed),
                                              "TRUTH": str(scene["paths"]["truth"]),
                                              "REPORT": str(tmp_path / "r.html")})
    assert math.isnan(result["MSSIM_NORTH"]) and math.isnan(result["RMSE_NORTH"])
    assert result["MSSIM_EAST"] == pytest.approx(1.0, abs=1e-4)
    assert result["MSSIM_UP"] == pytest.approx(1.0, abs=1e-4)
    assert result["RMSE_UP"] < 1e-6
    assert "no data" in (tmp_path / "r.html").read_text()


def test_evaluate_warps_the_prediction_onto_the_truth_grid(run_alg, tmp_path):
    fine = Grid(GRID.x0 + 5e3, GRID.y0 - 4e3, 500.0, 80, 60, UTM52)
    truth = okada_truth(fine)
    pred_grid = Grid(GRID.x0, GRID.y0, 1000.0, 60, 48, UTM52)  # coarser, covers the truth
    pred = okada_truth(pred_grid)
    tp, pp = tmp_path / "t_fine.tif", tmp_path / "p_coarse.tif"
    write_raster(str(tp), fine, truth, ("east", "north", "up"))
    write_raster(str(pp), pred_grid, pred, ("east", "north", "up"))
    result = run_alg("evaluatedisplacement", {"PREDICTION": str(pp), "TRUTH": str(tp),
                                              "REPORT": str(tmp_path / "w.html")})
    for c in ("EAST", "NORTH", "UP"):
        assert 0.9 < result[f"MSSIM_{c}"] <= 1.0
        assert result[f"RMSE_{c}"] < 0.05 * np.abs(truth).max()


def test_evaluate_qgis_process(qgis_process, scene, tmp_path):
    report = tmp_path / "cli.html"
    args = ["run", "insargnss3d:evaluatedisplacement", "--json", "--",
            f"PREDICTION={scene['paths']['truth']}", f"TRUTH={scene['paths']['truth']}",
            f"REPORT={report}"]
    _, result, text = qgis_process(args)
    assert result is not None, text
    values = result["results"]
    assert values["MSSIM_EAST"] == pytest.approx(1.0, abs=1e-9)
    assert values["MSSIM_UP"] == pytest.approx(1.0, abs=1e-9)
    assert values["RMSE_EAST"] == pytest.approx(0.0, abs=1e-12)
    # the truth's north is 0 everywhere: no SSIM data range, NaN (JSON null or NaN) + warning
    north = values["MSSIM_NORTH"]
    assert north is None or (isinstance(north, float) and math.isnan(north))
    assert re.search(r"north: NaN because .*constant", text)
    assert report.exists()


@pytest.mark.parametrize("which, message", [("PREDICTION", "band"), ("TRUTH", "band")])
def test_evaluate_refuses_non_3_band_rasters(run_alg, scene, tmp_path, which, message):
    from qgis.core import QgsProcessingException
    params = {"PREDICTION": str(scene["paths"]["truth"]), "TRUTH": str(scene["paths"]["truth"]),
              "REPORT": str(tmp_path / "bad.html")}
    params[which] = str(scene["paths"]["desc"][0])
    with pytest.raises(QgsProcessingException, match=message):
        run_alg("evaluatedisplacement", params)
    assert not (tmp_path / "bad.html").exists()
