"""Rectangular faults as polygon layers: their surface projection and parameters.

Written by ``synthesizescene`` (``FAULT``, the scene's true fault) and ``extractdisplacement``
(``SOURCE``, the elastic source its data-consistency step fitted), with the same fields so that
the two can be compared in the attribute table.
"""

from qgis.core import (QgsFeature, QgsFeatureSink, QgsField, QgsFields, QgsGeometry, QgsPointXY,
                       QgsProcessingException, QgsWkbTypes)
from qgis.PyQt.QtCore import QVariant

#: Fields of every fault layer, then the caller's own.
FAULT_FIELDS = (("strike_deg", QVariant.Double), ("dip_deg", QVariant.Double), ("rake_deg", QVariant.Double),
                ("slip_m", QVariant.Double), ("top_depth_km", QVariant.Double), ("length_km", QVariant.Double),
                ("width_km", QVariant.Double), ("mw", QVariant.Double))


def write_fault_polygon(alg, parameters, context, key, crs, grid, fault=None, extra=()):
    """Write ``fault`` (:class:`..core.okada.Fault`, scene frame of ``grid``) to the sink ``key``.

    ``extra``: ``(name, QVariant type, value)`` appended to :data:`FAULT_FIELDS`. The polygon is
    the fault's surface projection (top edge first) in ``grid``'s CRS. Without ``fault`` the layer
    is created empty. Returns the sink's destination.
    """
    fields = QgsFields()
    for name, kind in list(FAULT_FIELDS) + [(name, kind) for name, kind, _ in extra]:
        fields.append(QgsField(name, kind))
    sink, dest = alg.parameterAsSink(parameters, key, context, fields, QgsWkbTypes.Polygon, crs)
    if sink is None:
        raise QgsProcessingException(f"The {key} output could not be created.")
    if fault is not None:
        ring = [QgsPointXY(grid.x0 + e, grid.y0 + n) for e, n in fault.surface_corners()]
        feature = QgsFeature(fields)
        feature.setGeometry(QgsGeometry.fromPolygonXY([ring + ring[:1]]))
        feature.setAttributes([fault.strike, fault.dip, fault.rake, fault.slip, fault.depth / 1e3,
                               fault.length / 1e3, fault.width / 1e3, fault.moment_magnitude]
                              + [value for _, _, value in extra])
        sink.addFeature(feature, QgsFeatureSink.FastInsert)
    return dest
