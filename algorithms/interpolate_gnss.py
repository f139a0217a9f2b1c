"""``insargnss3d:interpolategnss``: classical peer, GNSS net displacement interpolated to a grid."""

import numpy as np
from qgis.core import (QgsCoordinateReferenceSystem, QgsProcessingException,
                       QgsProcessingMultiStepFeedback, QgsProcessingParameterDefinition,
                       QgsProcessingParameterEnum, QgsProcessingParameterExtent,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer, QgsRectangle)

from .arrows import ARROWS, arrow_parameter, write_arrows
from .common import (InsarGnssAlgorithm, check_canceled, load_styled, output_path,
                     require_projected, sink_destination_check, transform_extent, utm_crs_for)
from .gnss_layer import add_gnss_parameters, read_gnss_layer

MAX_PIXELS = 50_000_000
BLOCK_PIXELS = 250_000
#: Margin added around the stations when neither EXTENT nor REFERENCE is given.
STATION_MARGIN = 0.1


class InterpolateGnssAlgorithm(InsarGnssAlgorithm):
    """East/north/up field interpolated from GNSS station displacements."""

    NAME = "interpolategnss"
    DISPLAY_NAME = "Interpolate GNSS displacement (classical peer)"
    GROUP = "GNSS"
    HELP = (
        "The classical alternative to the CNN: each station's net east, north and up "
        "displacement over the window of its series (median of the last END_DAYS days minus "
        "median of the first END_DAYS days), interpolated onto a grid.<br>"
        "<b>GNSS</b>: points in the GNSS format (one per station per day; fields chosen with "
        "STATION_FIELD, DATE_FIELD, EAST_FIELD, NORTH_FIELD, UP_FIELD, metres).<br>"
        "<b>Grid</b>: REFERENCE (a raster whose grid and CRS are reused, e.g. an InSAR "
        "layer; EXTENT and PIXEL_SIZE are then ignored), or EXTENT with PIXEL_SIZE [m] in the "
        "UTM zone of the extent centre; with "
        "neither, the stations' bounding box plus 10 %. Interpolation always runs in metres "
        "(the local UTM zone when the grid is geographic).<br>"
        "<b>METHOD</b>: thin_plate (biharmonic / minimum-curvature spline, Sandwell 1987; "
        "exact at the stations, continues the fitted plane outside the network), linear "
        "(Delaunay triangles, nearest station outside), nearest.<br>"
        "A 20-30 km network resolves only wavelengths longer than about twice the station "
        "spacing: the near field of a shallow fault is not recovered.<br>"
        "<b>Output</b>: 3-band float32 GeoTIFF, bands east, north, up [m], NoData NaN, styled "
        "with a diverging ramp centred on zero (band up).")

    EXTENT, REFERENCE, PIXEL_SIZE = "EXTENT", "REFERENCE", "PIXEL_SIZE"
    METHOD, END_DAYS, OUTPUT = "METHOD", "END_DAYS", "OUTPUT"
    METHODS = ("thin_plate", "linear", "nearest")

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters (names fixed by DESIGN.md; METHOD and END_DAYS are advanced)."""
        add_gnss_parameters(self)
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Extent", optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.REFERENCE, "Reference grid (raster; instead of EXTENT)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.PIXEL_SIZE, "Pixel size [m] (with EXTENT)", QgsProcessingParameterNumber.Double,
            1000.0, minValue=1e-3, maxValue=1e6))
        method = QgsProcessingParameterEnum(self.METHOD, "Interpolation", list(self.METHODS),
                                            defaultValue=self.METHODS[0])
        method.setUsesStaticStrings(True)
        days = QgsProcessingParameterNumber(
            self.END_DAYS, "Days averaged (median) at each end of the series",
            QgsProcessingParameterNumber.Integer, 7, minValue=1, maxValue=60)
        for param in (method, days):
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(param)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, "Interpolated displacement (east, north, up)"))
        self.addParameter(arrow_parameter())

    def _grid(self, parameters, context, feedback, stations_lonlat):
        """Output grid: (x0, y0, dx, dy, width, height, crs) in the output CRS."""
        reference = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        if reference is not None:
            if _given(parameters.get(self.EXTENT)):
                feedback.pushInfo("REFERENCE given: its grid is used, EXTENT and PIXEL_SIZE are ignored.")
            ext = reference.extent()
            width, height = reference.width(), reference.height()
            if width * height > MAX_PIXELS:
                raise QgsProcessingException(
                    f"REFERENCE has {width} x {height} pixels, more than the {MAX_PIXELS:,} "
                    "allowed; use EXTENT and a larger PIXEL_SIZE.")
            return (ext.xMinimum(), ext.yMaximum(), reference.rasterUnitsPerPixelX(),
                    reference.rasterUnitsPerPixelY(), width, height, reference.crs())
        from ..core.geometry import Grid
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        if _given(parameters.get(self.EXTENT)):
            extent = self.parameterAsExtent(parameters, self.EXTENT, context)
            extent_crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
            if extent.isEmpty():
                raise QgsProcessingException("The extent is empty; draw or type a rectangle with an area.")
        else:
            lon, lat = stations_lonlat
            extent = QgsRectangle(min(lon), min(lat), max(lon), max(lat))
            extent.grow(STATION_MARGIN * max(extent.width(), extent.height(), 0.01))
            extent_crs = wgs84
        crs = utm_crs_for(extent, extent_crs)
        require_projected(crs, "Grid")
        extent = transform_extent(extent, extent_crs, crs)
        pixel_m = self.parameterAsDouble(parameters, self.PIXEL_SIZE, context)
        try:
            grid = Grid.from_extent(extent.xMinimum(), extent.yMinimum(), extent.xMaximum(),
                                    extent.yMaximum(), pixel_m, max_pixels=MAX_PIXELS)
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from None
        if not _given(parameters.get(self.EXTENT)):
            feedback.pushInfo("No EXTENT or REFERENCE: the grid covers the stations plus 10 %.")
        return (grid.x0, grid.y0, pixel_m, pixel_m, grid.width, grid.height, crs)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Net displacement per station, interpolated block by block."""
        sink_destination_check(self, parameters, ARROWS, context)
        from pyproj import Transformer
        from ..core.baselines import gnss_net_displacement, interpolate_gnss
        from ..core.conventions import ENU_BANDS
        from ..core.geometry import Grid, utm_epsg
        from ..core.raster import RasterWriter, write_diverging_style

        steps = QgsProcessingMultiStepFeedback(2, feedback)
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        series = read_gnss_layer(self, parameters, context, wgs84, steps)
        steps.setCurrentStep(1)
        check_canceled(feedback)
        method = self.parameterAsEnumString(parameters, self.METHOD, context) or self.METHODS[0]
        end_days = self.parameterAsInt(parameters, self.END_DAYS, context)
        try:
            net = gnss_net_displacement(series, end_days=end_days)
        except ValueError as exc:   # core names its argument; the user knows the parameter
            raise QgsProcessingException(f"GNSS: {str(exc).replace('end_days', 'END_DAYS')}") from None
        x0, y0, dx, dy, width, height, crs = self._grid(parameters, context, feedback,
                                                        (series.x, series.y))
        # interpolation runs in metres: the grid's CRS, or the local UTM zone if it is geographic
        if crs.isGeographic():
            cx, cy = x0 + dx * width / 2, y0 - dy * height / 2
            work = f"EPSG:{utm_epsg(((cx + 180) % 360) - 180, cy)}"
        else:
            work = crs.toWkt()
        to_work = Transformer.from_crs("EPSG:4326", work, always_xy=True)
        sx, sy = to_work.transform(series.x, series.y)
        grid_to_work = (Transformer.from_crs(crs.toWkt(), work, always_xy=True)
                        if crs.isGeographic() else None)
        grid_xy = Transformer.from_crs("EPSG:4326", crs.toWkt(), always_xy=True).transform(series.x, series.y)
        inside = ((grid_xy[0] >= x0) & (grid_xy[0] <= x0 + dx * width)
                  & (grid_xy[1] <= y0) & (grid_xy[1] >= y0 - dy * height))
        if not inside.any():
            raise QgsProcessingException(
                f"None of the {len(series.stations)} GNSS stations lies inside the grid; the "
                "interpolation would be pure extrapolation. Check the extent and the GNSS layer.")
        usable = np.isfinite(net).all(axis=1).sum()
        feedback.pushInfo(f"{len(series.stations)} stations ({int(inside.sum())} inside the grid, "
                          f"{usable} with all three components), window {series.dates[0]} to "
                          f"{series.dates[-1]}; largest net displacement "
                          f"{1e3 * np.nanmax(np.abs(net)):.1f} mm; {width} x {height} pixels.")

        path = output_path(self, parameters, self.OUTPUT, context)
        grid = Grid(x0, y0, dx, width, height, crs.toWkt())
        rows_per_block = max(1, BLOCK_PIXELS // width)
        max_up = 0.0
        columns = x0 + (np.arange(width) + 0.5) * dx
        with RasterWriter(path, grid, ENU_BANDS, pixel_size_y=dy) as writer:
            for row0 in range(0, height, rows_per_block):
                check_canceled(feedback)
                rows = min(rows_per_block, height - row0)
                gx, gy = np.meshgrid(columns, y0 - (row0 + np.arange(rows) + 0.5) * dy)
                if grid_to_work is not None:
                    gx, gy = grid_to_work.transform(gx, gy)
                try:
                    block = interpolate_gnss(sx, sy, net, gx, gy, method=method)
                except ValueError as exc:
                    raise QgsProcessingException(f"GNSS: {exc}") from None
                max_up = max(max_up, float(np.nanmax(np.abs(block[2]))))
                writer.write(block, row0, 0)
                steps.setProgress(100.0 * (row0 + rows) / height)
            writer.commit()
        load_styled(context, path, write_diverging_style(path, 3, max_up))
        return {self.OUTPUT: path, **write_arrows(self, parameters, context, path, crs)}


def _given(value) -> bool:
    """True when an optional parameter holds a value (not None, not blank text)."""
    return value is not None and not (isinstance(value, str) and not value.strip())
