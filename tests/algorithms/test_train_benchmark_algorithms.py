"""trainmodel and benchmarkmodel through processing.run and the real qgis_process.

Training runs are tiny (32 x 32 scenes, 4 epochs, width 8, a few scenes): they check the
plumbing (files, report, cancel, resume, devices, DEM/STATIONS), not the skill.
"""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from osgeo import ogr, osr

from insar_gnss_3d.core.benchmark import COLUMNS, KYUSHU_DEM, METHODS
from insar_gnss_3d.core.modelfile import load_model


TINY = {"SAMPLES": 8, "EPOCHS": 2, "BATCH_SIZE": 4, "VALIDATION_SAMPLES": 4, "LEARNING_RATE": 3e-3,
        "SEED": 1, "DEVICE": "cpu", "SCENE_SIZE_PX": 32, "WIDTH": 8,
        "OPTIONS": json.dumps({"scene": {"model_epochs": 4, "max_stations": 12}})}


def _feedback(cancel_after=None):
    """A feedback that records messages and cancels after ``cancel_after`` progress reports."""
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.messages, self.reports = [], 0

        def pushInfo(self, text):  # noqa: N802
            self.messages.append(text)
            super().pushInfo(text)

        def pushWarning(self, text):  # noqa: N802
            self.messages.append(text)
            super().pushWarning(text)

        def setProgress(self, value):  # noqa: N802
            self.reports += 1
            if cancel_after is not None and self.reports >= cancel_after:
                self.cancel()
            super().setProgress(value)

    return Recorder()


def _check_model_file(path, size_px=32):
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "insar_gnss_3d-model"
    model, scene, meta = load_model(str(path))
    assert scene.size_px == size_px and scene.model_epochs == 4
    assert model.config.width == 8 and model.config.gnss_width == 8
    return meta


def _check_report(path):
    text = Path(path).read_text(encoding="utf-8")
    assert "data:image/png;base64," in text
    assert "parameters" in text and "MB" in text and "learning_rate" in text
    return text


def untrained_model(path):
    """A tiny untrained network (32 x 32 scenes, 4 epochs, width 8) saved as a model file."""
    from insar_gnss_3d.core.model import DualBranchNet, ModelConfig
    from insar_gnss_3d.core.modelfile import save_model
    from insar_gnss_3d.core.synthetic import SceneConfig

    scene = SceneConfig(size_px=32, model_epochs=4, max_stations=12)
    save_model(str(path), DualBranchNet(ModelConfig(epochs=4, width=8, gnss_width=8)), scene, {})
    return str(path)


# --------------------------------------------------------------------------- trainmodel


def test_trainmodel_writes_a_model_and_a_report(run_alg, tmp_path):
    out, report = tmp_path / "m.pt", tmp_path / "m.html"
    feedback = _feedback()
    result = run_alg("trainmodel", {**TINY, "OUTPUT": str(out), "REPORT": str(report)}, feedback=feedback)
    assert result["OUTPUT"] == str(out) and result["REPORT"] == str(report)
    meta = _check_model_file(out)
    assert meta["training"]["samples"] == 8 and meta["training"]["epochs"] == 2
    assert meta["history"]["epoch"] == [1, 2]
    for c in ("EAST", "NORTH", "UP"):
        assert -1.0 <= result[f"VAL_MSSIM_{c}"] <= 1.0
    assert "Gaussian NLL" not in _check_report(report)                          # no std head, no NLL panel
    assert not (tmp_path / "m.pt.checkpoints").exists()          # removed after success
    assert sum(m.startswith("epoch ") and ":" in m.split()[1] for m in feedback.messages) == 2
    assert any("Training on the CPU" in m for m in feedback.messages)


def test_trainmodel_cpu_bf16_and_mirror_twins_options(run_alg, tmp_path):
    from insar_gnss_3d.core.runtime import cpu_native_bf16

    feedback = _feedback()
    options = json.dumps({**json.loads(TINY["OPTIONS"]), "cpu_bf16": True, "mirror_twins": True})
    run_alg("trainmodel", {**TINY, "EPOCHS": 1, "OPTIONS": options, "OUTPUT": str(tmp_path / "m.pt"),
                           "REPORT": None}, feedback=feedback)
    precision = "bfloat16 autocast" if cpu_native_bf16() else "float32"
    assert any(f"{precision} training steps" in m for m in feedback.messages)
    meta = _check_model_file(tmp_path / "m.pt")
    assert meta["history"]["epoch"] == [1] and meta["training"]["mirror_twins"] is True
    state = torch.load(tmp_path / "m.pt", weights_only=True)["state_dict"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}


