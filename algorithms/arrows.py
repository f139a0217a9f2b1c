"""Optional ``ARROWS`` point output: horizontal motion as arrows, vertical motion as colour.

Any algorithm that writes an east/north/up raster adds it with three lines::

    self.addParameter(arrow_parameter())                                   # initAlgorithm
    sink_destination_check(self, parameters, ARROWS, context)              # before any work
    results.update(write_arrows(self, parameters, context, path, crs))     # after the raster

Points on a regular sub-grid (:func:`insar_gnss_3d.core.arrows.arrow_samples`), fields
``east``, ``north``, ``up``, ``magnitude`` (horizontal) [m] and ``azimuth`` [deg clockwise
from grid north]; styled as arrows rotated by the azimuth, sized by the magnitude and
coloured by up (red up, blue down; the diverging ramp of the rasters).
"""

from qgis.core import (QgsCoordinateReferenceSystem, QgsFeature, QgsFeatureSink, QgsField, QgsFields,
                       QgsGeometry, QgsMarkerSymbol,
                       QgsPointXY, QgsProcessing, QgsProcessingLayerPostProcessorInterface,
                       QgsProcessingParameterFeatureSink, QgsProperty, QgsSingleSymbolRenderer,
                       QgsSymbolLayer, QgsWkbTypes)
from qgis.PyQt.QtCore import QVariant

ARROWS = "ARROWS"
FIELDS = ("east", "north", "up", "magnitude", "azimuth")
_POST_PROCESSORS = []  # Processing keeps only a pointer: keep the Python objects alive


def add_displacement_outputs(alg):
    """OUTPUT (6 bands: east, north, up and their std), optional QUALITY (JSON/HTML), ARROWS."""
    from qgis.core import QgsProcessingParameterFileDestination, QgsProcessingParameterRasterDestination
    alg.addParameter(QgsProcessingParameterRasterDestination(
        "OUTPUT", "3-D displacement (east, north, up, and their std)"))
    alg.addParameter(QgsProcessingParameterFileDestination(
        "QUALITY", "Quality figures and warnings", "JSON (*.json);;HTML (*.html)", optional=True,
        createByDefault=False))
    alg.addParameter(arrow_parameter())


def arrow_parameter(key=ARROWS):
    """The optional point output (not created unless asked for)."""
    return QgsProcessingParameterFeatureSink(
        key, "Horizontal motion arrows (points: east, north, up, magnitude [m], azimuth [deg])",
        QgsProcessing.TypeVectorPoint, optional=True, createByDefault=False)


def style_arrow_layer(layer, max_magnitude_m, up_limit_m):
    """Arrows: angle = azimuth, size 0.5-8 mm by horizontal magnitude, fill by up (red up)."""
    top = max(float(max_magnitude_m), 1e-6)
    limit = max(float(up_limit_m), 1e-6)
    symbol = QgsMarkerSymbol.createSimple({"name": "arrow", "color": "#666666", "outline_color": "#202020",
                                           "outline_width": "0.15"})
    marker = symbol.symbolLayer(0)
    marker.setDataDefinedProperty(QgsSymbolLayer.PropertyAngle, QgsProperty.fromField("azimuth"))
    marker.setDataDefinedProperty(QgsSymbolLayer.PropertySize, QgsProperty.fromExpression(
        f'scale_linear("magnitude", 0, {top:.6g}, 0.5, 8)'))
    marker.setDataDefinedProperty(QgsSymbolLayer.PropertyFillColor, QgsProperty.fromExpression(
        f"ramp_color('RdBu', scale_linear(\"up\", {-limit:.6g}, {limit:.6g}, 1, 0))"))
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    layer.triggerRepaint()


class _ArrowStyle(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, max_magnitude_m, up_limit_m):
        super().__init__()
        self.max_magnitude_m, self.up_limit_m = max_magnitude_m, up_limit_m

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        """Style the loaded layer."""
        if layer is not None:
            style_arrow_layer(layer, self.max_magnitude_m, self.up_limit_m)


def write_arrows(alg, parameters, context, raster_path, crs=None, key=ARROWS):
    """Write the arrows of ``raster_path`` (bands east, north, up) to ``key``; ``{}`` when not asked.

    ``crs``: the raster's :class:`QgsCoordinateReferenceSystem`; None reads it from the raster.
    """
    import numpy as np

    from ..core.arrows import arrow_samples
    value = parameters.get(key)
    if value is None or value == "":
        return {}
    fields = QgsFields()
    for name in FIELDS:
        fields.append(QgsField(name, QVariant.Double))
    if crs is None:
        from osgeo import gdal
        wkt = gdal.OpenEx(raster_path, gdal.OF_RASTER | gdal.OF_READONLY).GetProjection()
        crs = QgsCoordinateReferenceSystem.fromWkt(wkt)
    sink, dest = alg.parameterAsSink(parameters, key, context, fields, QgsWkbTypes.Point, crs)
    if sink is None:
        return {}
    samples = arrow_samples(raster_path)
    features = []
    for i in range(samples["x"].size):
        feature = QgsFeature(fields)
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(float(samples["x"][i]), float(samples["y"][i]))))
        feature.setAttributes([float(samples[name][i]) for name in FIELDS])
        features.append(feature)
    sink.addFeatures(features, QgsFeatureSink.FastInsert)
    if context.willLoadLayerOnCompletion(dest):
        top = float(samples["magnitude"].max()) if samples["magnitude"].size else 1e-3
        up = float(np.abs(samples["up"]).max()) if samples["up"].size else 1e-3
        processor = _ArrowStyle(top, up)
        _POST_PROCESSORS.append(processor)
        context.layerToLoadOnCompletionDetails(dest).setPostProcessor(processor)
    return {key: dest}
