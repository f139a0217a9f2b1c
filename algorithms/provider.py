"""The ``insargnss3d`` Processing provider."""

import glob
import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icon.svg")
MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "models")


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

    def load(self):
        """Load the algorithms; the models once the provider is registered (see loadAlgorithms)."""
        from qgis.core import QgsApplication
        QgsApplication.processingRegistry().providerAdded.connect(self._registered)
        return super().load()

    def _registered(self, provider_id):
        if provider_id == self.id():
            from qgis.core import QgsApplication
            QgsApplication.processingRegistry().providerAdded.disconnect(self._registered)
            self.refreshAlgorithms()

    def loadAlgorithms(self):  # noqa: N802
        """Add one instance of each algorithm, then the graphical models of resources/models.

        A model's steps are this provider's algorithms, which the registry only finds once
        the provider is registered: the first load (inside ``addProvider``) skips the
        models, and the ``providerAdded`` signal reloads with them.
        """
        from qgis.core import QgsApplication
        from .algorithm_list import algorithm_classes
        for cls in algorithm_classes():
            self.addAlgorithm(cls())
        if QgsApplication.processingRegistry().providerById(self.id()) is self:
            for model in bundled_models():
                self.addAlgorithm(model)


def bundled_models():
    """The ``.model3`` chains shipped in resources/models, as Processing model algorithms.

    Listed in the toolbox under this provider (``insargnss3d:<model name>``), so they run
    from the toolbox and ``qgis_process`` without opening the Model Designer. A file that
    does not load is skipped: one bad file never takes the provider down.
    """
    from qgis.core import QgsMessageLog, QgsProcessingModelAlgorithm
    models = []
    for path in sorted(glob.glob(os.path.join(MODELS_DIR, "*.model3"))):
        model = QgsProcessingModelAlgorithm()
        if model.fromFile(path) and model.name():
            model.setSourceFilePath(path)
            models.append(model)
        else:
            QgsMessageLog.logMessage(f"{path} is not a readable Processing model; skipped.", "InSAR-GNSS 3D")
    return models
