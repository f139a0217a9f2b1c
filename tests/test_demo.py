"""scripts/demo.py in quick mode with a tiny model: every stage's files, the numbers, the report.

The demo drives ``build/bin/qgis_process`` as a user would, so this is also the end-to-end
test of the plugin's algorithms working together. The tiny model is trained here for a few
seconds: the test checks the pipeline, not the CNN's skill.
"""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "scripts" / "demo.py"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load("helpers_scenes", REPO / "tests" / "helpers_scenes.py")
demo = _load("demo", DEMO)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Run the quick demo once; returns (completed process, output folder)."""
    folder = tmp_path_factory.mktemp("demo")
    model = helpers.train_tiny_model(folder / "tiny.pt")
    out = folder / "out"
    proc = subprocess.run([sys.executable, str(DEMO), "--quick", "--model", model, "--device", "cpu",
                           "--output", str(out)], capture_output=True, text=True, timeout=1200)
    return proc, out


def read(path):
    ds = gdal.Open(str(path))
    assert ds is not None, path
    return ds


@pytest.mark.slow
def test_quick_demo_runs_every_stage(quick_run):
    proc, out = quick_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    paths = demo.output_paths(out)
    # 1 synthesizescene: the scene's layers on one grid
    truth = read(paths["TRUTH"])
    size = (truth.RasterXSize, truth.RasterYSize)
    assert size == (40, 40)            # --quick: 40 km at 1 km
    for key in ("INSAR_ASC", "INSAR_DESC"):
        assert read(paths[key]).RasterCount >= 2
    for key in ("LOS_ASC", "LOS_DESC", "TRUTH"):
        assert read(paths[key]).RasterCount == 3
    assert read(paths["DEM_OUT"]).RasterCount == 1
    assert ogr.Open(str(paths["GNSS"])).GetLayer(0).GetFeatureCount() > 100
    assert ogr.Open(str(paths["FAULT"])).GetLayer(0).GetFeatureCount() == 1
    np.testing.assert_allclose(np.nanmax(np.abs(truth.ReadAsArray())), demo.MAX_DISPLACEMENT_M, rtol=1e-3)
    # 2-4 the four methods, on the truth's grid, bands east north up
    for key in ("cnn", "decomposition", "interpolation", "joint"):
        ds = read(paths[key])
        assert (ds.RasterXSize, ds.RasterYSize) == size
        assert [ds.GetRasterBand(b).GetDescription() for b in (1, 2, 3)] == ["east", "north", "up"]
        np.testing.assert_allclose(ds.GetGeoTransform(), truth.GetGeoTransform(), rtol=0, atol=1e-6)
    assert np.isnan(read(paths["decomposition"]).GetRasterBand(2).ReadAsArray()).all()
    # 5 one evaluation report per method; every stage logged
    for key in ("cnn", "decomposition", "interpolation", "joint"):
        assert "mSSIM" in paths[f"evaluation_{key}"].read_text(encoding="utf-8")
    logs = sorted(p.name for p in paths["logs"].glob("*.log"))
    assert len(logs) == 9, logs


@pytest.mark.slow
def test_quick_demo_numbers_and_report(quick_run):
    proc, out = quick_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    scores = summary["scores"]
    assert set(scores) == {"cnn", "decomposition", "interpolation", "joint"}
    for method, expect_north in (("cnn", True), ("decomposition", False), ("interpolation", True),
                                 ("joint", True)):
        for c in ("EAST", "NORTH", "UP"):
            mssim, rmse = scores[method][f"MSSIM_{c}"], scores[method][f"RMSE_{c}"]
            if c == "NORTH" and not expect_north:
                assert math.isnan(mssim) and math.isnan(rmse)   # north is not resolved
                continue
            assert -1.0 <= mssim <= 1.0, (method, c, mssim)
            assert 0.0 <= rmse < 10.0, (method, c, rmse)
    assert summary["model"].endswith("tiny.pt") and summary["quick"] is True
    # the printed table carries the same numbers
    assert f"{scores['interpolation']['MSSIM_UP']:.3f}" in proc.stdout
    assert str(out / "report.html") in proc.stdout

    report = (out / "report.html").read_text(encoding="utf-8")
    for text in ("CNN (extractdisplacement)", "asc/desc decomposition (decomposelos)",
                 "GNSS interpolation (interpolategnss)", "joint least squares (combineinsargnss)",
                 "mSSIM east", "RMSE up [mm]",
                 "data:image/png;base64,", 'href="evaluation_cnn.html"', "Mw "):
        assert text in report, text
    assert f"{scores['cnn']['MSSIM_EAST']:.3f}" in report


def test_without_the_bundled_model_the_demo_says_so(tmp_path):
    missing = tmp_path / "insar_gnss_3d.pt"
    with pytest.raises(SystemExit) as info:
        demo.choose_model(None, bundled=missing)
    assert "does not exist yet" in str(info.value) and "--model" in str(info.value)
    with pytest.raises(SystemExit, match="does not exist"):
        demo.choose_model(str(tmp_path / "nowhere.pt"))
    given = tmp_path / "given.pt"
    given.write_bytes(b"")
    assert demo.choose_model(str(given), bundled=missing) == given.resolve()


def test_the_demo_exits_non_zero_without_a_model(tmp_path):
    if demo.BUNDLED_MODEL.is_file():
        pytest.skip("the bundled model exists")
    proc = subprocess.run([sys.executable, str(DEMO), "--quick", "--output", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "bundled model" in proc.stderr and "does not exist yet" in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_failing_stage_names_itself_and_its_log(tmp_path):
    bad = tmp_path / "not_a_model.pt"
    bad.write_bytes(b"certainly not a model")
    out = tmp_path / "o"
    proc = subprocess.run([sys.executable, str(DEMO), "--quick", "--model", str(bad), "--device", "cpu",
                           "--output", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    assert "extractdisplacement (insargnss3d:extractdisplacement) failed" in proc.stderr
    assert str(out / "logs" / "2 extractdisplacement.log") in proc.stderr
    assert not (out / "report.html").exists()
