"""PyTorch and friends for QGIS's own Python: what is missing, the pip command, the GUI installer.

QGIS ships no torch. The plugin keeps its own dependency folder ``deps/`` (first on
``sys.path``, see :func:`plugin.add_dependency_dir`) and fills it with QGIS's Python:

    <QGIS python> -m pip install --upgrade --target <plugin>/deps -r requirements-plugin.txt

:func:`missing_dependencies`, :func:`install_command` and :func:`interpret_pip_result` have
no GUI and are tested headless; :class:`DependencyInstaller` runs the command in a
``QProcess`` behind a progress dialog (desktop only).
"""

import importlib
import importlib.util
import os
import shlex
import shutil
import sys

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(PLUGIN_DIR, "requirements-plugin.txt")
#: Import names the CNN algorithms need beyond QGIS's Python.
REQUIRED_MODULES = ("torch",)
#: Words in pip's output that mean no package index could be reached.
OFFLINE_SIGNS = ("Failed to establish a new connection", "Temporary failure in name resolution",
                 "Could not find a version that satisfies", "No matching distribution found",
                 "Network is unreachable", "ConnectionError", "ProxyError", "Max retries exceeded",
                 "Name or service not known", "timed out")


def dependency_dir():
    """The plugin-owned folder pip fills (``<plugin>/deps``)."""
    from .plugin import DEPENDENCY_DIR
    return DEPENDENCY_DIR


def missing_dependencies():
    """Import names of :data:`REQUIRED_MODULES` that QGIS's Python cannot find (nothing imported)."""
    from .plugin import add_dependency_dir
    add_dependency_dir()
    importlib.invalidate_caches()
    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def qgis_python():
    """Path of the Python interpreter QGIS runs (``sys.executable`` is QGIS itself in the desktop).

    Looked for beside the running Python's prefix first (Windows OSGeo4W, macOS bundles),
    then on PATH as ``pythonX.Y`` of the running version, then ``python3``.
    """
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if os.path.basename(sys.executable or "").lower().startswith("python"):
        return sys.executable
    names = (f"python{version}", "python3", "python", "python3.exe", "python.exe")
    for prefix in (sys.exec_prefix, sys.base_exec_prefix):
        for folder in (os.path.join(prefix, "bin"), prefix, os.path.join(prefix, "Scripts")):
            for name in names:
                path = os.path.join(folder, name)
                if os.path.isfile(path) and os.access(path, os.X_OK):
                    return path
    for name in (f"python{version}", "python3", "python"):
        path = shutil.which(name)
        if path:
            return path
    return "python3"


def install_command(python=None, target=None, requirements=REQUIREMENTS):
    """The pip command line (a list) that fills the dependency folder."""
    return [python or qgis_python(), "-m", "pip", "install", "--upgrade", "--disable-pip-version-check",
            "--target", target or dependency_dir(), "-r", requirements]


def command_text(command):
    """The command as one line to paste into a shell."""
    return shlex.join(command) if hasattr(shlex, "join") else " ".join(shlex.quote(c) for c in command)


def missing_message(missing, command=None):
    """Sentence for ``canExecute``: what is missing and the two ways to install it."""
    return (f"This algorithm needs {', '.join(missing)}, which QGIS's Python does not have. Install it "
            "from the menu Plugins > InSAR-GNSS 3D > Install PyTorch (needs internet; about 200 MB), "
            f"or run:\n  {command_text(command or install_command())}\nthen restart QGIS.")


def interpret_pip_result(exit_code, output, command):
    """``(ok, message)`` for the user after pip ran with ``exit_code`` and printed ``output``."""
    if exit_code == 0:
        return True, ("PyTorch and its companions are installed in the plugin's dependency folder "
                      f"({command[command.index('--target') + 1]}). Restart QGIS to use the CNN algorithms.")
    text = command_text(command)
    if any(sign in output for sign in OFFLINE_SIGNS):
        return False, ("No Python package index could be reached (offline, or a proxy/firewall in the "
                       "way). On a machine with internet, or once connected, run this command with QGIS's "
                       f"Python:\n  {text}\nOffline: download the wheels elsewhere with 'pip download -r "
                       "requirements-plugin.txt -d wheels', copy the folder here and add "
                       "'--no-index --find-links wheels' to the command.")
    tail = "\n".join(output.strip().splitlines()[-8:])
    return False, (f"pip stopped with exit code {exit_code}. Its last lines:\n{tail}\n"
                   f"The command was:\n  {text}")


class DependencyInstaller:
    """Runs :func:`install_command` in a QProcess behind a progress dialog (desktop only)."""

    def __init__(self, parent=None):
        self.parent = parent
        self.process = None
        self.dialog = None
        self.output = []
        self.command = install_command()

    def start(self):
        """Start pip; returns at once (the dialog shows progress, a message box the outcome)."""
        from qgis.PyQt.QtCore import QProcess
        from qgis.PyQt.QtWidgets import QProgressDialog
        os.makedirs(self.command[self.command.index("--target") + 1], exist_ok=True)
        self.dialog = QProgressDialog("Installing PyTorch into the plugin's dependency folder...",
                                      "Cancel", 0, 0, self.parent)
        self.dialog.setWindowTitle("InSAR-GNSS 3D: installing dependencies")
        self.dialog.setMinimumDuration(0)
        self.dialog.canceled.connect(self.cancel)
        self.process = QProcess()
        self.process.setProcessChannelMode(QProcess.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)
        self.process.start(self.command[0], self.command[1:])
        self.dialog.show()

    def cancel(self):
        """Stop pip (the folder may hold a partial install; running again repairs it)."""
        if self.process is not None:
            self.process.kill()

    def _read(self):
        text = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        self.output.append(text)
        lines = [line for line in text.splitlines() if line.strip()]
        if lines and self.dialog is not None:
            self.dialog.setLabelText(f"Installing PyTorch...\n{lines[-1][:100]}")

    def _error(self, error):
        from qgis.PyQt.QtCore import QProcess
        if error == QProcess.FailedToStart:
            self._show(False, f"QGIS's Python could not be started ({self.command[0]}). Run this in a "
                              f"terminal:\n  {command_text(self.command)}")

    def _finished(self, exit_code, _status):
        ok, message = interpret_pip_result(exit_code, "".join(self.output), self.command)
        self._show(ok, message)

    def _show(self, ok, message):
        from qgis.PyQt.QtWidgets import QMessageBox
        if self.dialog is not None:
            self.dialog.reset()
            self.dialog = None
        box = QMessageBox.information if ok else QMessageBox.warning
        box(self.parent, "InSAR-GNSS 3D", message)
