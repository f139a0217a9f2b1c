"""Installing PyTorch from the GUI, tested headless: the pip command and canExecute (issue 14)."""

import subprocess
import sys

from insar_gnss_3d import dependencies
from insar_gnss_3d.plugin import DEPENDENCY_DIR


def test_install_command_uses_qgis_python_the_plugin_folder_and_the_pinned_requirements():
    command = dependencies.install_command()
    python = command[0]
    assert command[1:5] == ["-m", "pip", "install", "--upgrade"]
    assert command[command.index("--target") + 1] == DEPENDENCY_DIR
    requirements = command[command.index("-r") + 1]
    assert "torch==2.13.0" in open(requirements, encoding="utf-8").read()
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert version == str(tuple(sys.version_info[:2]))      # the same Python as the one running QGIS


def test_pip_without_a_package_index_gets_the_offline_message_with_the_exact_command(tmp_path):
    requirements = tmp_path / "req.txt"
    requirements.write_text("torch==2.13.0\n")
    command = dependencies.install_command(target=str(tmp_path / "deps"), requirements=str(requirements))
    proc = subprocess.run(command + ["--no-index"], capture_output=True, text=True, timeout=120)
    ok, message = dependencies.interpret_pip_result(proc.returncode, proc.stdout + proc.stderr, command)
    assert not ok and "No Python package index could be reached" in message
    assert dependencies.command_text(command) in message
    ok, message = dependencies.interpret_pip_result(0, "Successfully installed torch", command)
    assert ok and "Restart QGIS" in message


def test_can_execute_says_what_is_missing_before_run(provider, monkeypatch):
    from qgis.core import QgsApplication

    def alg(name):
        return QgsApplication.processingRegistry().createAlgorithmById(f"insargnss3d:{name}")

    assert alg("extractdisplacement").canExecute() == (True, "")          # torch is in this venv
    monkeypatch.setattr(dependencies, "missing_dependencies", lambda: ["torch"])
    for name in ("extractdisplacement", "trainmodel", "synthesizescene", "benchmarkmodel"):
        ok, message = alg(name).canExecute()
        assert not ok and message.startswith("This algorithm needs torch")
        assert "Plugins > InSAR-GNSS 3D > Install PyTorch" in message
        assert dependencies.command_text(dependencies.install_command()) in message
    assert alg("decomposelos").canExecute() == (True, "")                 # numpy and GDAL only
