"""Plugin object: registers the Processing provider (also headless, with iface = None)."""

import os
import sys

from qgis.core import QgsApplication

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


class InsarGnss3dPlugin:
    """Registers and removes the ``insargnss3d`` Processing provider."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802
        """Register the provider (called by qgis_process too)."""
        from .algorithms.provider import InsarGnss3dProvider
        add_dependency_dir()
        if self.provider is None:
            self.provider = InsarGnss3dProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        """Desktop start-up: the provider is all the plugin adds."""
        self.initProcessing()

    def unload(self):
        """Remove the provider."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
