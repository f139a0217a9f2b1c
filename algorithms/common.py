"""Helpers shared by the algorithms: base class, torch import, grids, styled outputs."""

from __future__ import annotations

import os

from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProcessing,
                       QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingLayerPostProcessorInterface, QgsProject, QgsRectangle)
from qgis.PyQt.QtGui import QIcon

from .provider import ICON_PATH

#: Algorithms that import torch (the CNN, the scene generator and what builds on them).
TORCH_ALGORITHMS = frozenset({"extractdisplacement", "synthesizescene", "trainmodel", "benchmarkmodel",
                              "crossvalidate", "combineinsargnss"})


def import_torch():
    """Import torch or raise a QgsProcessingException that says how to install it."""
    from ..plugin import add_dependency_dir
    add_dependency_dir()
    try:
        import torch
    except ImportError as exc:
        from ..dependencies import missing_message
        raise QgsProcessingException(missing_message(["torch"])) from exc
    return torch


class InsarGnssAlgorithm(QgsProcessingAlgorithm):
    """Base: subclasses set NAME, DISPLAY_NAME, GROUP, HELP and implement the rest."""

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = "Displacement"
    HELP = ""

    def name(self):
        """Algorithm id inside the provider."""
        return self.NAME

    def displayName(self):  # noqa: N802
        """Name in the toolbox."""
        return self.DISPLAY_NAME

    def group(self):
        """Toolbox group."""
        return self.GROUP

    def groupId(self):  # noqa: N802
        """Toolbox group id."""
        return self.GROUP.lower().replace(" ", "")

    def shortHelpString(self):  # noqa: N802
        """Help with units and conventions."""
        return self.HELP

    def icon(self):
        """Algorithm icon."""
        return QIcon(ICON_PATH)

    def createInstance(self):  # noqa: N802
        """New instance of the same class."""
        return type(self)()

    #: algorithm id -> whether its last run wrote an HTML report. QGIS's dialog asks
    #: hasHtmlOutputs() after every run (also a failed or cancelled one) on another
    #: instance than the one that ran, and then says "HTML output has been generated".
    #: Algorithms that set TRACKS_REPORT call :meth:`report_written` after writing it.
    _REPORT_WRITTEN = {}
    TRACKS_REPORT = False

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """A run starts: no report written yet."""
        InsarGnssAlgorithm._REPORT_WRITTEN[self.name()] = False
        return True

    def report_written(self):
        """Call after an HTML report was written (so the dialog may say so)."""
        InsarGnssAlgorithm._REPORT_WRITTEN[self.name()] = True

    def canExecute(self):  # noqa: N802
        """False, with what is missing and how to install it, when PyTorch is not available.

        The toolbox asks before opening the dialog, so a user without torch learns it before
        filling in the parameters, not at Run.
        """
        if self.name() in TORCH_ALGORITHMS:
            from ..dependencies import missing_dependencies, missing_message
            missing = missing_dependencies()
            if missing:
                return False, missing_message(missing)
        return True, ""

    # -- parameter values ---------------------------------------------------------------------
    def checkParameterValues(self, parameters, context):  # noqa: N802
        """Numbers outside their range get a sentence with the range; option numbers are accepted.

        QGIS's own check says only "Incorrect parameter value for X", and it refuses the
        option numbers that ``qgis_process help`` advertises ("Number of selected option")
        for enums with static strings.
        """
        parameters = dict(parameters)
        for definition in self.parameterDefinitions():
            name = definition.name()
            value = parameters.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if definition.type() == "enum":
                word = _enum_word(definition, value)
                if word is not None:
                    parameters[name] = word
                elif definition.usesStaticStrings() and str(value) not in definition.options():
                    return False, (f"{name}: '{value}' is not one of {', '.join(definition.options())} "
                                   f"(or their numbers 0-{len(definition.options()) - 1}).")
            elif definition.type() == "number" and isinstance(value, (int, float, str)):
                message = _number_problem(definition, value)
                if message:
                    return False, message
        return super().checkParameterValues(parameters, context)

    def parameterAsEnumString(self, parameters, name, context):  # noqa: N802
        """The option's word, also when the option's number was given (``DEVICE=1``)."""
        word = _enum_word(self.parameterDefinition(name), parameters.get(name))
        return word if word is not None else super().parameterAsEnumString(parameters, name, context)

    def hasHtmlOutputs(self):  # noqa: N802
        """True only when the last run of this algorithm wrote its HTML report."""
        if not self.TRACKS_REPORT:
            return super().hasHtmlOutputs()
        return bool(super().hasHtmlOutputs() and InsarGnssAlgorithm._REPORT_WRITTEN.get(self.name()))


