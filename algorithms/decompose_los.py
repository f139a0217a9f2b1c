"""``insargnss3d:decomposelos``: ascending + descending LOS -> east and up (north neglected)."""

from qgis.core import QgsProcessingException, QgsProcessingParameterRasterDestination

from .common import InsarGnssAlgorithm, check_canceled, load_styled, output_path
from .insar_inputs import (INSAR_ASC, INSAR_DESC, INSAR_HELP, add_insar_parameters,
                           add_los_parameters, describe_los, read_insar_track, read_los,
                           reference_grid)


class DecomposeLosAlgorithm(InsarGnssAlgorithm):
    """The classical asc/desc decomposition, a peer of the CNN."""

    NAME = "decomposelos"
    DISPLAY_NAME = "Decompose ascending + descending LOS (east, up)"
    GROUP = "Classical baselines"
    HELP = (
        "East and up displacement [m] from the cumulative LOS displacement of an ascending and "
        "a descending track, neglecting north motion (MintPy asc_desc2horz_vert, LiCSBAS "
        "decomposeLOS), solved pixel by pixel with each pixel's LOS geometry:<br>"
        "d_asc = e_a east + u_a up, d_desc = e_d east + u_d up.<br>"
        "Each track's displacement is its last epoch minus its first. Any north motion leaks "
        "into up (for Sentinel-1 about -0.17 x north), and a different reference (constant "
        "offset) of the two tracks leaks into east and up: reference both tracks to the same "
        "stable area.<br>" + INSAR_HELP +
        "<b>Output</b>: 3-band float32 GeoTIFF on the grid of the first INSAR_ASC layer, "
        "bands east, north, up [m] with north = NaN (not resolved), NaN where either track "
        "has no data; styled with a diverging ramp centred on zero (band up).")

    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters (names fixed by DESIGN.md)."""
        add_insar_parameters(self)
        add_los_parameters(self, "_ASC", "ascending")
        add_los_parameters(self, "_DESC", "descending")
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, "Decomposed displacement (east, north = NaN, up)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Read both tracks onto the ascending grid, decompose, write."""
        import numpy as np

        from ..core.baselines import decompose_asc_desc
        from ..core.raster import RasterWriter, robust_limit, write_diverging_style

        grid = reference_grid(self, parameters, context)
        feedback.pushInfo(f"Reference grid: {grid.width} x {grid.height} pixels of "
                          f"{grid.pixel_size:g} (first {INSAR_ASC} layer).")
        track_los = {}
        for step, (key, suffix) in enumerate(((INSAR_ASC, "_ASC"), (INSAR_DESC, "_DESC"))):
            check_canceled(feedback)
            stack = read_insar_track(self, parameters, key, context, grid, feedback,
                                     only_ends=True, require_dates=False)
            los = read_los(self, parameters, suffix, context, grid)
            feedback.pushInfo(f"{key}: {describe_los(los)}.")
            track_los[key] = (stack.los_m[-1] - stack.los_m[0], los)
            feedback.setProgress(40.0 * (step + 1))
        check_canceled(feedback)
        (d_asc, los_asc), (d_desc, los_desc) = track_los[INSAR_ASC], track_los[INSAR_DESC]
        east, up = decompose_asc_desc(d_asc, d_desc, los_asc, los_desc)
        if not np.isfinite(east).any():
            raise QgsProcessingException(
                "The ascending and descending tracks have no valid pixel in common (or their "
                "look directions cannot separate east from up); nothing to decompose.")
        feedback.pushInfo(f"{int(np.isfinite(east).sum()):,} of {east.size:,} pixels decomposed.")
        out = np.stack([east, np.full_like(east, np.nan), up])
        path = output_path(self, parameters, self.OUTPUT, context)
        check_canceled(feedback)
        with RasterWriter(path, grid, ("east", "north", "up")) as writer:
            writer.write(out)
            check_canceled(feedback)
            writer.commit()
        feedback.setProgress(100.0)
        load_styled(context, path, write_diverging_style(path, 3, robust_limit(up)))
        return {self.OUTPUT: path}
