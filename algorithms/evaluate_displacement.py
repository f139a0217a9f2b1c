"""``insargnss3d:evaluatedisplacement``: mSSIM and RMSE of a 3-D prediction against a truth."""

from qgis.core import (QgsProcessing, QgsProcessingException, QgsProcessingOutputNumber,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterRasterLayer)

from ..core.conventions import ENU_BANDS as COMPONENTS
from .common import InsarGnssAlgorithm, check_canceled, file_output
from .insar_inputs import raster_path


class EvaluateDisplacementAlgorithm(InsarGnssAlgorithm):
    """Per-component mean SSIM and RMSE, with an HTML report of the maps."""

    NAME = "evaluatedisplacement"
    DISPLAY_NAME = "Evaluate a displacement prediction (mSSIM, RMSE)"
    GROUP = "Evaluation"
    HELP = (
        "Compares a predicted 3-D displacement with a reference (truth), component by "
        "component.<br>"
        "<b>PREDICTION</b>, <b>TRUTH</b>: rasters with bands 1-3 east, north, up [m] (further "
        "bands, e.g. standard deviations, are ignored). The "
        "prediction is warped (bilinear) onto the truth's grid when the grids differ.<br>"
        "<b>MSSIM_EAST/NORTH/UP</b>: mean structural similarity (Wang et al. 2004, "
        "doi:10.1109/TIP.2003.819861) with a Gaussian window (sigma 1.5 px, 11 x 11), K1 = "
        "0.01, K2 = 0.03 and the dynamic range L = max - min of the truth component, averaged "
        "over pixels valid in both rasters and at least 5 pixels from the border; identical "
        "to scikit-image structural_similarity(gaussian_weights=True, sigma=1.5, "
        "use_sample_covariance=False) without NoData. 1 = identical maps.<br>"
        "<b>RMSE_EAST/NORTH/UP</b> [m]: root-mean-square of prediction - truth over pixels "
        "valid in both.<br>"
        "A component the prediction does not resolve (all NoData, like north from "
        "decomposelos) or a flat truth component gives NaN for that component, with a "
        "warning.<br>"
        "<b>REPORT</b>: HTML page with the numbers and maps of truth, prediction and residual "
        "(prediction - truth) per component.")

    PREDICTION, TRUTH, REPORT = "PREDICTION", "TRUTH", "REPORT"
    TRACKS_REPORT = True
    MSSIM = {c: f"MSSIM_{c.upper()}" for c in COMPONENTS}
    RMSE = {c: f"RMSE_{c.upper()}" for c in COMPONENTS}

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters and number outputs (names fixed by DESIGN.md)."""
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.PREDICTION, "Predicted displacement (bands east, north, up) [m]"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.TRUTH, "Reference displacement (bands east, north, up) [m]"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Evaluation report", "HTML files (*.html)",
            defaultValue=QgsProcessing.TEMPORARY_OUTPUT, optional=True, createByDefault=True))
        for c in COMPONENTS:
            self.addOutput(QgsProcessingOutputNumber(self.MSSIM[c], f"Mean SSIM {c}"))
        for c in COMPONENTS:
            self.addOutput(QgsProcessingOutputNumber(self.RMSE[c], f"RMSE {c} [m]"))

    def _three_band_path(self, parameters, key, context):
        layer = self.parameterAsRasterLayer(parameters, key, context)
        if layer is None:
            raise QgsProcessingException(f"{key}: no raster given.")
        path = raster_path(layer, key)
        if layer.bandCount() < 3:
            raise QgsProcessingException(f"{key} has {layer.bandCount()} band(s); it must hold "
                                         "east, north and up [m] as bands 1-3 (more bands, such as "
                                         "the standard deviations of extractdisplacement, are ignored).")
        return path

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Read both onto the truth grid, score, report."""
        import numpy as np

        from ..core.metrics import component_scores
        from ..core.raster import raster_grid, read_raster, warp_to_grid

        report = file_output(self, parameters, self.REPORT, context, ".html")   # before any work
        truth_path = self._three_band_path(parameters, self.TRUTH, context)
        pred_path = self._three_band_path(parameters, self.PREDICTION, context)
        try:
            grid = raster_grid(truth_path, self.TRUTH)
            truth, _, _ = read_raster(truth_path, bands=(1, 2, 3))
            feedback.setProgress(10.0)
            check_canceled(feedback)
            prediction = warp_to_grid(pred_path, grid, self.PREDICTION, bands=(1, 2, 3))
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from exc
        if _same_grid(pred_path, grid):
            feedback.pushInfo("Prediction and truth share one grid.")
        else:
            feedback.pushInfo("Prediction warped (bilinear) onto the truth grid.")
        if not np.isfinite(truth).any():
            raise QgsProcessingException("TRUTH holds no valid pixel (all NoData).")
        feedback.setProgress(30.0)
        check_canceled(feedback)
        try:
            scores = component_scores(prediction, truth, COMPONENTS)
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from exc
        feedback.setProgress(60.0)
        results = {}
        for row in scores:
            c = row["name"]
            if "data_range" in row["note"]:      # core's argument name means nothing to a user
                row["note"] = (f"the TRUTH {c} component is constant (max = min), so SSIM's dynamic range "
                               "L is zero and mSSIM is undefined (RMSE is still given)")
            results[self.MSSIM[c]] = row["mssim"]
            results[self.RMSE[c]] = row["rmse"]
            feedback.pushInfo(f"{c:>5}: mSSIM {row['mssim']:.4f}, RMSE {row['rmse']:.4g} m, "
                              f"max |truth| {row['max_abs_truth']:.4g} m, "
                              f"{100 * row['valid_fraction']:.1f}% pixels valid in both")
            if row["note"]:
                feedback.pushWarning(f"{c}: NaN because {row['note']}.")
        check_canceled(feedback)
        if report:
            _write_report(report, scores, truth, prediction, grid, truth_path, pred_path)
            results[self.REPORT] = report
            self.report_written()
        feedback.setProgress(100.0)
        return results