def _enum_word(definition, value):
    """Word of a static-string enum option given by its number (``1`` or ``"1"``), else None."""
    if definition is None or definition.type() != "enum" or not definition.usesStaticStrings():
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    text = str(value).strip()
    options = definition.options()
    if text in options or not text.isdigit():
        return None
    index = int(text)
    return options[index] if index < len(options) else None


def _number_problem(definition, value):
    """Sentence for a number parameter value that is not a number or lies outside its range."""
    name, label = definition.name(), definition.description()
    try:
        number = float(value)
    except ValueError:
        return f"{name} ({label}): '{value}' is not a number."
    integer = definition.dataType() == definition.Integer
    if integer and number != int(number):
        return f"{name} ({label}): {value} must be a whole number."
    low, high = definition.minimum(), definition.maximum()
    low_ok, high_ok = abs(low) < 1e300, abs(high) < 1e300
    if (low_ok and number < low) or (high_ok and number > high):
        if low_ok and high_ok:
            allowed = f"from {low:g} to {high:g}"
        elif low_ok:
            allowed = f"at least {low:g}"
        else:
            allowed = f"at most {high:g}"
        return f"{name} ({label}) = {number:g} is outside its range: give a value {allowed}."
    return None


def check_canceled(feedback):
    """Raise a QgsProcessingException when the user pressed Cancel."""
    if feedback is not None and feedback.isCanceled():
        raise QgsProcessingException("Cancelled by the user; no output was written.")


def utm_crs_for(rect: QgsRectangle, rect_crs: QgsCoordinateReferenceSystem) -> QgsCoordinateReferenceSystem:
    """WGS 84 / UTM CRS of the zone containing the centre of ``rect``."""
    from ..core.geometry import utm_epsg
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    transform = QgsCoordinateTransform(rect_crs, wgs84, QgsProject.instance())
    try:
        centre = transform.transform(rect.center())
    except Exception as exc:  # QgsCsException
        raise QgsProcessingException(
            f"The extent centre cannot be converted to longitude/latitude: {exc}") from exc
    return QgsCoordinateReferenceSystem(f"EPSG:{utm_epsg(centre.x(), centre.y())}")


def transform_extent(rect: QgsRectangle, source: QgsCoordinateReferenceSystem,
                     target: QgsCoordinateReferenceSystem) -> QgsRectangle:
    """Bounding box of ``rect`` in ``target``, with a clear message when it cannot be."""
    if source == target:
        return QgsRectangle(rect)
    transform = QgsCoordinateTransform(source, target, QgsProject.instance())
    try:
        out = transform.transformBoundingBox(rect)
    except Exception as exc:
        raise QgsProcessingException(
            f"The extent in {source.authid()} has no overlap with {target.authid()}: {exc}") from exc
    values = (out.xMinimum(), out.yMinimum(), out.xMaximum(), out.yMaximum())
    if out.isEmpty() or not all(abs(v) < 1e12 for v in values):
        raise QgsProcessingException(
            f"The extent in {source.authid()} has no valid overlap with {target.authid()}.")
    return out


def require_projected(crs: QgsCoordinateReferenceSystem, what: str):
    """Refuse a geographic CRS where metres are needed."""
    if not crs.isValid():
        raise QgsProcessingException(f"{what}: the CRS is not valid.")
    if crs.isGeographic():
        raise QgsProcessingException(
            f"{what}: {crs.authid()} is geographic (degrees); choose a projected CRS in metres "
            "such as the local UTM zone.")


class _StyleFromQml(QgsProcessingLayerPostProcessorInterface):
    """Applies a QML style to an output layer when Processing loads it."""

    def __init__(self, qml_path):
        super().__init__()
        self.qml_path = qml_path

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        """Load the style."""
        if layer is not None:
            layer.loadNamedStyle(self.qml_path)
            layer.triggerRepaint()


_POST_PROCESSORS = []  # Processing keeps only a pointer: keep the Python objects alive


