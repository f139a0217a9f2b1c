"""insargnss3d:extractdisplacement through processing.run and qgis_process, on synthetic scenes.

Scenes come from ``insargnss3d:synthesizescene`` (64 km square, 1 km pixels, in UTM) and are
re-written as LiCSAR products (EPSG:4326 at 0.005 deg, radians, one file per epoch, E/N/U
LOS files, hgt DEM) by ``tests/helpers_scenes.py``. The model is tiny and trained for a few
seconds: the tests check the plumbing (grids, units, windows, errors), not the skill.
"""

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

H = __import__("importlib").util.spec_from_file_location(
    "helpers_scenes", Path(__file__).resolve().parents[1] / "helpers_scenes.py")
helpers = __import__("importlib").util.module_from_spec(H)
H.loader.exec_module(helpers)

ALG = "extractdisplacement"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("extract")


@pytest.fixture(scope="module")
def model_path(workdir):
    """A tiny model trained with the Trainer (track dropout on, as by default)."""
    return helpers.train_tiny_model(workdir / "tiny.pt")


@pytest.fixture(scope="module")
def scene(seed7_scene):
    """The shared synthesizescene scene (tests/conftest.py)."""
    return seed7_scene


@pytest.fixture(scope="module")
def licsar(scene, workdir):
    """The same scene as LiCSAR products, GNSS re-projected to EPSG:4326."""
    out = helpers.write_licsar_like({**scene, "DEM": scene["DEM_OUT"]}, workdir / "licsar")
    gnss = str(workdir / "licsar" / "gnss_4326.gpkg")
    gdal.VectorTranslate(gnss, scene["GNSS"], dstSRS="EPSG:4326")
    out["GNSS"] = gnss
    return out


def base_params(scene, model_path, out):
    return {"INSAR_ASC": [scene["INSAR_ASC"]], "INSAR_DESC": [scene["INSAR_DESC"]],
            "LOS_ASC": scene["LOS_ASC"], "LOS_DESC": scene["LOS_DESC"], "INSAR_UNITS": "m",
            "DEM": scene["DEM_OUT"], "GNSS": scene["GNSS"], "MODEL": model_path, "DEVICE": "cpu",
            "OUTPUT": str(out)}


def gnss_arrays(path, epsg):
    """The GNSS layer as (dates, enu (S, D, 3), x, y, names) with x/y in EPSG ``epsg`` (OGR only)."""
    ds = ogr.Open(path)
    layer = ds.GetLayer(0)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(epsg)
    src = layer.GetSpatialRef()
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(src, dst)
    rows = []
    for f in layer:
        x, y, _ = transform.TransformPoint(*f.GetGeometryRef().GetPoint()[:2])
        rows.append((f["station"], np.datetime64(str(f["date"])[:10].replace("/", "-")), x, y,
                     f["east"], f["north"], f["up"]))
    names = list(dict.fromkeys(r[0] for r in rows))
    d0 = min(r[1] for r in rows)
    d1 = max(r[1] for r in rows)
    dates = np.arange(d0, d1 + 1)
    enu = np.full((len(names), len(dates), 3), np.nan)
    xy = {}
    for name, day, x, y, e, n, u in rows:
        s = names.index(name)
        enu[s, int((day - d0).astype(int))] = (e, n, u)
        xy[name] = (x, y)
    return dates, enu, np.array([xy[n][0] for n in names]), np.array([xy[n][1] for n in names]), names


