"""Output locations are checked before any work, in a sentence naming the parameter (issue 14).

Tests run as root here, so "read-only" is a folder no one can write in (``/proc``) or a
folder that cannot be created (its parent is a file); a real write decides, not ``os.access``.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from insar_gnss_3d.core.geometry import Grid
from insar_gnss_3d.core.raster import crs_wkt_from_epsg, write_raster

GRID = Grid(600e3, 3650e3, 1000.0, 24, 20, crs_wkt_from_epsg(32652))
UNWRITABLE = "/proc"       # /proc refuses new files, even to root
TINY = {"SAMPLES": 4, "EPOCHS": 1, "BATCH_SIZE": 4, "VALIDATION_SAMPLES": 2, "SEED": 1, "DEVICE": "cpu",
        "SCENE_SIZE_PX": 32, "WIDTH": 8,
        "OPTIONS": json.dumps({"scene": {"model_epochs": 4, "max_stations": 12}})}


@pytest.fixture
def pair(tmp_path):
    """A 3-band truth and a prediction differing by 1 mm east."""
    rng = np.random.default_rng(0)
    truth = rng.normal(0.0, 0.05, (3, GRID.height, GRID.width))
    pred = truth + np.array([1e-3, 0.0, 0.0])[:, None, None]
    paths = tmp_path / "truth.tif", tmp_path / "pred.tif"
    write_raster(str(paths[0]), GRID, truth, ("east", "north", "up"))
    write_raster(str(paths[1]), GRID, pred, ("east", "north", "up"))
    return {"TRUTH": str(paths[0]), "PREDICTION": str(paths[1])}


def _blocked(tmp_path):
    """A folder path that cannot be created: its parent is a regular file."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    return blocker / "sub"


def test_evaluate_report_in_a_new_folder_is_created(run_alg, pair, tmp_path):
    report = tmp_path / "new" / "deeper" / "evaluation.html"
    result = run_alg("evaluatedisplacement", {**pair, "REPORT": str(report)})
    assert result["REPORT"] == str(report)
    assert "<img" in report.read_text(encoding="utf-8")
    assert not list(report.parent.glob("*.part"))
    assert result["RMSE_EAST"] == pytest.approx(1e-3, rel=1e-4)


@pytest.mark.parametrize("where", ["blocked", "unwritable"])
def test_evaluate_refuses_a_report_location_in_words(run_alg, pair, tmp_path, where):
    from qgis.core import QgsProcessingException
    folder = _blocked(tmp_path) if where == "blocked" else UNWRITABLE
    with pytest.raises(QgsProcessingException, match=r"^REPORT: .*(cannot be created|cannot write)"):
        run_alg("evaluatedisplacement", {**pair, "REPORT": f"{folder}/e.html"})


def test_okada_refuses_an_unwritable_output_before_computing(run_alg):
    from qgis.core import QgsProcessingException
    params = {"FAULT_POINT": "131.0,32.5 [EPSG:4326]", "DEPTH_KM": 5, "STRIKE": 200, "DIP": 15,
              "LENGTH_KM": 40, "WIDTH_KM": 25, "RAKE": 90, "SLIP_M": 1,
              "EXTENT": "130.9,131.1,32.4,32.6 [EPSG:4326]", "PIXEL_SIZE": 2000,
              "OUTPUT": f"{UNWRITABLE}/okada.tif"}
    with pytest.raises(QgsProcessingException, match=r"^OUTPUT: cannot write in the folder /proc"):
        run_alg("okadadisplacement", params)


def test_trainmodel_checks_report_and_output_before_training(run_alg, tmp_path):
    """A bad REPORT used to fail only after training (the model written, then a traceback)."""
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    out = tmp_path / "m.pt"
    messages = []

    class Feedback(QgsProcessingFeedback):
        def pushInfo(self, text):  # noqa: N802
            messages.append(text)

    with pytest.raises(QgsProcessingException, match=r"^REPORT: .*cannot be created"):
        run_alg("trainmodel", {**TINY, "OUTPUT": str(out), "REPORT": f"{_blocked(tmp_path)}/r.html"},
                feedback=Feedback())
    assert not out.exists() and not (tmp_path / "m.pt.checkpoints").exists()
    assert not any(m.startswith("epoch") for m in messages)          # nothing trained
    with pytest.raises(QgsProcessingException, match=r"^OUTPUT: cannot write in the folder /proc"):
        run_alg("trainmodel", {**TINY, "OUTPUT": f"{UNWRITABLE}/m.pt", "REPORT": str(tmp_path / "r.html")})
    assert not (tmp_path / "r.html").exists()


def test_no_html_claim_after_a_cancel(run_alg, provider, pair, tmp_path):
    """QGIS's dialog says "HTML output has been generated" when hasHtmlOutputs() is true."""
    from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingFeedback

    def fresh(alg_id):       # the dialog asks a fresh instance, not the one that ran
        return QgsApplication.processingRegistry().createAlgorithmById(f"insargnss3d:{alg_id}")

    class CancelAtOnce(QgsProcessingFeedback):
        def setProgress(self, value):  # noqa: N802
            self.cancel()
            super().setProgress(value)

    with pytest.raises(QgsProcessingException):
        run_alg("trainmodel", {**TINY, "SAMPLES": 8, "OUTPUT": str(tmp_path / "c.pt"),
                               "REPORT": str(tmp_path / "c.html")},
                feedback=CancelAtOnce())
    assert not (tmp_path / "c.html").exists()
    assert fresh("trainmodel").hasHtmlOutputs() is False
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_alg("evaluatedisplacement", {**pair, "REPORT": str(tmp_path / "e.html")}, feedback=CancelAtOnce())
    assert fresh("evaluatedisplacement").hasHtmlOutputs() is False
    result = run_alg("evaluatedisplacement", {**pair, "REPORT": str(tmp_path / "e.html")})
    assert result["REPORT"] and fresh("evaluatedisplacement").hasHtmlOutputs() is True


def test_vector_and_scene_outputs_are_checked_first(run_alg, tmp_path):
    from qgis.core import QgsProcessingException
    tenv3 = str(Path(__file__).resolve().parents[2] / "resources" / "gnss" / "MANE_2018.tenv3")
    with pytest.raises(QgsProcessingException, match=r"^OUTPUT: cannot write in the folder /proc"):
        run_alg("importgnss", {"FILES": [tenv3], "OUTPUT": f"{UNWRITABLE}/g.gpkg"})
    assert run_alg("importgnss", {"FILES": [tenv3], "OUTPUT": "TEMPORARY_OUTPUT"})["OUTPUT"]
    keys = ("INSAR_ASC", "INSAR_DESC", "LOS_ASC", "LOS_DESC", "DEM_OUT", "TRUTH")
    params = {"SEED": 3, "PIXEL_SIZE": 4000, **{k: str(tmp_path / f"{k}.tif") for k in keys},
              "GNSS": str(tmp_path / "g.gpkg"), "FAULT": f"{_blocked(tmp_path)}/fault.gpkg"}
    with pytest.raises(QgsProcessingException, match=r"^FAULT: the folder .* cannot be created"):
        run_alg("synthesizescene", params)
    assert not any(tmp_path.glob("*.tif"))                  # refused before the first raster
