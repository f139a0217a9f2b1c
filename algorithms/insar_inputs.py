"""InSAR and LOS parameters shared by several algorithms (QGIS glue over :mod:`..core.insar_io`).

Parameter names are fixed by DESIGN.md::

    INSAR_ASC, INSAR_DESC   multiple raster layers: one multi-band raster (bands = epochs,
                            dates in band descriptions) or one single-band raster per epoch
                            (YYYYMMDD in the file names), in time order
    INSAR_UNITS             m, mm or rad (LiCSAR unwrapped phase)
    LOS_ASC, LOS_DESC       3-band rasters of the LOS unit vector (ground -> satellite) or
                            LiCSAR *.geo.E.tif (with .N/.U siblings), or
    HEADING_ASC, INCIDENCE_ASC, HEADING_DESC, INCIDENCE_DESC   numbers [deg]

Use::

    add_insar_parameters(self)                          # in initAlgorithm
    add_los_parameters(self, "_ASC", "ascending")
    grid = reference_grid(self, parameters, context)    # the first INSAR_ASC layer's grid
    asc = read_insar_track(self, parameters, INSAR_ASC, context, grid, feedback)
    e, n, u = read_los(self, parameters, "_ASC", context, grid)   # (3, H, W)
    track = track_source(self, parameters, INSAR_ASC, context)  # for core.prepare / combine

Core errors (``ValueError``) come back as ``QgsProcessingException`` with the same sentence.
"""

from __future__ import annotations

from qgis.core import (QgsProcessing, QgsProcessingException, QgsProcessingParameterEnum,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterLayer, QgsRasterLayer)

INSAR_ASC, INSAR_DESC, INSAR_UNITS = "INSAR_ASC", "INSAR_DESC", "INSAR_UNITS"
UNIT_OPTIONS = ("m", "mm", "rad")

INSAR_HELP = (
    "<b>InSAR</b> (INSAR_ASC, INSAR_DESC): cumulative LOS displacement per epoch relative to "
    "the first epoch (LiCSBAS cum, MintPy timeseries), positive towards the satellite; either "
    "one multi-band raster (bands = epochs, dates YYYY-MM-DD or YYYYMMDD in the band "
    "descriptions) or one single-band raster per epoch in time order (date YYYYMMDD in each "
    "file name). INSAR_UNITS: m, mm, or rad = LiCSAR unwrapped phase, converted with "
    "d = -0.05546 m / (4 pi) * phase. NoData/NaN pixels are left out.<br>"
    "<b>LOS geometry</b>: LOS_ASC / LOS_DESC are 3-band rasters with the east, north, up "
    "components of the unit vector from the ground to the satellite, or LiCSAR's "
    "*.geo.E.tif with its *.geo.N.tif and *.geo.U.tif beside it; without them give HEADING_* "
    "(satellite flight azimuth, deg clockwise from "
    "north; Sentinel-1 about -12 ascending, -168 descending) and INCIDENCE_* (deg from the "
    "vertical), used for every pixel.<br>")


def add_insar_parameters(alg, tracks=(INSAR_ASC, INSAR_DESC)):
    """Add the InSAR track parameters and INSAR_UNITS to ``alg``."""
    names = {INSAR_ASC: "ascending", INSAR_DESC: "descending"}
    for key in tracks:
        alg.addParameter(QgsProcessingParameterMultipleLayers(
            key, f"InSAR {names.get(key, key)} LOS displacement (one multi-band raster, or "
                 "one raster per epoch)", QgsProcessing.TypeRaster))
    units = QgsProcessingParameterEnum(INSAR_UNITS, "InSAR units (m, mm, rad = LiCSAR phase)",
                                       list(UNIT_OPTIONS), defaultValue="m")
    units.setUsesStaticStrings(True)
    alg.addParameter(units)


def add_los_parameters(alg, suffix: str, track: str):
    """Add LOS{suffix} (3-band raster) and HEADING{suffix} / INCIDENCE{suffix} (numbers)."""
    alg.addParameter(QgsProcessingParameterRasterLayer(
        f"LOS{suffix}", f"LOS unit vector {track} (3 bands east, north, up, ground to satellite; "
                        "or LiCSAR *.geo.E.tif)",
        optional=True))
    number = QgsProcessingParameterNumber
    alg.addParameter(number(f"HEADING{suffix}", f"Heading {track} [deg clockwise from north] "
                            "(if no LOS raster)", number.Double, None, optional=True,
                            minValue=-360.0, maxValue=360.0))
    alg.addParameter(number(f"INCIDENCE{suffix}", f"Incidence {track} [deg from vertical] "
                            "(if no LOS raster)", number.Double, None, optional=True,
                            minValue=0.0, maxValue=89.9))