def in_core(asc, desc, dem, gnss_path, model_path, units="m", tile_px=128):
    """The same extraction run on core functions only: (working-grid result, grid)."""
    from insar_gnss_3d.core import prepare
    from insar_gnss_3d.core.consistency import consistent_extraction
    from insar_gnss_3d.core.modelfile import load_model

    model, scene, _ = load_model(model_path)
    grid = prepare.working_grid((asc or desc).paths[0], scene.pixel_m)
    dates, enu, x, y, names = gnss_arrays(gnss_path, prepare.grid_epsg(grid))
    prepared = prepare.prepare_scene(asc, desc, dem, dates, enu, x, y, names, scene, units=units, grid=grid)
    network, network_std = prepare.run_model(prepared, model, tile_px=tile_px, overlap_px=max(8, tile_px // 4),
                                             with_std=True)
    return consistent_extraction(prepared, network, scene, network_std_m=network_std)[0], prepared


def assert_on_grid(out_path, reference_path):
    out = gdal.Open(out_path)
    ref = gdal.Open(reference_path)
    assert (out.RasterXSize, out.RasterYSize) == (ref.RasterXSize, ref.RasterYSize)
    np.testing.assert_allclose(out.GetGeoTransform(), ref.GetGeoTransform(), rtol=0, atol=1e-9)
    assert osr.SpatialReference(wkt=out.GetProjection()).IsSame(osr.SpatialReference(wkt=ref.GetProjection()))
    assert out.RasterCount == 6
    assert [out.GetRasterBand(b).GetDescription() for b in range(1, 7)] == [
        "east", "north", "up", "east_std", "north_std", "up_std"]
    assert all(out.GetRasterBand(b).DataType == gdal.GDT_Float32 for b in range(1, 7))
    assert np.isnan(out.GetRasterBand(1).GetNoDataValue())


def no_output(path):
    path = Path(path)
    return not path.exists() and not Path(str(path) + ".part").exists()


# --------------------------------------------------------------------------- results


def test_plugin_grid_result_lies_on_the_input_grid_and_matches_core(run_alg, scene, model_path, tmp_path):
    from insar_gnss_3d.core.prepare import TrackSource

    out = tmp_path / "enu.tif"
    result = run_alg(ALG, base_params(scene, model_path, out))
    assert result["OUTPUT"] == str(out)
    assert_on_grid(str(out), scene["INSAR_ASC"])
    assert (tmp_path / "enu.qml").exists()
    pred, _ = helpers.read_array(str(out))
    truth, _ = helpers.read_array(scene["TRUTH"])
    scores = helpers.mssim(pred, truth)
    assert np.all(np.isfinite(scores))

    asc = TrackSource("INSAR_ASC", (scene["INSAR_ASC"],), scene["LOS_ASC"])
    desc = TrackSource("INSAR_DESC", (scene["INSAR_DESC"],), scene["LOS_DESC"])
    core_result, prepared = in_core(asc, desc, scene["DEM_OUT"], scene["GNSS"], model_path)
    # the working grid is the input grid: no resampling either way
    assert (prepared.grid.width, prepared.grid.height) == (pred.shape[2], pred.shape[1])
    covered = np.isfinite(pred[0])
    assert covered.mean() > 0.5
    np.testing.assert_allclose(pred[:, covered], core_result[:, covered], rtol=1e-5, atol=1e-7)
    core_scores = helpers.mssim(np.where(covered, core_result, np.nan), truth)
    np.testing.assert_allclose(scores, core_scores, rtol=1e-6, atol=1e-9)


def test_licsar_products_in_radians_and_degrees(run_alg, scene, licsar, model_path, tmp_path):
    from insar_gnss_3d.core.prepare import TrackSource

    out = tmp_path / "enu_licsar.tif"
    params = base_params(scene, model_path, out)
    params.update({"INSAR_ASC": licsar["INSAR_ASC"], "INSAR_DESC": licsar["INSAR_DESC"],
                   "LOS_ASC": licsar["LOS_ASC"], "LOS_DESC": licsar["LOS_DESC_3BAND"],
                   "INSAR_UNITS": "rad", "DEM": licsar["DEM"], "GNSS": licsar["GNSS"]})
    run_alg(ALG, params)
    assert_on_grid(str(out), licsar["INSAR_ASC"][0])
    pred, _ = helpers.read_array(str(out))
    truth = helpers.truth_on(licsar["INSAR_ASC"][0], scene["TRUTH"])
    scores = helpers.mssim(pred, truth)
    assert np.all(np.isfinite(scores))

    asc = TrackSource("INSAR_ASC", tuple(licsar["INSAR_ASC"]), licsar["LOS_ASC"])
    desc = TrackSource("INSAR_DESC", tuple(licsar["INSAR_DESC"]), licsar["LOS_DESC_3BAND"])
    core_result, prepared = in_core(asc, desc, licsar["DEM"], licsar["GNSS"], model_path, units="rad")
    core_path = str(tmp_path / "core.tif")
    from insar_gnss_3d.core.prepare import write_result
    write_result(core_result, prepared.grid, licsar["INSAR_ASC"][0], core_path, prepared.tracks,
                 descriptions=("east", "north", "up", "east_std", "north_std", "up_std"))
    core_pred, _ = helpers.read_array(core_path)
    np.testing.assert_allclose(pred, core_pred, rtol=1e-5, atol=1e-7, equal_nan=True)
    np.testing.assert_allclose(scores, helpers.mssim(core_pred, truth), rtol=1e-6)
    assert prepared.grid.pixel_size == 1000.0
    assert prepared.insar_epochs_m.shape[1] == helpers.TINY_SCENE["model_epochs"]


def test_one_track_with_a_model_trained_for_it(run_alg, scene, model_path, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    class Log(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.text = []

        def pushInfo(self, info):  # noqa: N802
            self.text.append(info)

        def pushWarning(self, warning):  # noqa: N802
            self.text.append(warning)

    out = tmp_path / "asc_only.tif"
    params = base_params(scene, model_path, out)
    params["INSAR_DESC"] = []
    log = Log()
    run_alg(ALG, params, context=QgsProcessingContext(), feedback=log)
    assert_on_grid(str(out), scene["INSAR_ASC"])
    assert any("track_dropout_probability" in t for t in log.text)
    pred, _ = helpers.read_array(str(out))
    assert np.isfinite(pred).any()

    out = tmp_path / "desc_only.tif"
    params = base_params(scene, model_path, out)
    params["INSAR_ASC"] = []
    run_alg(ALG, params)
    assert_on_grid(str(out), scene["INSAR_DESC"])   # no ascending layer: the descending grid


def test_one_track_with_a_model_not_trained_for_it(run_alg, scene, tmp_path):
    from qgis.core import QgsProcessingException

    model = helpers.untrained_model(tmp_path / "no_dropout.pt", track_dropout_probability=0.0)
    out = tmp_path / "out.tif"
    params = base_params(scene, model, out)
    params["INSAR_DESC"] = []
    with pytest.raises(QgsProcessingException, match="INSAR_DESC is missing.*trained with both tracks"):
        run_alg(ALG, params)
    assert no_output(out)


def test_default_model_is_the_bundled_one(run_alg, scene, tmp_path):
    from qgis.core import QgsProcessingException

    from insar_gnss_3d.algorithms.extract_displacement import BUNDLED_MODEL

    out = tmp_path / "bundled.tif"
    params = base_params(scene, None, out)
    del params["MODEL"]
    if Path(BUNDLED_MODEL).exists():
        run_alg(ALG, params)
        assert_on_grid(str(out), scene["INSAR_ASC"])
    else:
        with pytest.raises(QgsProcessingException, match="bundled model .* is missing; give a model file"):
            run_alg(ALG, params)
        assert no_output(out)


def test_heading_and_incidence_instead_of_los_rasters(run_alg, scene, model_path, tmp_path):
    out = tmp_path / "angles.tif"
    params = base_params(scene, model_path, out)
    params.update({"LOS_ASC": None, "LOS_DESC": None, "HEADING_ASC": -12.0, "INCIDENCE_ASC": 39.0,
                   "HEADING_DESC": -168.0, "INCIDENCE_DESC": 39.0})
    run_alg(ALG, params)
    assert_on_grid(str(out), scene["INSAR_ASC"])


def test_cancel_leaves_no_output(run_alg, scene, model_path, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    for stop_at in (30.0, 80.0):
        feedback = QgsProcessingFeedback()
        feedback.progressChanged.connect(lambda p, f=feedback, s=stop_at: f.cancel() if p >= s else None)
        out = tmp_path / f"cancelled_{int(stop_at)}.tif"
        with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
            run_alg(ALG, base_params(scene, model_path, out), context=QgsProcessingContext(), feedback=feedback)
        assert no_output(out)


# --------------------------------------------------------------------------- bad input


def _rewrite(src, dst, fn=None, projection=True, geotransform=None, descriptions=None, bands=None):
    """Copy a raster with its values passed through ``fn`` and metadata changed."""
    ds = gdal.Open(src)
    data = ds.ReadAsArray().astype(np.float32)
    if data.ndim == 2:
        data = data[None]
    if bands is not None:
        data = data[bands]
    if fn is not None:
        data = fn(data).astype(np.float32)
    out = gdal.GetDriverByName("GTiff").Create(str(dst), ds.RasterXSize, ds.RasterYSize, len(data), gdal.GDT_Float32)
    out.SetGeoTransform(geotransform or ds.GetGeoTransform())
    if projection:
        out.SetProjection(ds.GetProjection())
    names = descriptions or [ds.GetRasterBand(b + 1).GetDescription()
                             for b in (bands if bands is not None else range(len(data)))]
    for i, values in enumerate(data):
        band = out.GetRasterBand(i + 1)
        band.WriteArray(values)
        band.SetNoDataValue(float("nan"))
        band.SetDescription(names[i])
    out = None
    return str(dst)


def _shifted_gnss(src, dst, dx):
    """Copy of a point layer moved ``dx`` metres east."""
    gdal.VectorTranslate(str(dst), src)
    ds = ogr.Open(str(dst), 1)
    layer = ds.GetLayer(0)
    for feature in layer:
        geometry = feature.GetGeometryRef()
        x, y = geometry.GetX(), geometry.GetY()
        geometry.SetPoint_2D(0, x + dx, y)
        feature.SetGeometry(geometry)
        layer.SetFeature(feature)
    ds = None
    return str(dst)


def _bad_cases(scene, licsar, model_path, tmp_path):
    """(name, parameter changes, message pattern)."""
    asc = scene["INSAR_ASC"]
    gt = gdal.Open(asc).GetGeoTransform()
    far = (gt[0] + 3e6,) + tuple(gt[1:])
    foreign = tmp_path / "foreign.pt"
    import torch
    torch.save({"weights": torch.zeros(3)}, foreign)
    from insar_gnss_3d.core.model import DualBranchNet, ModelConfig
    from insar_gnss_3d.core.modelfile import save_model
    from insar_gnss_3d.core.synthetic import SceneConfig
    mismatch = tmp_path / "mismatch.pt"
    save_model(str(mismatch), DualBranchNet(ModelConfig(epochs=5, **helpers.TINY_MODEL)),
               SceneConfig.from_dict(helpers.TINY_SCENE), {})
    reversed_files = list(reversed(licsar["INSAR_ASC"]))
    return [
        ("no overlap", {"INSAR_DESC": [_rewrite(scene["INSAR_DESC"], tmp_path / "far.tif", geotransform=far)]},
         "does not overlap"),
        ("no CRS", {"INSAR_DESC": [_rewrite(scene["INSAR_DESC"], tmp_path / "nocrs.tif", projection=False)]},
         "coordinate reference system"),
        ("all NaN", {"INSAR_DESC": [_rewrite(scene["INSAR_DESC"], tmp_path / "nan.tif", lambda d: d * np.nan)]},
         "no valid value"),
        ("LOS not unit", {"LOS_ASC": _rewrite(scene["LOS_ASC"], tmp_path / "los2.tif", lambda d: 2 * d)},
         "not a unit vector"),
        ("one epoch", {"INSAR_ASC": [_rewrite(asc, tmp_path / "one.tif", bands=[0])]}, "single epoch"),
        ("dates out of order", {"INSAR_ASC": reversed_files, "INSAR_DESC": licsar["INSAR_DESC"],
                                "INSAR_UNITS": "rad", "LOS_ASC": licsar["LOS_ASC_3BAND"],
                                "LOS_DESC": licsar["LOS_DESC_3BAND"]}, "not in time order"),
        ("impossible unit", {"INSAR_ASC": [_rewrite(asc, tmp_path / "mm.tif", lambda d: d * 1000.0)]},
         "unit is wrong"),
        ("GNSS far away", {"GNSS": _shifted_gnss(scene["GNSS"], tmp_path / "far.gpkg", 5e5)},
         "none of the 18 GNSS stations lies inside the scene"),
        ("GNSS fields", {"STATION_FIELD": "site"}, "site"),
        ("foreign model", {"MODEL": str(foreign)}, "not an InSAR-GNSS 3D model"),
        ("mismatched model", {"MODEL": str(mismatch)}, "expects other inputs"),
        ("cuda", {"DEVICE": "cuda"}, "CUDA"),
    ]


def test_bad_inputs_give_clear_errors_and_no_output(run_alg, scene, licsar, model_path, tmp_path):
    import torch
    from qgis.core import QgsProcessingException

    failures = []
    for name, changes, pattern in _bad_cases(scene, licsar, model_path, tmp_path):
        if name == "cuda" and torch.cuda.is_available():
            continue
        out = tmp_path / f"bad_{name.replace(' ', '_')}.tif"
        params = {**base_params(scene, model_path, out), **changes}
        try:
            run_alg(ALG, params)
            failures.append(f"{name}: no error")
        except QgsProcessingException as exc:
            import re
            if not re.search(pattern, str(exc)):
                failures.append(f"{name}: {exc}")
        if not no_output(out):
            failures.append(f"{name}: output left behind")
    assert not failures, "\n".join(failures)


def test_through_qgis_process(qgis_process, scene, model_path, tmp_path):
    out = tmp_path / "cli.tif"
    args = ["run", f"insargnss3d:{ALG}", "--json", "--",
            f"INSAR_ASC={scene['INSAR_ASC']}", f"INSAR_DESC={scene['INSAR_DESC']}",
            f"LOS_ASC={scene['LOS_ASC']}", f"LOS_DESC={scene['LOS_DESC']}", "INSAR_UNITS=m",
            f"DEM={scene['DEM_OUT']}", f"GNSS={scene['GNSS']}", f"MODEL={model_path}", "DEVICE=cpu",
            f"OUTPUT={out}"]
    code, parsed, text = qgis_process(args)
    assert code == 0, text
    assert parsed["results"]["OUTPUT"] == str(out)
    assert_on_grid(str(out), scene["INSAR_ASC"])

    for changes, pattern in ((["DEVICE=cuda"], "CUDA"), ([f"MODEL={scene['DEM_OUT']}"], "not an InSAR-GNSS 3D model"),
                             (["STATION_FIELD=site"], "site")):
        bad = tmp_path / "cli_bad.tif"
        import torch
        if changes == ["DEVICE=cuda"] and torch.cuda.is_available():
            continue
        argv = [a for a in args if not any(a.startswith(c.split("=")[0] + "=") for c in changes)]
        argv = [a if not a.startswith("OUTPUT=") else f"OUTPUT={bad}" for a in argv] + changes
        code, _, text = qgis_process(argv, check=False)
        assert code != 0
        assert pattern in text, text
        assert no_output(bad)


def test_a_multi_scale_model_chooses_its_working_pixel_from_the_scene(qgis_process, scene, workdir, tmp_path):
    """Trained over 1.5-4 km pixels, it works at 1.5 km on the 64 km scene (prepare.working_pixel_m)
    and the result comes back on the input grid."""
    path = helpers.train_tiny_model(workdir / "multi.pt", model_options={"pixel_size_input": True},
                                    pixel_m=1500.0, pixel_m_range=(1500.0, 4000.0))
    out = tmp_path / "multi.tif"
    args = ["run", f"insargnss3d:{ALG}", "--",
            *(f"{k}={v[0] if isinstance(v, list) else v}"
              for k, v in base_params(scene, path, out).items())]
    code, _, text = qgis_process(args)
    assert code == 0, text
    assert "pixels of 1500 m" in text, text
    assert_on_grid(str(out), scene["INSAR_ASC"])
    pred, _ = helpers.read_array(str(out))
    assert np.isfinite(pred[:3]).mean() > 0.5


def test_crossvalidate_leaves_stations_out_and_writes_table_and_report(run_alg, scene, model_path, tmp_path):
    import csv

    from qgis.core import QgsProcessingException

    params = base_params(scene, model_path, tmp_path / "unused.tif")
    del params["OUTPUT"]
    params.update({"STATIONS_OUT": "2", "OUTPUT_TABLE": str(tmp_path / "loo.csv"),
                   "REPORT": str(tmp_path / "sub" / "loo.html")})
    result = run_alg("crossvalidate", params)
    with open(result["OUTPUT_TABLE"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["cnn", "joint", "interpolation"] * 2
    assert len({r["station"] for r in rows}) == 2
    for r in rows:
        observed = np.array([float(r[f"observed_{c}_m"]) for c in ("east", "north", "up")])
        predicted = np.array([float(r[f"predicted_{c}_m"]) for c in ("east", "north", "up")])
        assert float(r["error_3d_m"]) == pytest.approx(np.linalg.norm(predicted - observed), rel=1e-4)
        std = np.array([float(r[f"std_{c}_m"]) for c in ("east", "north", "up")])
        # the CNN's and the joint peer's own standard deviations at the station; none for interpolation
        assert np.all(std > 0) if r["method"] != "interpolation" else np.all(np.isnan(std))
    html = (tmp_path / "sub" / "loo.html").read_text()
    assert "cross-validation" in html and "within 1 sigma" in html
    with pytest.raises(QgsProcessingException, match="STATIONS_OUT: NOPE not among"):
        run_alg("crossvalidate", {**params, "STATIONS_OUT": "NOPE"})
    # a layer whose one station has two days: nothing to compare with, so a sentence, not an
    # empty table of NaN medians (as it once was)
    layer, _ = helpers.write_first_days_of_one_station(params["GNSS"], tmp_path / "two_days.gpkg")
    empty = tmp_path / "empty.csv"
    with pytest.raises(QgsProcessingException, match="No station can be left out"):
        run_alg("crossvalidate", {**params, "GNSS": layer, "OUTPUT_TABLE": str(empty)})
    assert not empty.exists()


def test_quality_and_arrows_outputs(run_alg, scene, model_path, tmp_path):
    import json

    from osgeo import ogr

    params = base_params(scene, model_path, tmp_path / "enu_q.tif")
    params.update({"QUALITY": str(tmp_path / "q" / "quality.json"), "ARROWS": str(tmp_path / "arrows.gpkg")})
    result = run_alg(ALG, params)
    quality = json.loads(Path(result["QUALITY"]).read_text())
    tracks = [t for t in quality["tracks"] if t.get("used")]
    assert len(tracks) == 2
    for t in tracks:
        # the output explains each track to within a few times its own noise estimate
        assert 0 < t["noise_m"] and t["los_residual_rms_m"] <= 3 * t["noise_m"] + 0.02
    assert len(quality["stations"]) > 3 and all(len(s["residual_m"]) == 3 for s in quality["stations"])
    ds = ogr.Open(result["ARROWS"])             # keep the dataset alive while its layer is used
    layer = ds.GetLayer(0)
    assert layer.GetFeatureCount() > 10
    names = [layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(layer.GetLayerDefn().GetFieldCount())]
    assert {"east", "north", "up", "magnitude", "azimuth"} <= set(names)
    html = tmp_path / "quality.html"
    run_alg(ALG, {**base_params(scene, model_path, tmp_path / "enu_h.tif"), "QUALITY": str(html)})
    assert "LOS residual RMS" in html.read_text()


def test_a_model_with_a_std_head_gives_its_own_sigma_and_weighs_the_step_with_it(run_alg, scene, model_path,
                                                                                 tmp_path):
    """Without CONSISTENCY the std bands are the network's own sigma (the core's numbers, on the
    grid); with it, the QUALITY file says the network's sigma came from the std head."""
    import json

    from insar_gnss_3d.core import prepare
    from insar_gnss_3d.core.model import adapted_model
    from insar_gnss_3d.core.modelfile import load_model, save_model

    tiny, tiny_scene, _ = load_model(model_path)
    head_path = str(tmp_path / "head.pt")
    save_model(head_path, adapted_model(tiny, {"std_head": True}), tiny_scene, {"samples": 8, "epochs": 1})

    plain = tmp_path / "plain.tif"
    run_alg(ALG, {**base_params(scene, head_path, plain), "CONSISTENCY": False})
    assert_on_grid(str(plain), scene["INSAR_ASC"])
    bands = helpers.read_array(str(plain))[0]
    # the scene's grid is the working grid (UTM, the model's pixel): the core's numbers exactly
    grid = prepare.working_grid(scene["INSAR_ASC"], tiny_scene.pixel_m)
    prepared = prepare.prepare_scene(
        prepare.TrackSource("INSAR_ASC", (scene["INSAR_ASC"],), scene["LOS_ASC"]),
        prepare.TrackSource("INSAR_DESC", (scene["INSAR_DESC"],), scene["LOS_DESC"]), scene["DEM_OUT"],
        *gnss_arrays(scene["GNSS"], prepare.grid_epsg(grid)), tiny_scene, units="m", grid=grid)
    model, _, _ = load_model(head_path)
    mean, std = prepare.run_model(prepared, model, with_std=True)
    ok = np.isfinite(bands[3:])                                  # NoData where neither track has data
    assert np.isfinite(std)[ok].all() and ok.mean() > 0.5 and np.all(bands[3:][ok] > 0)
    np.testing.assert_allclose(bands[3:][ok], std[ok], rtol=1e-4)

    consistent, quality = tmp_path / "consistent.tif", tmp_path / "quality.json"
    run_alg(ALG, {**base_params(scene, head_path, consistent), "QUALITY": str(quality)})
    figures = json.loads(quality.read_text())
    assert figures["network_sigma_source"] == "std head" and all(v > 0 for v in figures["network_sigma_m"])


def test_the_fitted_source_lands_on_the_scenes_fault(qgis_process, scene, tmp_path):
    """qgis_process with SOURCE, the bundled model: the elastic source of the consistency step,
    written as a polygon in the working grid's UTM zone, matches synthesizescene's FAULT."""
    out, source = tmp_path / "src.tif", tmp_path / "source.gpkg"
    params = {**base_params(scene, "", out), "SOURCE": str(source)}
    params.pop("MODEL")
    args = ["run", f"insargnss3d:{ALG}", "--",
            *(f"{k}={v[0] if isinstance(v, list) else v}" for k, v in params.items())]
    code, _, text = qgis_process(args)
    assert code == 0, text

    def feature(path):
        ds = ogr.Open(str(path))
        layer = ds.GetLayer(0)
        assert layer.GetFeatureCount() == 1
        f = layer.GetNextFeature()
        srs = layer.GetSpatialRef()
        geometry = f.GetGeometryRef().Clone()
        return {k: f.GetField(k) for k in ("mw", "strike_deg", "dip_deg", "explained", "prior_share")
                if f.GetFieldIndex(k) >= 0}, geometry, srs

    fitted, fitted_geometry, fitted_srs = feature(source)
    truth, truth_geometry, truth_srs = feature(scene["FAULT"])
    truth_geometry.TransformTo(fitted_srs)
    assert abs(fitted["mw"] - truth["mw"]) < 0.3
    assert fitted["explained"] > 0.6 and 0 < fitted["prior_share"] <= 0.8
    assert fitted_geometry.Centroid().Distance(truth_geometry.Centroid()) < 10e3
    assert fitted_geometry.Intersection(truth_geometry).GetArea() > 0.5 * truth_geometry.GetArea()