def load_styled(context, output_path: str, qml_path: str):
    """Style ``output_path`` from ``qml_path`` when Processing loads it into the project.

    The ``.qml`` beside the file is also QGIS's default style for it, so the style comes back
    whenever the file is opened later.
    """
    if context.willLoadLayerOnCompletion(output_path):
        processor = _StyleFromQml(qml_path)
        _POST_PROCESSORS.append(processor)
        context.layerToLoadOnCompletionDetails(output_path).setPostProcessor(processor)


def checked_destination(path: str, name: str, extension: str = "") -> str:
    """Make sure a file can be written at ``path`` before any work is done.

    The folder is created when missing; a folder that cannot be created or written, or a
    path that is a folder, is refused with a sentence naming the parameter ``name``.
    ``extension`` (e.g. ``".tif"``) is added when the path has none. Returns the path.
    """
    import tempfile
    if not path:
        raise QgsProcessingException(f"{name}: no destination file given.")
    if extension and not os.path.splitext(path)[1]:
        path += extension
    path = os.path.abspath(os.path.expanduser(path))
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise QgsProcessingException(f"{name}: {path} is a folder; give a file name inside it.")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise QgsProcessingException(
            f"{name}: the folder {folder} cannot be created ({exc.strerror or exc}); "
            "choose a location you can write to.") from None
    try:  # a real write: os.access says yes to root on read-only file systems
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise QgsProcessingException(
            f"{name}: cannot write in the folder {folder} ({exc.strerror or exc}); "
            "choose a location you can write to.") from None
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise QgsProcessingException(f"{name}: {path} exists and is read-only; choose another file name.")
    return path


def output_path(alg, parameters, name, context, extension=".tif"):
    """Destination path of a raster/file output, temporary outputs resolved, checked writable."""
    path = alg.parameterAsOutputLayer(parameters, name, context)
    if not path or path == QgsProcessing.TEMPORARY_OUTPUT:
        raise QgsProcessingException(f"No destination given for {name}.")
    return checked_destination(path, name, extension)


def file_output(alg, parameters, name, context, extension):
    """Checked path of a file destination (``.html``, ``.pt``, ...); ``""`` when optional and skipped."""
    path = alg.parameterAsFileOutput(parameters, name, context)
    if not path:
        definition = alg.parameterDefinition(name)
        if definition is not None and definition.flags() & definition.FlagOptional:
            return ""
    return checked_destination(path, name, extension)


def sink_destination_check(alg, parameters, name, context):
    """Check the folder of a vector output written to a file (memory layers pass)."""
    value = alg.parameterAsOutputLayer(parameters, name, context)
    if not value or value.startswith(("memory:", "postgres", "postgis:", "ogr:", "spatialite:")):
        return
    path = value.split("|")[0]
    checked_destination(path, name)


def output_paths_first(alg, parameters, context, names):
    """Check every named output before any work; returns ``{name: path or ""}``.

    Raster and file destinations give their checked path; vector sinks are checked and give
    ``""`` (QGIS creates them); an optional file output that is skipped gives ``""``.
    """
    from qgis.core import QgsProcessingParameterFeatureSink, QgsProcessingParameterVectorDestination
    paths = {}
    for name in names:
        definition = alg.parameterDefinition(name)
        if isinstance(definition, (QgsProcessingParameterFeatureSink, QgsProcessingParameterVectorDestination)):
            sink_destination_check(alg, parameters, name, context)
            paths[name] = ""
        elif definition.type() == "fileDestination":
            extension = "." + (definition.defaultFileExtension() or "").lstrip(".")
            paths[name] = file_output(alg, parameters, name, context, extension if extension != "." else "")
        else:
            paths[name] = output_path(alg, parameters, name, context)
    return paths


def add_device_parameter(alg, key="DEVICE"):
    """The DEVICE enum (``auto``, ``cpu``, ``cuda``; words on the command line)."""
    from qgis.core import QgsProcessingParameterEnum

    from ..core.runtime import DEVICES
    device = QgsProcessingParameterEnum(key, "Device", list(DEVICES), defaultValue="auto")
    device.setUsesStaticStrings(True)
    alg.addParameter(device)


def device_from(alg, parameters, context, key="DEVICE"):
    """``(torch.device, word)`` of DEVICE; a missing GPU is a sentence, not a traceback."""
    from ..core.runtime import select_device
    word = alg.parameterAsEnumString(parameters, key, context) or "auto"
    try:
        return select_device(word), word
    except (RuntimeError, ValueError) as exc:
        raise QgsProcessingException(str(exc)) from None