def insar_units(alg, parameters, context) -> str:
    """The INSAR_UNITS word (m, mm, rad)."""
    value = alg.parameterAsEnumString(parameters, INSAR_UNITS, context)
    if value not in UNIT_OPTIONS:
        raise QgsProcessingException(f"INSAR_UNITS must be one of {', '.join(UNIT_OPTIONS)}, "
                                     f"got {value!r}.")
    return value


def raster_path(layer, what: str) -> str:
    """File path of a GDAL raster layer with a valid CRS, or QgsProcessingException."""
    if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
        raise QgsProcessingException(f"{what}: not a valid raster layer.")
    if layer.providerType() != "gdal":
        raise QgsProcessingException(f"{what}: {layer.name()} is not a file raster (provider "
                                     f"{layer.providerType()}); save it as GeoTIFF first.")
    if not layer.crs().isValid():
        raise QgsProcessingException(f"{what}: {layer.name()} has no coordinate reference "
                                     "system; assign one (Raster > Projections > Assign "
                                     "Projection).")
    return layer.source().split("|")[0]


def track_paths(alg, parameters, key: str, context):
    """File paths of the layers of a multiple-layer InSAR parameter, in the given order."""
    layers = alg.parameterAsLayerList(parameters, key, context)
    if not layers:
        raise QgsProcessingException(f"{key}: no InSAR layer given.")
    return [raster_path(layer, key) for layer in layers]


def reference_grid(alg, parameters, context, key: str = INSAR_ASC):
    """Grid of the first layer of ``key`` (DESIGN.md: outputs lie on the first INSAR_ASC layer)."""
    from ..core.raster import raster_grid
    path = track_paths(alg, parameters, key, context)[0]
    try:
        return raster_grid(path, key)
    except ValueError as exc:
        raise QgsProcessingException(str(exc)) from exc


def read_insar_track(alg, parameters, key: str, context, grid, feedback=None,
                     only_ends: bool = False, require_dates: bool = True):
    """One track as :class:`..core.insar_io.InsarStack` on ``grid`` (LOS in metres)."""
    from ..core.insar_io import read_insar_stack
    paths = track_paths(alg, parameters, key, context)
    units = insar_units(alg, parameters, context)
    try:
        stack = read_insar_stack(paths, grid, units, key, only_ends=only_ends,
                                 require_dates=require_dates)
    except ValueError as exc:
        raise QgsProcessingException(str(exc)) from exc
    if feedback is not None:
        span = (f"{stack.dates[0]} to {stack.dates[-1]}" if stack.dates is not None
                else "no dates: layer order taken as time order")
        feedback.pushInfo(f"{key}: {stack.epoch_count} epochs ({span}), {len(paths)} layer(s), "
                          f"units {units}.")
        for note in stack.notes:
            feedback.pushWarning(note)
    return stack


def los_source(alg, parameters, suffix: str, context):
    """:class:`..core.insar_io.LosSource` of LOS{suffix}, else HEADING{suffix} / INCIDENCE{suffix}."""
    from ..core.insar_io import LosSource
    key = f"LOS{suffix}"
    layer = alg.parameterAsRasterLayer(parameters, key, context)
    path = raster_path(layer, key) if layer is not None else None
    return LosSource(key, path, _optional_number(alg, parameters, f"HEADING{suffix}", context),
                     _optional_number(alg, parameters, f"INCIDENCE{suffix}", context))


def track_source(alg, parameters, key: str, context):
    """:class:`..core.insar_io.TrackSource` of INSAR_ASC / INSAR_DESC with its LOS geometry.

    None when the track's parameter holds no layer (a model trained with track dropout can
    work from one track).
    """
    from ..core.insar_io import TrackSource
    layers = alg.parameterAsLayerList(parameters, key, context)
    if not layers:
        return None
    los = los_source(alg, parameters, key[5:], context)
    return TrackSource(key, tuple(raster_path(layer, key) for layer in layers), los.path,
                       los.heading_deg, los.incidence_deg)


def read_los(alg, parameters, suffix: str, context, grid):
    """(3, H, W) LOS unit vector on ``grid`` (:func:`..core.insar_io.read_los`).

    From LOS{suffix} (3 bands, or a LiCSAR ``*.geo.E.tif`` with its .N and .U siblings),
    else from HEADING{suffix} and INCIDENCE{suffix}.
    """
    from ..core.insar_io import read_los as read_core_los
    try:
        return read_core_los(los_source(alg, parameters, suffix, context), grid)
    except ValueError as exc:
        raise QgsProcessingException(str(exc)) from exc


def _optional_number(alg, parameters, key, context):
    """Value of an optional number parameter, None when not given."""
    value = parameters.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return alg.parameterAsDouble(parameters, key, context)


def describe_los(los) -> str:
    """One-line description of a LOS vector (constant or per pixel) for the log."""
    import numpy as np
    e, n, u = (float(np.nanmean(c)) for c in los)
    return f"mean LOS unit vector (E, N, U) = ({e:.3f}, {n:.3f}, {u:.3f})"

