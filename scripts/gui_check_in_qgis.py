"""Run inside the QGIS desktop (``qgis --code``) by ``scripts/gui_check.sh``: a GUI smoke test.

Opens the extractdisplacement and trainmodel dialogs (screenshots), runs okadadisplacement
from its dialog as a user pressing Run would, screenshots the log, writes ``result.json``
and quits QGIS. Output folder: ``$GUI_CHECK_OUT``.
"""

import json
import os
import time
import traceback

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication

OUT = os.environ["GUI_CHECK_OUT"]
result = {"dialogs": {}, "run": {}, "errors": []}


def _wait(seconds, until=lambda: False):
    end = time.time() + seconds
    while time.time() < end and not until():
        QApplication.processEvents()
        time.sleep(0.05)


def _log(dialog, text_edit_class):
    return "\n".join(w.toPlainText() for w in dialog.findChildren(text_edit_class))


def _one_band(path, like):
    from osgeo import gdal
    gdal.Translate(path, like, bandList=[1])


def _finish():
    with open(os.path.join(OUT, "result.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    QgsApplication.exit(0)


def check():
    """The steps; every failure is recorded, QGIS always quits."""
    try:
        import processing
        from qgis.utils import plugins
        result["plugin_loaded"] = "insar_gnss_3d" in plugins
        for alg in ("extractdisplacement", "trainmodel"):
            dialog = processing.createAlgorithmDialog(f"insargnss3d:{alg}")
            dialog.resize(900, 800)
            dialog.show()
            _wait(1.0)
            path = os.path.join(OUT, f"{alg}_dialog.png")
            dialog.grab().save(path)
            definitions = dialog.algorithm().parameterDefinitions()
            result["dialogs"][alg] = {"screenshot": path, "title": dialog.windowTitle(),
                                      "parameters": [d.name() for d in definitions]}
            dialog.close()
        output = os.path.join(OUT, "okada_from_dialog.tif")
        dialog = processing.createAlgorithmDialog("insargnss3d:okadadisplacement", {
            "FAULT_POINT": "131.0,32.5 [EPSG:4326]", "DEPTH_KM": 5, "STRIKE": 200, "DIP": 15, "LENGTH_KM": 40,
            "WIDTH_KM": 25, "RAKE": 90, "SLIP_M": 1, "EXTENT": "130.8,131.2,32.3,32.7 [EPSG:4326]",
            "PIXEL_SIZE": 2000, "OUTPUT": output})
        dialog.resize(900, 800)
        dialog.show()
        _wait(0.5)
        dialog.runAlgorithm()                      # what the Run button does
        _wait(120, lambda: dialog.wasExecuted())
        _wait(1.0)
        dialog.grab().save(os.path.join(OUT, "okadadisplacement_log.png"))
        result["run"] = {"executed": bool(dialog.wasExecuted()), "output_exists": os.path.exists(output),
                         "results": {k: str(v) for k, v in (dialog.results() or {}).items()}}
        dialog.close()
        # a failed run (a 1-band PREDICTION) must not claim "HTML output has been generated"
        from qgis.PyQt.QtWidgets import QTextEdit
        dialog = processing.createAlgorithmDialog("insargnss3d:evaluatedisplacement", {
            "PREDICTION": os.path.join(OUT, "one_band.tif"), "TRUTH": output,
            "REPORT": os.path.join(OUT, "never.html")})
        _one_band(os.path.join(OUT, "one_band.tif"), output)
        dialog.show()
        dialog.runAlgorithm()
        _wait(60, lambda: "failed" in _log(dialog, QTextEdit) or "HTML output" in _log(dialog, QTextEdit))
        _wait(1.0)
        log = _log(dialog, QTextEdit)
        result["failed_run"] = {"failed": "failed" in log, "claims_html": "HTML output has been generated" in log,
                                "report_written": os.path.exists(os.path.join(OUT, "never.html"))}
        dialog.grab().save(os.path.join(OUT, "evaluatedisplacement_failed.png"))
        dialog.close()
    except Exception:  # recorded for the test, never a hung QGIS
        result["errors"].append(traceback.format_exc())
    _finish()


QTimer.singleShot(3000, check)
