"""``insargnss3d:combineinsargnss``: the joint InSAR + GNSS least-squares peer (no network)."""

from qgis.core import (QgsProcessing, QgsProcessingException,
                       QgsProcessingMultiStepFeedback, QgsProcessingParameterDefinition,
                       QgsProcessingParameterEnum, QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterString)

from .arrows import ARROWS, add_displacement_outputs, write_arrows
from .common import (InsarGnssAlgorithm, check_canceled, file_output, import_torch, load_styled,
                     output_path, sink_destination_check)
from .gnss_layer import add_gnss_parameters, working_grid_and_gnss
from .insar_inputs import (INSAR_ASC, INSAR_DESC, INSAR_HELP, add_los_parameters, insar_units,
                           track_source)

#: Band descriptions of the output, in band order.
BAND_NAMES = ("east", "north", "up", "east_std", "north_std", "up_std")


class CombineInsarGnssAlgorithm(InsarGnssAlgorithm):
    """East/north/up by per-pixel weighted least squares of the LOS tracks and a GNSS prior."""

    NAME = "combineinsargnss"
    DISPLAY_NAME = "Combine InSAR and GNSS (joint least squares, classical peer)"
    GROUP = "Displacement"
    HELP = (
        "The east, north and up displacement [m] from the first to the last day of the 121-day "
        "window (as extractdisplacement), by the classical joint estimate a geodesist would make "
        "without the CNN (Wang & Wright 2012, GRL 39, L07303; SISTEM, Guglielmino et al. 2011, "
        "IEEE TGRS 49(6); review: Hu et al. 2014, Earth-Sci. Rev. 133):<br>"
        "1. <b>time function</b> f(t), 0 before the event and 1 after, from the GNSS series (the "
        "normalised net motion of the stations that move most), or a step at EVENT_DATE "
        "(required when no station moves significantly);<br>"
        "2. each track's series reduced to one LOS displacement b per pixel by fitting "
        "los(t) = a + b f(t) to every acquisition in the window (each epoch's atmosphere averages "
        "out; pixels need 3 epochs on both sides of the event); the fit's residual gives the "
        "track's noise;<br>"
        "3. each track's reference offset and linear ramp fitted to the GNSS net displacement "
        "projected into its line of sight at the stations (offset only with 1-3 stations or "
        "stations on a line);<br>"
        "4. per pixel, the east/north/up d minimising sum over tracks (l.d - b)^2 / s^2 + "
        "sum over components (d - p)^2 / sp^2, with l the LOS unit vector, s the track's noise, "
        "p and sp the bounded GNSS prior (simple kriging of the stations' net displacements: "
        "it reverts to zero far from the network, where its standard deviation rises to the "
        "stations' RMS motion); s is the series noise and the uncertainty of the fitted "
        "reference surface (from the station residuals) added in quadrature. North is resolved "
        "mainly by GNSS: the two look directions see it weakly.<br>" + INSAR_HELP +
        "<b>GNSS</b>: points, one per station per day (fields chosen with STATION_FIELD, "
        "DATE_FIELD, EAST_FIELD, NORTH_FIELD, UP_FIELD; metres, any constant offset; gaps "
        "allowed). Stations within max(30 km, a quarter of the scene's larger side) of the scene "
        "are used.<br>"
        "<b>PIXEL_SIZE</b> (advanced): working grid pixel [m] in the UTM zone of the scene "
        "centre (default 1000 m, the bundled model's).<br>"
        "<b>Output</b>: 6-band float32 GeoTIFF on the grid of the first INSAR_ASC layer (of "
        "INSAR_DESC when there is no ascending track): east, north, up [m] and their posterior "
        "standard deviations east_std, north_std, up_std [m]; NaN where neither track has data. "
        "LOS sign: positive towards the satellite; LOS vector from the ground to the "
        "satellite.<br>"
        "<b>QUALITY</b> (optional, .json or .html): the time function, per track its noise "
        "estimate, fitted offset [m] and ramp [m/m], and the LOS residual RMS of the output "
        "[m]; per station the observed net displacement and the output's residual [m].")

    EVENT_DATE, PIXEL_SIZE, OUTPUT, QUALITY = "EVENT_DATE", "PIXEL_SIZE", "OUTPUT", "QUALITY"
    UNITS = ("m", "mm", "rad")

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters: InSAR, LOS and GNSS as extractdisplacement, EVENT_DATE, OUTPUT, QUALITY."""
        for key, track in ((INSAR_ASC, "ascending"), (INSAR_DESC, "descending")):
            self.addParameter(QgsProcessingParameterMultipleLayers(
                key, f"InSAR {track} LOS displacement (one multi-band raster, or one raster per "
                     "epoch)", QgsProcessing.TypeRaster, optional=True))
        units = QgsProcessingParameterEnum("INSAR_UNITS", "InSAR units (m, mm, rad = LiCSAR phase)",
                                           list(self.UNITS), defaultValue="m")
        units.setUsesStaticStrings(True)
        self.addParameter(units)
        add_los_parameters(self, "_ASC", "ascending")
        add_los_parameters(self, "_DESC", "descending")
        add_gnss_parameters(self)
        self.addParameter(QgsProcessingParameterString(
            self.EVENT_DATE, "Event date YYYY-MM-DD (default: time function from the GNSS series)",
            optional=True))
        pixel = QgsProcessingParameterNumber(
            self.PIXEL_SIZE, "Working pixel size [m]", QgsProcessingParameterNumber.Double, 1000.0,
            minValue=10.0, maxValue=100000.0)
        pixel.setFlags(pixel.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(pixel)
        add_displacement_outputs(self)


    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Tracks and GNSS on the working grid -> joint estimate -> 6 bands on the input grid."""
        import_torch()                       # the GNSS prior (kriging) runs on torch
        sink_destination_check(self, parameters, ARROWS, context)
        import numpy as np

        from ..core import prepare
        from ..core.combine import combine_scene
        from ..core.raster import robust_limit, write_diverging_style

        steps = QgsProcessingMultiStepFeedback(3, feedback)
        asc = track_source(self, parameters, INSAR_ASC, context)
        desc = track_source(self, parameters, INSAR_DESC, context)
        if asc is None and desc is None:
            raise QgsProcessingException("Give at least one InSAR track (INSAR_ASC and/or INSAR_DESC).")
        units = insar_units(self, parameters, context)
        event_date = (self.parameterAsString(parameters, self.EVENT_DATE, context) or "").strip() or None
        pixel_m = self.parameterAsDouble(parameters, self.PIXEL_SIZE, context)
        path = output_path(self, parameters, self.OUTPUT, context)
        quality_path = file_output(self, parameters, self.QUALITY, context, ".json")
        canceled = feedback.isCanceled
        reference = asc if asc is not None else desc
        try:
            grid, series = working_grid_and_gnss(self, parameters, context, reference, pixel_m, feedback, steps)
            check_canceled(feedback)
            steps.setCurrentStep(1)
            combined = combine_scene(asc, desc, series.dates, series.enu_m, series.x, series.y,
                                     series.stations, units=units, event_date=event_date, grid=grid,
                                     is_canceled=canceled, progress=lambda f, m: steps.setProgress(100.0 * f))
            q = combined.quality
            feedback.pushInfo(f"Window {q['window_start']} to {q['window_end']}; time function "
                              f"{q['time_function']}.")
            for note in combined.notes:
                feedback.pushInfo(note)
            for t in q["tracks"]:
                if t.get("used"):
                    ref = t["reference"]
                    feedback.pushInfo(
                        f"{t['parameter']}: {t['epochs']} epochs, noise {1e3 * t['noise_m']:.1f} mm, "
                        f"reference {ref['method']} (offset {1e3 * ref['offset_m']:.1f} mm, ramp "
                        f"{1e6 * ref['ramp_east_m_per_m']:.2f} / {1e6 * ref['ramp_north_m_per_m']:.2f} "
                        f"mm/km east/north, {ref['stations_used']} stations; ramp left "
                        f"~{1e3 * t.get('ramp_noise_m', 0.0):.1f} mm), LOS residual RMS of the "
                        f"output {1e3 * t['los_residual_rms_m']:.1f} mm.")
            check_canceled(feedback)
            steps.setCurrentStep(2)
            prepare.write_result(combined.result, grid, reference.paths[0], path, combined.tracks,
                                 descriptions=BAND_NAMES, is_canceled=canceled,
                                 progress=lambda f, m: steps.setProgress(100.0 * f))
            if quality_path:
                from ..core.quality import write_quality
                q = dict(q, notes=[{"level": "info", "text": n} for n in combined.notes])
                write_quality(quality_path, q)
        except prepare.ExtractionCancelled as exc:
            raise QgsProcessingException(str(exc)) from None
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from None
        except RuntimeError as exc:  # GDAL, torch
            raise QgsProcessingException(f"The joint estimate failed: {exc}") from None
        finite = [c[np.isfinite(c)] for c in combined.result[:3]]
        feedback.pushInfo("Largest |east|, |north|, |up|: " + ", ".join(
            f"{1e3 * float(abs(c).max()):.1f} mm" if c.size else "-" for c in finite) + ".")
        steps.setProgress(100.0)
        load_styled(context, path, write_diverging_style(path, 3, robust_limit(combined.result[2])))
        out = {self.OUTPUT: path, **write_arrows(self, parameters, context, path)}
        if quality_path:
            out[self.QUALITY] = quality_path
        return out