def _same_grid(path, grid):
    from ..core.raster import open_raster
    ds = open_raster(path, "PREDICTION")
    return (ds.GetGeoTransform() == grid.geotransform and ds.RasterXSize == grid.width
            and ds.RasterYSize == grid.height)


def _write_report(path, scores, truth, prediction, grid, truth_path, pred_path):
    """HTML: table of scores and the truth / prediction / residual maps."""
    import numpy as np

    from ..core.report import (comparison_figure, figure_html, html_document, html_table,
                               paragraph, write_html)

    big = np.nanmax(np.abs(truth)) if np.isfinite(truth).any() else 0.0
    unit, scale = ("mm", 1e3) if big < 0.1 else ("m", 1.0)
    table = html_table(
        ["component", "mSSIM", "RMSE [m]", "max |truth| [m]", "valid pixels [%]", "note"],
        [[r["name"], r["mssim"], r["rmse"], r["max_abs_truth"], 100 * r["valid_fraction"],
          r["note"]] for r in scores])
    xmin, ymin, xmax, ymax = grid.extent
    km = 1e-3 if grid.pixel_size >= 1.0 else 1.0  # projected metres -> km; degrees stay
    fig = comparison_figure(truth, prediction, COMPONENTS,
                            extent=(xmin * km, xmax * km, ymin * km, ymax * km),
                            unit=unit, scale=scale)
    parts = [
        paragraph(f"Prediction: {pred_path}"), paragraph(f"Truth: {truth_path}"),
        paragraph(f"Grid: {grid.width} x {grid.height} pixels of {grid.pixel_size:g} "
                  "(CRS units) — the truth's grid."),
        "<h2>Scores</h2>", table,
        paragraph("mSSIM: Wang et al. (2004) mean SSIM, Gaussian window sigma 1.5 px, data "
                  "range = max - min of the truth component, NoData pixels excluded. "
                  "RMSE over pixels valid in both.", "note"),
        "<h2>Maps</h2>", figure_html(fig, "truth, prediction and residual maps"),
        paragraph(f"Colour scales in {unit}: truth and prediction share one scale per "
                  "component; residual = prediction - truth.", "note"),
    ]
    write_html(path, html_document("Displacement evaluation", parts))
