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
    except Exception:  # recorded for the test, never a hung QGIS
        result["errors"].append(traceback.format_exc())
    _finish()


QTimer.singleShot(3000, check)
