"""``insargnss3d:crossvalidate``: leave-one-station-out check on real data (no truth needed)."""

from qgis.core import (QgsProcessingException, QgsProcessingMultiStepFeedback,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterString)

from .common import check_canceled, file_output, import_torch
from .extract_displacement import ExtractDisplacementAlgorithm
from .gnss_layer import working_grid_and_gnss, working_pixel_m


class CrossValidateAlgorithm(ExtractDisplacementAlgorithm):
    """Leave each chosen station out, rerun the CNN and the peers, compare at the station."""

    NAME = "crossvalidate"
    DISPLAY_NAME = "Cross-validate on real data (leave one station out)"
    GROUP = "Evaluation"
    HELP = (
        "How well does each method do on your data, without a truth? Each chosen GNSS station is "
        "left out in turn; the CNN (with its data-consistency step), the joint InSAR + GNSS least "
        "squares (combineinsargnss) and GNSS interpolation (thin-plate spline) are rerun without "
        "it, and their east/north/up at the station is compared with the station's own net "
        "displacement over the window (median of the last 7 days minus the first 7), which none of "
        "them saw. The 3-D error [m] is the length of the difference vector.<br>"
        "Inputs as extractdisplacement.<br>"
        "<b>STATIONS_OUT</b>: a number K (the K stations nearest the one that moves most; default "
        "5) or station names separated by commas.<br>"
        "<b>OUTPUT_TABLE</b>: CSV, one row per station and method (observed, predicted, 3-D error "
        "[m], distance to the largest motion [km]).<br>"
        "<b>REPORT</b> (optional HTML): median errors, a bar chart per station, and the LOS "
        "residual of the CNN's output per track against the track's noise estimate.<br>"
        "Each station costs one full extraction: K stations take K times as long.")

    STATIONS_OUT, OUTPUT_TABLE, REPORT = "STATIONS_OUT", "OUTPUT_TABLE", "REPORT"

    def initAlgorithm(self, config=None):  # noqa: N802
        """The extraction's inputs, then which stations to leave out and the table/report."""
        super().initAlgorithm(config)
        for name in (self.OUTPUT, self.QUALITY, self.CONSISTENCY, "ARROWS"):
            self.removeParameter(name)
        self.addParameter(QgsProcessingParameterString(
            self.STATIONS_OUT, "Stations to leave out: a count K (nearest the largest motion) or names "
                               "separated by commas", defaultValue="5"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_TABLE, "Leave-one-out table", "CSV (*.csv)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Report", "HTML (*.html)", optional=True, createByDefault=False))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Prepare once, extract with every station (quality), then once per left-out station."""
        import_torch()
        from ..core import crossval, prepare
        from ..core.consistency import consistent_extraction
        from ..core.runtime import Cancelled

        steps = QgsProcessingMultiStepFeedback(3, feedback)
        model, scene, device, asc, desc, units, dem_path = self._inputs(parameters, context, feedback)
        which = (self.parameterAsString(parameters, self.STATIONS_OUT, context) or "5").strip()
        table = file_output(self, parameters, self.OUTPUT_TABLE, context, ".csv")
        report = file_output(self, parameters, self.REPORT, context, ".html")
        try:
            prepare.check_tracks(asc, desc, scene)
            reference = asc if asc is not None else desc
            pixel_m = working_pixel_m(scene, reference)
            grid, series = working_grid_and_gnss(self, parameters, context, reference, pixel_m, feedback, steps)
            steps.setCurrentStep(1)
            prepared = prepare.prepare_scene(asc, desc, dem_path, series.dates, series.enu_m, series.x, series.y,
                                             series.stations, scene, units=units, grid=grid,
                                             is_canceled=feedback.isCanceled)
            indices = _stations(which, prepared, crossval)
            feedback.pushInfo(f"Leaving out {len(indices)} stations: "
                              + ", ".join(prepared.stations[i] for i in indices) + ".")
            network, network_std = prepare.run_model(prepared, model, device=device,
                                                     is_canceled=feedback.isCanceled, with_std=True)
            _, quality, _ = consistent_extraction(prepared, network, scene, network_std_m=network_std)
            check_canceled(feedback)
            steps.setCurrentStep(2)
            rows = crossval.leave_one_out(prepared, model, scene, indices, device=device,
                                          progress=lambda f, m: (check_canceled(feedback),
                                                                 steps.setProgress(100.0 * f),
                                                                 feedback.pushInfo(m)))
            crossval.write_table(table, rows)
            if report:
                from ..core.report import write_html
                write_html(report, crossval.report_html(rows, quality))
        except Cancelled as exc:
            raise QgsProcessingException(str(exc)) from None
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from None
        except RuntimeError as exc:
            raise QgsProcessingException(f"The cross-validation failed: {exc}") from None
        medians = crossval.median_errors(rows)
        feedback.pushInfo("Median 3-D error at the left-out stations: " + ", ".join(
            f"{m} {1e3 * v:.1f} mm" for m, v in medians.items()) + ".")
        feedback.pushInfo("Left-out components within 1 / 2 of the method's standard deviations: " + ", ".join(
            f"{m} {a:.2f} / {b:.2f}" for m, (a, b, n) in crossval.coverage_at_stations(rows).items() if n) + ".")
        return {self.OUTPUT_TABLE: table, self.REPORT: report or None}


def _stations(which, prepared, crossval):
    """Indices of the stations to leave out from STATIONS_OUT (a count or names).

    Only a station inside the scene whose series gives a displacement over the window can be
    compared with a field (:func:`.crossval.nearest_to_largest`); with none, or a named one
    that cannot, the check is refused with a sentence instead of an empty table.
    """
    usable = crossval.nearest_to_largest(prepared)
    if not usable:
        raise QgsProcessingException(
            f"No station can be left out: of the {len(prepared.stations)} stations used, none lies "
            f"inside the scene with GNSS in both the first and the last days of the model's window "
            f"(a displacement over the window to compare with). Give series that span the InSAR "
            f"period.")
    if which.isdigit():
        count = int(which)
        if count < 1:
            raise QgsProcessingException("STATIONS_OUT: give at least one station (a count >= 1 or names).")
        return usable[:count]
    names = [w.strip() for w in which.split(",") if w.strip()]
    missing = [n for n in names if n not in prepared.stations]
    if missing:
        raise QgsProcessingException(
            f"STATIONS_OUT: {', '.join(missing)} not among the stations used "
            f"({', '.join(prepared.stations)}); check the names or give a count.")
    unusable = [n for n in names if prepared.stations.index(n) not in usable]
    if unusable:
        raise QgsProcessingException(
            f"STATIONS_OUT: {', '.join(unusable)} lie outside the scene or give no displacement over "
            f"the model's window, so there is nothing to compare with; choose among "
            f"{', '.join(prepared.stations[i] for i in usable)}.")
    return [prepared.stations.index(n) for n in names]