def test_trainmodel_cancel_keeps_the_checkpoint_writes_no_model_and_resumes(run_alg, tmp_path):
    from qgis.core import QgsProcessingException
    out = tmp_path / "c.pt"
    params = {**TINY, "OUTPUT": str(out), "REPORT": str(tmp_path / "c.html")}
    with pytest.raises(QgsProcessingException, match="checkpoint"):
        run_alg("trainmodel", params, feedback=_feedback(cancel_after=1))
    assert not out.exists() and not (tmp_path / "c.html").exists()
    assert (tmp_path / "c.pt.checkpoints" / "checkpoint_rank0.pt").exists()
    feedback = _feedback()
    run_alg("trainmodel", params, feedback=feedback)
    assert any(m.startswith("Resuming from the checkpoint") for m in feedback.messages)
    _check_model_file(out)


def test_trainmodel_other_recipe_does_not_resume_a_checkpoint(run_alg, tmp_path):
    from qgis.core import QgsProcessingException
    out = tmp_path / "r.pt"
    params = {**TINY, "EPOCHS": 1, "OUTPUT": str(out), "REPORT": None}
    with pytest.raises(QgsProcessingException):
        run_alg("trainmodel", params, feedback=_feedback(cancel_after=1))
    feedback = _feedback()
    run_alg("trainmodel", {**params, "SEED": 2}, feedback=feedback)
    assert any("another recipe" in m for m in feedback.messages)
    assert not any(m.startswith("Resuming") for m in feedback.messages)


def test_trainmodel_fine_tunes_an_init_model(run_alg, tmp_path):
    init = untrained_model(tmp_path / "init.pt")
    out = tmp_path / "ft.pt"
    params = {k: v for k, v in TINY.items() if k not in ("WIDTH", "OPTIONS", "SCENE_SIZE_PX")}
    run_alg("trainmodel", {**params, "EPOCHS": 1, "INIT_MODEL": init, "OUTPUT": str(out), "REPORT": None})
    meta = _check_model_file(out)
    assert meta["training"]["init_model"] == init


def test_trainmodel_says_a_trained_std_head_needs_calibrating(run_alg, tmp_path):
    init = untrained_model(tmp_path / "init.pt")
    out = tmp_path / "std.pt"
    params = {k: v for k, v in TINY.items() if k not in ("WIDTH", "OPTIONS", "SCENE_SIZE_PX")}
    feedback = _feedback()
    report = tmp_path / "std.html"
    run_alg("trainmodel", {**params, "EPOCHS": 1, "INIT_MODEL": init, "OPTIONS": '{"model": {"std_head": true}}',
                           "OUTPUT": str(out), "REPORT": str(report)}, feedback=feedback)
    assert load_model(str(out))[0].std_head is not None
    assert "std head&#x27;s Gaussian NLL per epoch" in _check_report(report)     # its own panel
    assert any("not calibrated yet" in m and "insar_gnss_3d.core.calibrate" in m for m in feedback.messages)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_trainmodel_cuda_without_gpu_is_a_clear_error(run_alg, tmp_path):
    from qgis.core import QgsProcessingException
    out = tmp_path / "g.pt"
    with pytest.raises(QgsProcessingException, match="DEVICE=cuda.*no CUDA GPU"):
        run_alg("trainmodel", {**TINY, "DEVICE": "cuda", "OUTPUT": str(out), "REPORT": str(tmp_path / "g.html")})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, message", [('{"scene": {"pixel_m": -1}}', "Unusable scene"),
                                              ('{"lr": 1}', "Unknown OPTIONS"),
                                              ("{not json", "not valid JSON"),
                                              ('{"mirror_twins": true, "threads": -1}', "threads = -1")])
def test_trainmodel_refuses_bad_options(run_alg, tmp_path, options, message):
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException, match=message):
        run_alg("trainmodel", {**TINY, "OPTIONS": options, "OUTPUT": str(tmp_path / "x.pt"), "REPORT": None})
    assert not (tmp_path / "x.pt").exists()


def _stations_gpkg(path):
    """Five GNSS stations in central Kyushu (lon/lat), with duplicate daily points."""
    driver = ogr.GetDriverByName("GPKG")
    ds = driver.CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    layer = ds.CreateLayer("stations", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("station", ogr.OFTString))
    for i, (lon, lat) in enumerate([(130.7, 32.8), (130.9, 32.9), (131.1, 33.0), (131.3, 32.7), (130.8, 33.2)]):
        for _ in range(2):          # a GNSS layer has one point per station and day
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("station", f"S{i}")
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(lon, lat)
            feature.SetGeometry(point)
            layer.CreateFeature(feature)
    ds = None
    return str(path)


