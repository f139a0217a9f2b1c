"""``insargnss3d:benchmarkmodel``: the paper's evaluation of a model against the classical peers."""

import json
import os

from qgis.core import (QgsProcessing, QgsProcessingException, QgsProcessingOutputNumber,
                       QgsProcessingParameterDefinition, QgsProcessingParameterEnum,
                       QgsProcessingParameterFile, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterNumber, QgsProcessingParameterString)

from ..core.conventions import ENU_BANDS as COMPONENTS
from ..core.runtime import DEVICES, Cancelled
from .common import InsarGnssAlgorithm, add_device_parameter, import_torch


class BenchmarkModelAlgorithm(InsarGnssAlgorithm):
    """Thin wrapper around :func:`insar_gnss_3d.core.benchmark.run_benchmark`."""

    NAME = "benchmarkmodel"
    DISPLAY_NAME = "Benchmark model (mSSIM vs maximum displacement)"
    GROUP = "Evaluation"
    HELP = (
        "The evaluation of Okada & Fukushima (JpGU 2025): on SCENES synthetic scenes drawn from "
        "SEED, the CNN is compared with the three classical peers a user would otherwise run, "
        "component by component:<br>"
        "<b>cnn</b>: the model on the scene's InSAR time series (interpolated onto its epochs), "
        "LOS, DEM and daily GNSS;<br>"
        "<b>decomposition</b>: ascending + descending LOS (last minus first acquisition of each "
        "track, referenced to the GNSS stations' net motion projected on the LOS) decomposed "
        "into east and up with the per-pixel LOS vectors, north neglected (NaN), as MintPy "
        "asc_desc2horz_vert / LiCSBAS decomposeLOS;<br>"
        "<b>interpolation</b>: thin-plate spline of the stations' net displacements (median of "
        "the last 7 days minus the first 7);<br>"
        "<b>joint</b>: joint InSAR + GNSS least squares per pixel (as combineinsargnss: every "
        "acquisition fitted with the GNSS network's time function, each track's offset and ramp "
        "tied to GNSS, noise per track from the fit, bounded kriging prior of the stations; Wang "
        "& Wright 2012, Guglielmino et al. 2011).<br>"
        "Scores per scene, component and method: mSSIM (Wang et al. 2004, Gaussian window "
        "sigma 1.5 px, data range = max - min of the truth component, pixels without a value "
        "left out) and RMSE [m].<br>"
        "<b>MODEL</b>: model file (default: the bundled model). <b>RECIPE</b>: 'model' draws "
        "scenes with the model's own generator settings; 'stress' is a harsher generator the "
        "model was not trained on: the classic scenes with atmosphere 10-30 mm per acquisition "
        "with 10-40 km correlation, real relief (crops of the bundled Kyushu SRTM DEM), both "
        "tracks always present; 'realism' adds heterogeneous slip, several faults, all "
        "mechanisms, sigmoid slow slips, partial track coverage and dense to sparse networks; "
        "'classic' is the generator of model v1 (one uniform-slip thrust), the fixed old recipe "
        "whatever the model was trained on; 'multiscale' is 'realism' at pixel sizes of 0.5-4 km "
        "(ruptures of 5-320 km) with up to 10 m of displacement; 'tensile' is 'classic' with every "
        "source a sill or a dyke that opens, a source no model is trained on. SCENE_OPTIONS (advanced, JSON) "
        "overrides further scene-generator fields. "
        "DEVICE: auto (CUDA when present), cpu, cuda.<br>"
        "<b>OUTPUT_TABLE</b>: CSV, one row per scene, component and method: scene, component, "
        "max_abs_truth_m (largest |truth| of the component), method, mssim, rmse_m, "
        "max_abs_scene_m (largest |truth| of any component), coverage (fraction of pixels "
        "scored); NaN where a method gives nothing.<br>"
        "<b>REPORT</b>: HTML with mSSIM against maximum displacement (log axis; panels east, "
        "north, up; the CNN beside the three peers), medians per method and component over all "
        "scenes and over scenes above 10 mm, and example maps.<br>"
        "Same SEED, same scenes, for every model and machine.")

    MODEL, SCENES, SEED, DEVICE = "MODEL", "SCENES", "SEED", "DEVICE"
    RECIPE, SCENE_OPTIONS = "RECIPE", "SCENE_OPTIONS"
    OUTPUT_TABLE, REPORT = "OUTPUT_TABLE", "REPORT"
    DEVICES = DEVICES
    RECIPES = ("model", "stress", "realism", "classic", "multiscale", "tensile")
    MEDIAN = {c: f"CNN_MEDIAN_MSSIM_{c.upper()}" for c in COMPONENTS}

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters (names fixed by DESIGN.md; RECIPE and SCENE_OPTIONS added)."""
        number = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Model file (default: the bundled model)", QgsProcessingParameterFile.File,
            optional=True, fileFilter="InSAR-GNSS 3D model (*.pt);;All files (*)"))
        self.addParameter(number(self.SCENES, "Number of scenes", number.Integer, 100, minValue=1,
                                 maxValue=1000000))
        self.addParameter(number(self.SEED, "Seed of the scenes", number.Integer, 0, minValue=0))
        add_device_parameter(self)
        recipe = QgsProcessingParameterEnum(
            self.RECIPE, "Scene generator (model = the model's own; stress = harsher, real relief; "
                         "realism = varied faults and coverage; classic = model v1's; "
                         "multiscale = realism at 0.5-4 km pixels; tensile = sills and dykes)",
            list(self.RECIPES), defaultValue="model")
        recipe.setUsesStaticStrings(True)
        self.addParameter(recipe)
        options = QgsProcessingParameterString(self.SCENE_OPTIONS, "Scene generator overrides (JSON)",
                                               "", optional=True)
        options.setFlags(options.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(options)
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_TABLE, "Scores table", "CSV files (*.csv)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Benchmark report", "HTML files (*.html)",
            defaultValue=QgsProcessing.TEMPORARY_OUTPUT, optional=True, createByDefault=True))
        for c in COMPONENTS:
            self.addOutput(QgsProcessingOutputNumber(self.MEDIAN[c], f"Median CNN mSSIM {c}"))

    def _overrides(self, parameters, context):
        from ..core.benchmark import recipe_options
        word = self.parameterAsEnumString(parameters, self.RECIPE, context) or "model"
        overrides, dem = recipe_options(word)
        text = (self.parameterAsString(parameters, self.SCENE_OPTIONS, context) or "").strip()
        if text:
            try:
                extra = json.loads(text)
            except ValueError as exc:
                raise QgsProcessingException(f"SCENE_OPTIONS is not valid JSON: {exc}") from None
            if not isinstance(extra, dict):
                raise QgsProcessingException("SCENE_OPTIONS must be a JSON object, e.g. "
                                             "{\"turbulence_sigma_m\": [0.01, 0.03]}.")
            overrides.update(extra)
        return word, overrides, dem

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Scenes -> three methods -> scores -> CSV + HTML (written only when all is done)."""
        import_torch()
        from ..core import benchmark, benchmark_report
        from ..core.modelfile import ModelFileError
        from ..core.report import write_html

        model = self.parameterAsFile(parameters, self.MODEL, context) or None
        scenes = self.parameterAsInt(parameters, self.SCENES, context)
        seed = self.parameterAsInt(parameters, self.SEED, context)
        device = self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto"
        recipe, overrides, dem = self._overrides(parameters, context)
        table = self.parameterAsFileOutput(parameters, self.OUTPUT_TABLE, context)
        if not table:
            raise QgsProcessingException("OUTPUT_TABLE: give a CSV file name.")
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        feedback.pushInfo(f"{scenes} scenes from seed {seed}, generator '{recipe}'"
                          + (f" with {json.dumps(overrides)}" if overrides else "")
                          + (f", relief from {os.path.basename(dem)}" if dem else "") + ".")

        def progress(fraction, message):
            feedback.setProgress(100.0 * fraction)
            feedback.pushInfo(message)

        keeper = benchmark_report.ExampleKeeper()
        try:
            rows = benchmark.run_benchmark(model, scenes, seed, device, progress, feedback.isCanceled,
                                           overrides, dem_path=dem, on_scene=keeper)
        except Cancelled as exc:
            raise QgsProcessingException(f"{exc} No file was written.") from None
        except ModelFileError as exc:
            raise QgsProcessingException(f"MODEL: {exc}") from None
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from None
        except RuntimeError as exc:  # torch (no CUDA, out of memory)
            raise QgsProcessingException(f"The benchmark failed: {exc}") from None

        summary = benchmark.summarize(rows)
        feedback.pushInfo("Summary (medians):\n" + benchmark.summary_text(summary))
        written = []
        try:
            for path in (table, report):
                if path:
                    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            written.append(benchmark.write_csv(table, rows))
            if report:
                meta = {"Model": model or benchmark.BUNDLED_MODEL, "Scenes": scenes, "Seed": seed,
                        "Generator": recipe + (f" {json.dumps(overrides)}" if overrides else "")
                        + (f", relief {os.path.basename(dem)}" if dem else ""),
                        "Network views": "the scene and its east-west mirror image, averaged"}
                written.append(write_html(report, benchmark_report.report_html(rows, keeper.examples, meta)))
        except Exception:
            for path in written:
                if os.path.exists(path):
                    os.remove(path)
            raise
        results = {self.OUTPUT_TABLE: table}
        if report:
            results[self.REPORT] = report
        for s in summary:
            if s["subset"] == "all" and s["method"] == "cnn":
                results[self.MEDIAN[s["component"]]] = s["median_mssim"]
        feedback.setProgress(100.0)
        return results
