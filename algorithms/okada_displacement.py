"""``insargnss3d:okadadisplacement``: Okada (1985) forward model on a raster grid."""

from qgis.core import (QgsProcessingException,
                       QgsProcessingParameterCrs, QgsProcessingParameterExtent,
                       QgsProcessingParameterNumber, QgsProcessingParameterPoint,
                       QgsProcessingParameterRasterDestination)

from .arrows import ARROWS, arrow_parameter, write_arrows
from .common import (InsarGnssAlgorithm, check_canceled, load_styled, output_path,
                     require_projected, sink_destination_check, transform_extent, utm_crs_for)

#: Largest grid accepted (pixels); the raster is computed in blocks, this only bounds disk
#: use and run time (3 float32 bands of 200 M pixels = 2.4 GB).
MAX_PIXELS = 200_000_000
BLOCK_PIXELS = 1_000_000


class OkadaDisplacementAlgorithm(InsarGnssAlgorithm):
    """Surface displacement of a rectangular fault on a grid."""

    NAME = "okadadisplacement"
    DISPLAY_NAME = "Okada fault displacement (forward model)"
    GROUP = "Modelling"
    HELP = (
        "East, north and up surface displacement [m] of a rectangular dislocation in an "
        "elastic half-space (Okada 1985), on a regular grid.<br>"
        "<b>Fault</b>: FAULT_POINT is the centre of the fault's top (up-dip) edge, in any CRS; "
        "DEPTH_KM the depth of that edge (positive down). STRIKE [deg] clockwise from north, "
        "the fault dipping to the right; DIP [deg] 0-90; RAKE [deg] Aki-Richards (90 = thrust, "
        "0 = left-lateral, 180 = right-lateral); SLIP_M shear slip of the hanging wall; "
        "OPENING_M tensile opening. POISSON is Poisson's ratio (0.25 = Poisson solid).<br>"
        "<b>Grid</b>: EXTENT in any CRS, PIXEL_SIZE in metres, OUTPUT_CRS a projected CRS "
        "(default: the UTM zone of the extent centre). Strike is taken in the grid's frame "
        "(meridian convergence, under 2 deg inside a UTM zone, is neglected).<br>"
        "<b>Output</b>: 3-band float32 GeoTIFF, bands east, north, up [m], styled with a "
        "diverging ramp centred on zero (band up).<br>"
        "<b>ARROWS</b> (optional points): horizontal motion on a regular sub-grid (about 20 "
        "arrows along the longer side), fields east, north, up, magnitude (horizontal) [m] and "
        "azimuth [deg, clockwise from grid north], drawn as arrows sized by magnitude and "
        "coloured by up (red up, blue down).")

    FAULT_POINT, DEPTH_KM, STRIKE, DIP = "FAULT_POINT", "DEPTH_KM", "STRIKE", "DIP"
    LENGTH_KM, WIDTH_KM, RAKE, SLIP_M = "LENGTH_KM", "WIDTH_KM", "RAKE", "SLIP_M"
    OPENING_M, POISSON, EXTENT, PIXEL_SIZE = "OPENING_M", "POISSON", "EXTENT", "PIXEL_SIZE"
    OUTPUT_CRS, OUTPUT = "OUTPUT_CRS", "OUTPUT"

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters (names fixed by DESIGN.md)."""
        number = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterPoint(self.FAULT_POINT, "Centre of the fault's top edge"))
        self.addParameter(number(self.DEPTH_KM, "Depth of the top edge [km, positive down]",
                                 number.Double, 5.0, minValue=0.0, maxValue=700.0))
        self.addParameter(number(self.STRIKE, "Strike [deg clockwise from north, dips to the right]",
                                 number.Double, 200.0, minValue=-360.0, maxValue=360.0))
        self.addParameter(number(self.DIP, "Dip [deg]", number.Double, 15.0, minValue=0.0, maxValue=90.0))
        self.addParameter(number(self.LENGTH_KM, "Length along strike [km]", number.Double, 40.0,
                                 minValue=1e-6, maxValue=2000.0))
        self.addParameter(number(self.WIDTH_KM, "Width down dip [km]", number.Double, 25.0,
                                 minValue=1e-6, maxValue=1000.0))
        self.addParameter(number(self.RAKE, "Rake [deg, 90 = thrust]", number.Double, 90.0,
                                 minValue=-360.0, maxValue=360.0))
        self.addParameter(number(self.SLIP_M, "Slip [m]", number.Double, 1.0, minValue=-100.0, maxValue=100.0))
        self.addParameter(number(self.OPENING_M, "Opening [m]", number.Double, 0.0,
                                 minValue=-100.0, maxValue=100.0))
        self.addParameter(number(self.POISSON, "Poisson's ratio", number.Double, 0.25,
                                 minValue=-0.99, maxValue=0.49))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Extent"))
        self.addParameter(number(self.PIXEL_SIZE, "Pixel size [m]", number.Double, 500.0,
                                 minValue=1e-3, maxValue=1e6))
        self.addParameter(QgsProcessingParameterCrs(self.OUTPUT_CRS, "Output CRS (default: local UTM zone)",
                                                    optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Displacement (east, north, up)"))
        self.addParameter(arrow_parameter())

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Compute the grid block by block."""
        from ..core.geometry import Grid
        from ..core.okada import Fault, surface_displacement
        from ..core.raster import RasterWriter, write_diverging_style
        import numpy as np

        path = output_path(self, parameters, self.OUTPUT, context)          # outputs checked first
        sink_destination_check(self, parameters, ARROWS, context)
        extent_crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
        extent = self.parameterAsExtent(parameters, self.EXTENT, context)
        if extent.isEmpty():
            raise QgsProcessingException("The extent is empty; draw or type a rectangle with an area.")
        crs = self.parameterAsCrs(parameters, self.OUTPUT_CRS, context)
        if not crs.isValid():
            crs = utm_crs_for(extent, extent_crs)
            feedback.pushInfo(f"Output CRS: {crs.authid()} (UTM zone of the extent centre).")
        require_projected(crs, "OUTPUT_CRS")
        extent = transform_extent(extent, extent_crs, crs)
        point = self.parameterAsPoint(parameters, self.FAULT_POINT, context, crs)
        pixel_m = self.parameterAsDouble(parameters, self.PIXEL_SIZE, context)
        try:
            grid = Grid.from_extent(extent.xMinimum(), extent.yMinimum(), extent.xMaximum(),
                                    extent.yMaximum(), pixel_m, crs.toWkt(), max_pixels=MAX_PIXELS)
            fault = Fault(east=point.x(), north=point.y(),
                          depth=1e3 * self.parameterAsDouble(parameters, self.DEPTH_KM, context),
                          strike=self.parameterAsDouble(parameters, self.STRIKE, context),
                          dip=self.parameterAsDouble(parameters, self.DIP, context),
                          length=1e3 * self.parameterAsDouble(parameters, self.LENGTH_KM, context),
                          width=1e3 * self.parameterAsDouble(parameters, self.WIDTH_KM, context),
                          rake=self.parameterAsDouble(parameters, self.RAKE, context),
                          slip=self.parameterAsDouble(parameters, self.SLIP_M, context),
                          opening=self.parameterAsDouble(parameters, self.OPENING_M, context))
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from exc
        nu = self.parameterAsDouble(parameters, self.POISSON, context)
        feedback.pushInfo(f"Grid {grid.width} x {grid.height} pixels of {pixel_m:g} m; "
                          f"fault Mw {fault.moment_magnitude:.2f} (rigidity 30 GPa).")

        rows_per_block = max(1, BLOCK_PIXELS // grid.width)
        max_up = 0.0
        with RasterWriter(path, grid, ("east", "north", "up")) as writer:
            for row0 in range(0, grid.height, rows_per_block):
                check_canceled(feedback)
                rows = min(rows_per_block, grid.height - row0)
                east, north = grid.window(row0, 0, rows, grid.width).centres()
                block = np.stack(surface_displacement(fault, east, north, nu=nu))
                max_up = max(max_up, float(np.nanmax(np.abs(block[2]))))
                writer.write(block, row0, 0)
                feedback.setProgress(100.0 * (row0 + rows) / grid.height)
            writer.commit()
        load_styled(context, path, write_diverging_style(path, 3, max_up))
        return {self.OUTPUT: path, **write_arrows(self, parameters, context, path, crs)}