def test_trainmodel_through_qgis_process_with_dem_and_stations(qgis_process, tmp_path):
    out, report = tmp_path / "cli.pt", tmp_path / "cli.html"
    stations = _stations_gpkg(tmp_path / "stations.gpkg")
    params = {**TINY, "EPOCHS": 1, "DEM": KYUSHU_DEM, "STATIONS": stations, "OUTPUT": str(out),
              "REPORT": str(report)}
    args = ["run", "insargnss3d:trainmodel", "--json", "--"] + [f"{k}={v}" for k, v in params.items()]
    _, result, text = qgis_process(args)
    assert result is not None, text
    assert result["results"]["OUTPUT"] == str(out)
    _check_model_file(out)
    page = _check_report(report)
    assert "user_stations" in page
    assert "GNSS network: 5 stations" in text and "DEM: " in text


def test_trainmodel_with_stations_only_centres_the_network(run_alg, tmp_path):
    feedback = _feedback()
    out = tmp_path / "st.pt"
    params = {**TINY, "EPOCHS": 1, "STATIONS": _stations_gpkg(tmp_path / "st.gpkg"), "OUTPUT": str(out),
              "REPORT": None}
    run_alg("trainmodel", params, feedback=feedback)
    assert "GNSS network: 5 stations from STATIONS." in feedback.messages
    _check_model_file(out)


# --------------------------------------------------------------------------- benchmarkmodel


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return untrained_model(tmp_path_factory.mktemp("benchmark") / "tiny.pt")


def _read_table(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_benchmarkmodel_writes_table_and_report(run_alg, tiny_model, tmp_path):
    table, report = tmp_path / "b.csv", tmp_path / "b.html"
    feedback = _feedback()
    result = run_alg("benchmarkmodel", {"MODEL": tiny_model, "SCENES": 2, "SEED": 4, "DEVICE": "cpu",
                                        "OUTPUT_TABLE": str(table), "REPORT": str(report)}, feedback=feedback)
    assert result["OUTPUT_TABLE"] == str(table) and result["REPORT"] == str(report)
    columns, rows = _read_table(table)
    assert tuple(columns) == COLUMNS
    assert len(rows) == 2 * 3 * len(METHODS)
    for scene in ("0", "1"):
        for comp in ("east", "north", "up"):
            methods = {r["method"] for r in rows if r["scene"] == scene and r["component"] == comp}
            assert methods == set(METHODS)
    for r in rows:
        if r["method"] == "decomposition" and r["component"] == "north":
            assert math.isnan(float(r["mssim"])) and math.isnan(float(r["rmse_m"]))
        if r["method"] == "cnn":
            assert math.isfinite(float(r["mssim"])) and float(r["rmse_m"]) >= 0
    page = report.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 2      # the mSSIM figure and an example
    assert "median mSSIM east" in page
    for c in ("EAST", "NORTH", "UP"):
        assert math.isfinite(result[f"CNN_MEDIAN_MSSIM_{c}"])
    assert sum(m.startswith("scene ") for m in feedback.messages) == 2


def test_benchmarkmodel_cancel_writes_nothing(run_alg, tiny_model, tmp_path):
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException, match="cancelled.*No file was written"):
        run_alg("benchmarkmodel", {"MODEL": tiny_model, "SCENES": 3, "SEED": 0, "DEVICE": "cpu",
                                   "OUTPUT_TABLE": str(tmp_path / "c.csv"), "REPORT": str(tmp_path / "c.html")},
                feedback=_feedback(cancel_after=1))
    assert list(tmp_path.iterdir()) == []


def test_benchmarkmodel_refuses_a_foreign_model_file(run_alg, tmp_path):
    from qgis.core import QgsProcessingException
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(QgsProcessingException, match="MODEL: .*not an InSAR-GNSS 3D model"):
        run_alg("benchmarkmodel", {"MODEL": str(foreign), "SCENES": 1, "SEED": 0, "DEVICE": "cpu",
                                   "OUTPUT_TABLE": str(tmp_path / "f.csv"), "REPORT": None})
    assert not (tmp_path / "f.csv").exists()


def test_benchmarkmodel_through_qgis_process_stress_recipe(qgis_process, tiny_model, tmp_path):
    table, report = tmp_path / "s.csv", tmp_path / "s.html"
    args = ["run", "insargnss3d:benchmarkmodel", "--json", "--", f"MODEL={tiny_model}", "SCENES=2", "SEED=1",
            "DEVICE=cpu", "RECIPE=stress", f"OUTPUT_TABLE={table}", f"REPORT={report}"]
    _, result, text = qgis_process(args)
    assert result is not None, text
    _, rows = _read_table(table)
    # stress: both tracks always present, so the decomposition scores east and up in every scene
    assert all(math.isfinite(float(r["mssim"])) for r in rows
               if r["method"] == "decomposition" and r["component"] != "north")
    assert "kyushu_srtm_500m.tif" in text
    assert "data:image/png;base64," in report.read_text(encoding="utf-8")
