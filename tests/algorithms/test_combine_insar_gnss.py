"""insargnss3d:combineinsargnss (the joint least-squares peer) through processing.run and qgis_process.

The scene comes from ``insargnss3d:synthesizescene`` (64 km square, 1 km pixels, UTM 52N,
max displacement 0.5 m), as in ``test_extract_displacement.py``.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis.core import QgsProcessingException

H = __import__("importlib").util.spec_from_file_location(
    "helpers_scenes", Path(__file__).resolve().parents[1] / "helpers_scenes.py")
helpers = __import__("importlib").util.module_from_spec(H)
H.loader.exec_module(helpers)

ALG = "combineinsargnss"


@pytest.fixture(scope="module")
def scene(seed7_scene):
    """The shared synthesizescene scene (tests/conftest.py)."""
    return seed7_scene


def params(scene, out, **more):
    return {"INSAR_ASC": [scene["INSAR_ASC"]], "INSAR_DESC": [scene["INSAR_DESC"]],
            "LOS_ASC": scene["LOS_ASC"], "LOS_DESC": scene["LOS_DESC"], "INSAR_UNITS": "m",
            "GNSS": scene["GNSS"], "OUTPUT": str(out), **more}


def read(path):
    ds = gdal.Open(str(path))
    return np.stack([ds.GetRasterBand(b + 1).ReadAsArray().astype(np.float64) for b in range(ds.RasterCount)])


def rmse(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))


def test_joint_peer_beats_gnss_interpolation_and_reports_its_quality(run_alg, scene, tmp_path):
    out, quality = tmp_path / "joint.tif", tmp_path / "quality.json"
    result = run_alg(ALG, params(scene, out, QUALITY=str(quality)))
    assert result["OUTPUT"] == str(out) and result["QUALITY"] == str(quality)
    ds, ref = gdal.Open(str(out)), gdal.Open(scene["INSAR_ASC"])
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (ref.RasterXSize, ref.RasterYSize, 6)
    np.testing.assert_allclose(ds.GetGeoTransform(), ref.GetGeoTransform(), rtol=0, atol=1e-9)
    assert osr.SpatialReference(wkt=ds.GetProjection()).IsSame(osr.SpatialReference(wkt=ref.GetProjection()))
    assert [ds.GetRasterBand(b).GetDescription() for b in range(1, 7)] == [
        "east", "north", "up", "east_std", "north_std", "up_std"]
    joint, truth = read(out), read(scene["TRUTH"])
    itp_path = tmp_path / "itp.tif"
    run_alg("interpolategnss", {"GNSS": scene["GNSS"], "REFERENCE": scene["INSAR_ASC"],
                                "OUTPUT": str(itp_path)})
    itp = read(itp_path)
    scale = np.nanmax(np.abs(truth))
    assert scale > 0.1                                   # a clear signal
    errors = [rmse(joint[c], truth[c]) for c in range(3)]
    baseline = [rmse(itp[c], truth[c]) for c in range(3)]
    # east and up come from the tracks: better than the stations alone (up: 5x on this scene);
    # north comes from the bounded kriging prior, which the thin-plate spline may beat
    assert errors[0] < 0.85 * baseline[0] and errors[2] < 0.4 * baseline[2], (errors, baseline)
    assert errors[1] < 1.5 * baseline[1], (errors, baseline)
    std = joint[3:]
    assert np.all(std[np.isfinite(std)] > 0)
    # north (seen weakly by both tracks) is the least certain component
    assert np.nanmedian(std[1]) > np.nanmedian(std[0])
    q = json.loads(quality.read_text())
    used = [t for t in q["tracks"] if t["used"]]
    assert [t["parameter"] for t in used] == ["INSAR_ASC", "INSAR_DESC"]
    for t in used:
        assert 1e-4 < t["noise_m"] < 0.05
        assert t["los_residual_rms_m"] < 3 * t["noise_m"] + 0.005
        assert t["reference"]["method"] in ("offset+ramp", "offset")
    assert q["stations"] and all(len(s["residual_m"]) == 3 for s in q["stations"])
    assert q["time_function"] == "from the GNSS network"


def test_event_date_outside_the_window_is_refused_without_output(run_alg, scene, tmp_path):
    out = tmp_path / "bad.tif"
    with pytest.raises(QgsProcessingException, match="outside the window"):
        run_alg(ALG, params(scene, out, EVENT_DATE="2030-01-01"))
    assert not out.exists() and not (tmp_path / "bad.tif.part").exists()
    with pytest.raises(QgsProcessingException, match="YYYY-MM-DD"):
        run_alg(ALG, params(scene, out, EVENT_DATE="next tuesday"))
    with pytest.raises(QgsProcessingException, match="at least one InSAR track"):
        run_alg(ALG, {**params(scene, out), "INSAR_ASC": [], "INSAR_DESC": []})
    assert not out.exists()


def test_stations_without_a_displacement_over_the_window_are_refused_without_output(run_alg, scene, tmp_path):
    # one station with two days of data: near the scene and "observed", but with no solution
    # in the window's last days it has no net displacement, and without one the prior (and
    # so every pixel) would be NaN; this was once written silently as an all-NaN raster
    layer, first = helpers.write_first_days_of_one_station(scene["GNSS"], tmp_path / "two_days.gpkg")
    out = tmp_path / "nan.tif"
    with pytest.raises(QgsProcessingException, match=f"no station near the scene.*{first} \\(2 days\\)"):
        run_alg(ALG, {**params(scene, out, EVENT_DATE="2024-02-20"), "GNSS": layer})
    assert not out.exists() and not (tmp_path / "nan.tif.part").exists()


def test_through_qgis_process(qgis_process, scene, tmp_path):
    out = tmp_path / "cli.tif"
    args = ["run", f"insargnss3d:{ALG}", "--json", "--",
            f"INSAR_ASC={scene['INSAR_ASC']}", f"INSAR_DESC={scene['INSAR_DESC']}",
            f"LOS_ASC={scene['LOS_ASC']}", f"LOS_DESC={scene['LOS_DESC']}", "INSAR_UNITS=m",
            f"GNSS={scene['GNSS']}", f"OUTPUT={out}"]
    code, parsed, text = qgis_process(args)
    assert code == 0, text
    assert parsed["results"]["OUTPUT"] == str(out)
    joint, truth = read(out), read(scene["TRUTH"])
    assert joint.shape[0] == 6
    assert rmse(joint[2], truth[2]) < 0.1 * np.nanmax(np.abs(truth[2]))
