"""core/ never imports qgis: every module imports in a Python where qgis and PyQt cannot."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLOCKED = ("qgis", "PyQt5", "PyQt6", "sip", "processing")

_CHILD = r"""
import importlib, json, sys, traceback
for name in {blocked!r}:
    sys.modules[name] = None      # any "import qgis..." now raises ImportError
sys.path.insert(0, {plugins!r})
failures = {{}}
for module in {modules!r}:
    try:
        importlib.import_module("insar_gnss_3d.core." + module)
    except BaseException:
        failures[module] = traceback.format_exc(limit=-3)
print(json.dumps(failures))
"""


def test_every_core_module_imports_without_qgis():
    modules = sorted(p.stem for p in (REPO / "core").glob("*.py") if p.stem != "__init__")
    assert "okada" in modules
    code = _CHILD.format(blocked=BLOCKED, plugins=str(REPO / "build" / "plugins"),
                         modules=modules)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failures, "\n".join(f"core.{m}:\n{tb}" for m, tb in failures.items())
