"""GNSS point layers <-> :class:`~insar_gnss_3d.core.gnss_io.GnssSeries` (QGIS glue).

The layer format (DESIGN.md, "GNSS layer"): points in long format, one feature per station
per day, fields ``station`` (text), ``date``, ``east``, ``north``, ``up`` (metres, any constant
offset); days without a solution have no feature.

Dates are *written* as ISO ``YYYY-MM-DD`` text (a 10-character string field): it reads back
identically from GeoPackage, Shapefile and CSV, and as a date from GeoJSON (OGR recognises
the ISO form); a QGIS date field, by contrast, comes back as ``YYYY/MM/DD`` text from CSV.
When *reading*, the date field may be a date, a date-time or ISO text.

Used by several algorithms::

    add_gnss_parameters(self)                                   # in initAlgorithm
    series = read_gnss_layer(self, parameters, context, crs, feedback)
    sink, dest = create_gnss_sink(self, parameters, "GNSS", context, crs)
    write_gnss_features(sink, series)                           # x/y already in crs
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
from qgis.core import (QgsCoordinateTransform, QgsCsException, QgsFeature, QgsFeatureRequest,
                       QgsFeatureSink, QgsField, QgsFields, QgsGeometry, QgsPointXY, QgsProcessing,
                       QgsProcessingException, QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterField, QgsWkbTypes)
from qgis.PyQt.QtCore import QDate, QDateTime, QVariant

from .common import check_canceled

GNSS = "GNSS"
STATION_FIELD, DATE_FIELD = "STATION_FIELD", "DATE_FIELD"
EAST_FIELD, NORTH_FIELD, UP_FIELD = "EAST_FIELD", "NORTH_FIELD", "UP_FIELD"

#: Parameter name -> (default field name, description, numeric?)
FIELD_PARAMETERS = {
    STATION_FIELD: ("station", "Station name field", False),
    DATE_FIELD: ("date", "Date field (date, date-time or ISO YYYY-MM-DD text)", False),
    EAST_FIELD: ("east", "East field [m]", True),
    NORTH_FIELD: ("north", "North field [m]", True),
    UP_FIELD: ("up", "Up field [m]", True),
}

#: A station whose points differ by more than this between features "moves"
#: (metres in a projected CRS, degrees in a geographic one: about 1 m either way).
MOVE_TOLERANCE_M = 1.0
MOVE_TOLERANCE_DEG = 1e-5


def add_gnss_parameters(alg, optional: bool = False, description: str = "GNSS daily positions (points)"):
    """Add GNSS (point source) and its five field parameters to ``alg`` (names in DESIGN.md).

    The field parameters are flagged optional because each has a default name (``station``,
    ``date``, ``east``, ``north``, ``up``): qgis_process 3.22 reports a mandatory field
    parameter left out on the command line as missing instead of taking its default.
    :func:`read_gnss_layer` falls back to the default name and checks that it exists.
    """
    alg.addParameter(QgsProcessingParameterFeatureSource(
        GNSS, description, [QgsProcessing.TypeVectorPoint], optional=optional))
    for name, (default, label, numeric) in FIELD_PARAMETERS.items():
        kind = QgsProcessingParameterField.Numeric if numeric else QgsProcessingParameterField.Any
        alg.addParameter(QgsProcessingParameterField(name, label, default, GNSS, kind,
                                                     optional=True))


def _is_null(value) -> bool:
    """True for None and QGIS NULL (a null QVariant)."""
    return value is None or (isinstance(value, QVariant) and value.isNull())


def _to_date(value) -> np.datetime64:
    """Date, date-time or ISO text -> datetime64[D]; ValueError otherwise."""
    from ..core.gnss_io import parse_date
    if isinstance(value, QDateTime):
        value = value.date()
    if isinstance(value, QDate):
        if not value.isValid():
            raise ValueError("an invalid date")
        return np.datetime64(_dt.date(value.year(), value.month(), value.day()), "D")
    return parse_date(value)


def _to_float(value) -> float:
    """Number or numeric text -> float; NULL -> NaN."""
    if _is_null(value):
        return float("nan")
    return float(value)


def read_gnss_layer(alg, parameters, context, target_crs, feedback=None):
    """The GNSS parameter's features as a GnssSeries with x/y in ``target_crs``.

    Parameters
    ----------
    alg : QgsProcessingAlgorithm
        Algorithm that declared the parameters with :func:`add_gnss_parameters`.
    parameters, context
        As passed to ``processAlgorithm``.
    target_crs : QgsCoordinateReferenceSystem
        CRS of the returned station coordinates.
    feedback : QgsProcessingFeedback, optional
        Progress 0-100 over the features; cancel is honoured.

    Returns
    -------
    GnssSeries
        Stations in order of first appearance, a consecutive day axis from the first to the
        last date, NaN where a station has no feature (or a NULL component).

    Raises
    ------
    QgsProcessingException
        Missing layer or field, non-point geometry, no features, a date that cannot be read,
        a non-numeric component, a station that moves, two different values for one station
        and day, a position that cannot be transformed to ``target_crs``.
    """
    from ..core.gnss_io import series_from_samples

    source = alg.parameterAsSource(parameters, GNSS, context)
    if source is None:
        raise QgsProcessingException("GNSS: the layer cannot be opened.")
    if QgsWkbTypes.geometryType(source.wkbType()) != QgsWkbTypes.PointGeometry:
        raise QgsProcessingException(
            f"GNSS: the layer has {QgsWkbTypes.displayString(source.wkbType())} geometry; it must "
            "hold points, one per station per day.")
    names = {}
    available = source.fields().names()
    for param, (default, _, _) in FIELD_PARAMETERS.items():
        chosen = alg.parameterAsFields(parameters, param, context)
        field = chosen[0] if chosen else default
        if source.fields().lookupField(field) < 0:
            raise QgsProcessingException(
                f"GNSS: the layer has no field '{field}' (its fields: {', '.join(available) or 'none'}); "
                f"choose the right one with {param}.")
        names[param] = field
    total = source.featureCount()
    transform = QgsCoordinateTransform(source.sourceCrs(), target_crs, context.transformContext())
    request = QgsFeatureRequest().setSubsetOfAttributes(list(names.values()), source.fields())
    station, xs, ys, dates, enu, where = [], [], [], [], [], []
    for i, feature in enumerate(source.getFeatures(request)):
        if i % 1000 == 0:
            check_canceled(feedback)
            if feedback is not None and total > 0:
                feedback.setProgress(100.0 * i / total)
        here = f"feature {feature.id()}"
        geometry = feature.geometry()
        if geometry is None or geometry.isEmpty():
            raise QgsProcessingException(f"GNSS: {here} has no geometry.")
        points = geometry.asMultiPoint() if geometry.isMultipart() else [geometry.asPoint()]
        if len(points) != 1:
            raise QgsProcessingException(f"GNSS: {here} holds {len(points)} points; give one point "
                                         "per station per day.")
        name = feature[names[STATION_FIELD]]
        if _is_null(name) or not str(name).strip():
            raise QgsProcessingException(f"GNSS: {here} has no station name in '{names[STATION_FIELD]}'.")
        value = feature[names[DATE_FIELD]]
        try:
            day = _to_date(value)
        except ValueError:
            raise QgsProcessingException(
                f"GNSS: {here} (station {name}) has the date {value!r} in '{names[DATE_FIELD]}', which "
                "is neither a date nor ISO text YYYY-MM-DD.") from None
        try:
            components = [_to_float(feature[names[p]]) for p in (EAST_FIELD, NORTH_FIELD, UP_FIELD)]
        except (TypeError, ValueError):
            raise QgsProcessingException(
                f"GNSS: {here} (station {name}) has a non-numeric east, north or up value.") from None
        try:
            point = transform.transform(QgsPointXY(points[0]))
        except QgsCsException as exc:
            raise QgsProcessingException(
                f"GNSS: station {name} ({here}) cannot be transformed to {target_crs.authid()}: {exc}") from None
        station.append(str(name).strip())
        xs.append(point.x())
        ys.append(point.y())
        dates.append(day)
        enu.append(components)
        where.append(here)
    if not station:
        raise QgsProcessingException("GNSS: the layer has no features.")
    tolerance = MOVE_TOLERANCE_DEG if target_crs.isGeographic() else MOVE_TOLERANCE_M
    try:
        series = series_from_samples(station, xs, ys, dates, np.array(enu), where, tolerance)
    except ValueError as exc:
        raise QgsProcessingException(f"GNSS: {exc}") from None
    if feedback is not None:
        feedback.setProgress(100.0)
    return series


def gnss_sink_fields() -> QgsFields:
    """Fields of a GNSS layer: station, date (ISO text), east, north, up [m]."""
    fields = QgsFields()
    fields.append(QgsField("station", QVariant.String, len=32))
    fields.append(QgsField("date", QVariant.String, len=10))
    for name in ("east", "north", "up"):
        fields.append(QgsField(name, QVariant.Double))
    return fields


def create_gnss_sink(alg, parameters, name, context, crs):
    """``parameterAsSink`` with the GNSS fields and point geometry; returns (sink, dest_id).

    Create it only once the data are ready: the file exists from this moment on.
    """
    sink, dest_id = alg.parameterAsSink(parameters, name, context, gnss_sink_fields(),
                                        QgsWkbTypes.Point, crs)
    if sink is None:
        raise QgsProcessingException(alg.invalidSinkError(parameters, name))
    return sink, dest_id


def write_gnss_features(sink, series, feedback=None) -> int:
    """Write ``series`` to ``sink`` in the GNSS layer format; returns the feature count.

    One point per station and day at (``series.x``, ``series.y``), which must already be in
    the sink's CRS; days where east, north and up are all NaN are skipped, a single NaN
    component is written as NULL. The features are built first and added in one call, and
    cancel is *not* checked here, so the output is never half-written: check it before
    creating the sink.
    """
    fields = gnss_sink_fields()
    iso = [str(d) for d in np.asarray(series.dates, dtype="datetime64[D]")]
    features = []
    for k, name in enumerate(series.stations):
        geometry = QgsGeometry.fromPointXY(QgsPointXY(float(series.x[k]), float(series.y[k])))
        values = series.enu_m[k]
        for d in np.flatnonzero(np.any(np.isfinite(values), axis=1)):
            feature = QgsFeature(fields)
            feature.setGeometry(geometry)
            feature.setAttributes([str(name), iso[d]] + [float(v) if np.isfinite(v) else None
                                                         for v in values[d]])
            features.append(feature)
        if feedback is not None:
            feedback.setProgress(50.0 * (k + 1) / max(len(series.stations), 1))
    if not sink.addFeatures(features, QgsFeatureSink.FastInsert):
        error = sink.lastError() if hasattr(sink, "lastError") else ""
        raise QgsProcessingException(f"The GNSS features could not be written. {error}")
    if feedback is not None:
        feedback.setProgress(100.0)
    return len(features)


def working_pixel_m(scene, reference) -> float:
    """The model's working pixel size [m] on the first track ``reference`` (:func:`..core.prepare.working_pixel_m`)."""
    from ..core import prepare
    return prepare.working_pixel_m(scene, reference.paths[0], reference.name)


def working_grid_and_gnss(alg, parameters, context, reference, pixel_m, feedback, steps):
    """The working grid of ``reference`` (UTM of its centre at ``pixel_m``) and the GNSS layer in it.

    ``reference``: the first track (:class:`..core.insar_io.TrackSource`). Logs the grid;
    returns ``(grid, series)`` with the series' x/y in the grid's CRS.
    """
    from qgis.core import QgsCoordinateReferenceSystem

    from ..core import prepare
    grid = prepare.working_grid(reference.paths[0], pixel_m, reference.name)
    epsg = prepare.grid_epsg(grid)
    feedback.pushInfo(f"Working grid: {grid.width} x {grid.height} pixels of {grid.pixel_size:g} m "
                      f"in EPSG:{epsg} covering the first {reference.name} layer.")
    return grid, read_gnss_layer(alg, parameters, context, QgsCoordinateReferenceSystem(f"EPSG:{epsg}"), steps)
