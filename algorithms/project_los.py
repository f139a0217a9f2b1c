"""``insargnss3d:projectlos``: a 3-D displacement raster projected onto a radar line of sight."""

from qgis.core import (QgsProcessingException, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer)

from .common import InsarGnssAlgorithm, check_canceled, load_styled, output_path
from .insar_inputs import add_los_parameters, describe_los, raster_path, read_los

#: Rows per block when projecting (the LOS raster is warped once for the whole grid).
BLOCK_ROWS = 512


class ProjectLosAlgorithm(InsarGnssAlgorithm):
    """d_los = e east + n north + u up."""

    NAME = "projectlos"
    DISPLAY_NAME = "Project 3-D displacement onto a LOS"
    GROUP = "Modelling"
    HELP = (
        "LOS displacement [m] of a 3-D displacement field: d_los = e east + n north + u up, "
        "with (e, n, u) the unit vector from the ground to the satellite, so positive = "
        "motion towards the satellite (range decrease), as LiCSAR, LiCSBAS and MintPy "
        "timeseries.<br>"
        "<b>DISPLACEMENT</b>: 3-band raster, bands east, north, up [m] (e.g. from "
        "okadadisplacement or extractdisplacement).<br>"
        "<b>LOS geometry</b>: LOS, a 3-band raster of the unit vector's east, north, up "
        "components, or LiCSAR's *.geo.E.tif with its *.geo.N.tif and *.geo.U.tif beside it "
        "(warped onto the displacement grid), or "
        "HEADING (satellite flight azimuth, deg clockwise from north; Sentinel-1 about -12 "
        "ascending, -168 descending) and INCIDENCE (deg from the vertical) for every pixel: "
        "e = -sin(inc) cos(heading), n = sin(inc) sin(heading), u = cos(inc).<br>"
        "<b>Output</b>: 1-band float32 GeoTIFF 'los' [m] on the displacement grid, NaN where "
        "a component or the LOS is missing; styled with a diverging ramp centred on zero.")

    DISPLACEMENT, OUTPUT = "DISPLACEMENT", "OUTPUT"

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters (names fixed by DESIGN.md)."""
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.DISPLACEMENT, "3-D displacement (bands east, north, up) [m]"))
        add_los_parameters(self, "", "")
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "LOS displacement"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Read the field, warp the LOS onto its grid, project block by block."""
        import numpy as np

        from ..core.geometry import enu_to_los
        from ..core.raster import raster_grid
        from ..core.raster import RasterWriter, read_raster, robust_limit, write_diverging_style

        layer = self.parameterAsRasterLayer(parameters, self.DISPLACEMENT, context)
        if layer is None:
            raise QgsProcessingException("DISPLACEMENT: no raster given.")
        path_in = raster_path(layer, self.DISPLACEMENT)
        if layer.bandCount() != 3:
            raise QgsProcessingException(
                f"DISPLACEMENT has {layer.bandCount()} band(s); it must hold east, north and up "
                "[m] as bands 1-3.")
        try:
            grid = raster_grid(path_in, self.DISPLACEMENT)
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from exc
        los = read_los(self, parameters, "", context, grid)
        feedback.pushInfo(describe_los(los) + ".")
        path = output_path(self, parameters, self.OUTPUT, context)
        limit = 0.0
        valid = 0
        with RasterWriter(path, grid, ("los",)) as writer:
            for row0 in range(0, grid.height, BLOCK_ROWS):
                check_canceled(feedback)
                rows = min(BLOCK_ROWS, grid.height - row0)
                enu, _, _ = read_raster(path_in, bands=(1, 2, 3), window=(row0, 0, rows, grid.width))
                d = enu_to_los(enu[0], enu[1], enu[2], *los[:, row0:row0 + rows])
                valid += int(np.isfinite(d).sum())
                limit = max(limit, robust_limit(d))
                writer.write(d[None], row0, 0)
                feedback.setProgress(100.0 * (row0 + rows) / grid.height)
            if valid == 0:
                raise QgsProcessingException(
                    "No pixel has all of east, north, up and the LOS vector; the output would be "
                    "empty (is DISPLACEMENT all NoData, or does LOS not overlap it?).")
            check_canceled(feedback)
            writer.commit()
        load_styled(context, path, write_diverging_style(path, 1, limit))
        return {self.OUTPUT: path}
