"""Plugin object: registers the Processing provider (also headless, with iface = None)."""

import os
import sys

from qgis.core import QgsApplication

#: Plugins menu entry of the plugin's actions.
MENU = "InSAR-GNSS 3D"
#: QgsSettings key: the one-time offer to install PyTorch was made.
OFFERED_KEY = "insar_gnss_3d/dependencies_offered"

#: Folder filled by ``make deploy`` (``pip install --target``) with torch and friends,
#: for QGIS installations whose Python has no torch.
DEPENDENCY_DIR = os.path.join(os.path.dirname(__file__), "deps")


def add_dependency_dir():
    """Put the plugin-owned dependency folder first on sys.path when it exists.

    First, because torch needs newer helpers (sympy, ...) than a distribution's Python may
    hold; the folder was filled against QGIS's own Python by ``make deploy``.
    """
    if os.path.isdir(DEPENDENCY_DIR) and DEPENDENCY_DIR not in sys.path:
        sys.path.insert(0, DEPENDENCY_DIR)


#: GDAL messages QGIS provokes while loading our inputs in qgis_process and that mean nothing
#: to the user: the histogram of a constant band (the first epoch of a cumulative series).
_QUIET_GDAL_MESSAGES = ("dfMax should be strictly greater than dfMin",)


def _gdal_error_handler(err_class, err_no, message):
    """GDAL's default output, less :data:`_QUIET_GDAL_MESSAGES`."""
    if any(text in message for text in _QUIET_GDAL_MESSAGES):
        return
    from osgeo import gdal
    prefix = {gdal.CE_Warning: "Warning", gdal.CE_Failure: "ERROR", gdal.CE_Fatal: "FATAL"}.get(err_class)
    if prefix is not None:
        sys.stderr.write(f"{prefix} {err_no}: {message}\n")


def quiet_gdal_in_qgis_process():
    """In qgis_process: no ``*.aux.xml`` beside the user's inputs, no histogram noise.

    qgis_process loads every input raster as a layer, and QGIS's default renderer computes
    statistics and a histogram for it: GDAL then saves them in ``<input>.aux.xml`` beside
    the user's file and, for a constant band, prints ``ERROR 5: ... dfMax should be strictly
    greater than dfMin``. Only in qgis_process (one command, one process): the desktop keeps
    GDAL's defaults. Returns whether it applied.
    """
    if QgsApplication.instance() is None or QgsApplication.platform() != "qgis_process":
        return False
    from osgeo import gdal
    gdal.SetConfigOption("GDAL_PAM_ENABLED", "NO")
    gdal.PushErrorHandler(_gdal_error_handler)      # this thread's: where qgis_process loads layers
    return True


class InsarGnss3dPlugin:
    """Registers and removes the ``insargnss3d`` Processing provider."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802
        """Register the provider (called by qgis_process too)."""
        from .algorithms.provider import InsarGnss3dProvider
        add_dependency_dir()
        quiet_gdal_in_qgis_process()
        if self.provider is None:
            self.provider = InsarGnss3dProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        """Desktop start-up: the provider, a menu action that installs PyTorch, a first-run offer.

        The offer is made once (a QgsSettings flag), only when torch is missing.
        """
        self.initProcessing()
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction
        self.install_action = QAction(QIcon(os.path.join(os.path.dirname(__file__), "resources", "icon.svg")),
                                      "Install PyTorch (dependencies of the CNN algorithms)...",
                                      self.iface.mainWindow())
        self.install_action.triggered.connect(self.install_dependencies)
        self.iface.addPluginToMenu(MENU, self.install_action)
        from qgis.PyQt.QtCore import QTimer
        QTimer.singleShot(3000, self.offer_dependencies)     # once QGIS's window is up

    def offer_dependencies(self):
        """First run without torch: ask once whether to install it now."""
        from qgis.core import QgsSettings
        from .dependencies import command_text, install_command, missing_dependencies
        settings = QgsSettings()
        if settings.value(OFFERED_KEY, False, type=bool) or not missing_dependencies():
            return
        settings.setValue(OFFERED_KEY, True)
        from qgis.PyQt.QtWidgets import QMessageBox
        answer = QMessageBox.question(
            self.iface.mainWindow(), "InSAR-GNSS 3D",
            "The CNN algorithms (extract, synthesize, train, benchmark) need PyTorch, which QGIS does "
            "not include. Install it now into the plugin's folder (internet needed, about 200 MB)?\n\n"
            f"The command:\n{command_text(install_command())}\n\nLater: Plugins > {MENU} > Install PyTorch.",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes)
        if answer == QMessageBox.Yes:
            self.install_dependencies()

    def install_dependencies(self):
        """Run pip with QGIS's Python behind a progress dialog."""
        from .dependencies import DependencyInstaller
        self.installer = DependencyInstaller(self.iface.mainWindow())
        self.installer.start()

    def unload(self):
        """Remove the provider and the menu action."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        action = getattr(self, "install_action", None)
        if action is not None and self.iface is not None:
            self.iface.removePluginMenu(MENU, action)
            self.install_action = None
