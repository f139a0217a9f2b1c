"""The ``insargnss3d`` Processing provider."""

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icon.svg")


class InsarGnss3dProvider(QgsProcessingProvider):
    """Provider holding every algorithm of the plugin."""

    def id(self):  # noqa: A003
        """Provider id used in algorithm ids (``insargnss3d:...``)."""
        return "insargnss3d"

    def name(self):
        """Name shown in the toolbox."""
        return "InSAR-GNSS 3D"

    def icon(self):
        """Toolbox icon."""
        return QIcon(ICON_PATH)

    def loadAlgorithms(self):  # noqa: N802
        """Add one instance of each algorithm."""
        from .algorithm_list import algorithm_classes
        for cls in algorithm_classes():
            self.addAlgorithm(cls())
