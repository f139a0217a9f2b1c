"""Shared fixtures: the plugin's provider inside pytest-qgis, and a real qgis_process runner."""

import json
import os
import subprocess
from pathlib import Path

import sys

import pytest

REPO = Path(__file__).resolve().parents[1]
QGIS_PROCESS = REPO / "build" / "bin" / "qgis_process"
# `make test` sets PYTHONPATH=build/plugins; this lets a bare `pytest` work as well.
if str(REPO / "build" / "plugins") not in sys.path:
    sys.path.insert(0, str(REPO / "build" / "plugins"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def provider(qgis_app, qgis_processing):
    """The insargnss3d provider registered in the test QGIS application."""
    from qgis.core import QgsApplication
    from insar_gnss_3d.algorithms.provider import InsarGnss3dProvider

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("insargnss3d")
    if existing is not None:
        return existing
    prov = InsarGnss3dProvider()
    assert registry.addProvider(prov)
    return prov


@pytest.fixture
def run_alg(provider):
    """Run an algorithm through processing.run; returns its result dict."""
    import processing

    def run(alg_id, params, context=None, feedback=None):
        return processing.run(f"insargnss3d:{alg_id}", params, context=context, feedback=feedback)

    return run


def run_qgis_process(args, check=True, timeout=600):
    """Run build/bin/qgis_process with ``args``; returns (returncode, parsed JSON or None, stderr+stdout)."""
    env = dict(os.environ)
    proc = subprocess.run([str(QGIS_PROCESS), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    parsed = None
    if "--json" in args:
        try:
            start = proc.stdout.index("{")
            parsed = json.loads(proc.stdout[start:])
        except ValueError:
            parsed = None
    if check and proc.returncode != 0:
        raise AssertionError(f"qgis_process failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, parsed, proc.stdout + proc.stderr


@pytest.fixture
def qgis_process():
    """Callable running the real qgis_process.bin with the plugin enabled."""
    return run_qgis_process


#: The synthesizescene scene the extraction and joint-peer tests share (UTM 52N, 64 km).
SEED7_EXTENT = "600000,664000,3596000,3660000 [EPSG:32652]"


@pytest.fixture(scope="session")
def seed7_scene(provider, tmp_path_factory):
    """One scene written by synthesizescene (processing.run) in the plugin's own grid: paths by output."""
    import processing

    folder = tmp_path_factory.mktemp("seed7_scene")
    params = {"SEED": 7, "EXTENT": SEED7_EXTENT, "PIXEL_SIZE": 1000.0, "MAX_DISPLACEMENT_M": 0.5,
              "START_DATE": "2024-01-01"}
    outputs = {k: str(folder / f"{k.lower()}.tif") for k in
               ("INSAR_ASC", "INSAR_DESC", "LOS_ASC", "LOS_DESC", "DEM_OUT", "TRUTH")}
    outputs["GNSS"] = str(folder / "gnss.gpkg")
    outputs["FAULT"] = str(folder / "fault.gpkg")
    result = processing.run("insargnss3d:synthesizescene", {**params, **outputs})
    return {k: result[k] for k in outputs}
