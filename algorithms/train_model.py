"""``insargnss3d:trainmodel``: (re)train the dual-branch CNN on synthetic scenes, GPU when present."""

import dataclasses
import json
import os
import shutil
import time

from qgis.core import (QgsCoordinateTransform, QgsProcessing, QgsProcessingException,
                       QgsProcessingOutputNumber, QgsProcessingParameterDefinition,
                       QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterFile, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString, QgsProject)

from ..core.conventions import ENU_BANDS as COMPONENTS
from ..core.runtime import DEVICES
from .common import (InsarGnssAlgorithm, add_device_parameter, checked_destination, device_from, file_output,
                     import_torch, utm_crs_for)

#: Defaults that finish in minutes on a CPU (the long recipe is named in the help).
DEFAULT_SAMPLES, DEFAULT_EPOCHS = 512, 8


def default_model_folder():
    """Permanent folder for models trained without an OUTPUT: ``<QGIS profile>/insar_gnss_3d/models``."""
    from qgis.core import QgsApplication
    return os.path.join(QgsApplication.qgisSettingsDirPath(), "insar_gnss_3d", "models")


def default_model_path(samples, epochs, seed, folder=None):
    """``model-<samples>x<epochs>-seed<seed>[-n].pt`` in ``folder``.

    The first such name that is free, or whose checkpoints a cancelled run left (so running
    again resumes).
    """
    folder = folder or default_model_folder()
    stem = os.path.join(folder, f"model-{samples}x{epochs}-seed{seed}")
    n = 1
    while True:
        path = f"{stem}.pt" if n == 1 else f"{stem}-{n}.pt"
        if os.path.isdir(path + ".checkpoints") or not os.path.exists(path):
            return path
        n += 1


class TrainModelAlgorithm(InsarGnssAlgorithm):
    """Thin wrapper around :class:`insar_gnss_3d.core.train.Trainer`."""

    NAME = "trainmodel"
    DISPLAY_NAME = "Train model (synthetic scenes, GPU when present)"
    GROUP = "Modelling"
    HELP = (
        "Trains the dual-branch CNN (Okada & Fukushima, JpGU 2025) on synthetic scenes drawn on "
        "the fly: Okada (1985) thrusts on a shallow megathrust, earthquake steps and slow slips "
        "in a 121-day window, ascending + descending InSAR with stratified, ramp and turbulent "
        "atmospheric noise, daily GNSS with white + random-walk noise, common mode and gaps.<br>"
        "<b>SAMPLES</b>: scenes per epoch; <b>EPOCHS</b>: passes (the final epoch's weights are "
        "kept, as in the paper); <b>BATCH_SIZE</b>: scenes per step; <b>LEARNING_RATE</b>: peak "
        "AdamW rate (5 % linear warm-up, then cosine decay); <b>SEED</b>: every random draw.<br>"
        "<b>DEVICE</b>: auto (CUDA when PyTorch sees a GPU; mixed precision there), cpu, cuda.<br>"
        "The defaults (SAMPLES=512, EPOCHS=8: 4,096 scenes) finish in about 5 minutes on a "
        "2-core CPU and give a usable but weak model. The bundled model's recipe is the long "
        "one: SAMPLES=2048, EPOCHS=32, SEED=2026 (about 70 minutes on 2 CPU cores), then "
        "INIT_MODEL=that model, EPOCHS=16, LEARNING_RATE=0.0005, SEED=2027 (30 minutes); on a "
        "GPU server use the command line (python -m insar_gnss_3d.core.train, torchrun for "
        "several GPUs) with SAMPLES=8192, EPOCHS=100.<br>"
        "<b>DEM</b> (optional): scenes are random crops of your topography, warped (average) to "
        "the scene pixel size in the UTM zone of the DEM's centre; sea and NoData = 0 m (no "
        "InSAR phase, no station there). <b>STATIONS</b> (optional points, e.g. a GNSS layer): "
        "scenes use your network, placed where it is on the DEM (stations farther than the "
        "station margin, 30 km, outside the DEM are dropped); without a DEM the network's "
        "centroid is put at the scene centre.<br>"
        "<b>INIT_MODEL</b> (optional): fine-tune this model file (its architecture and scene "
        "configuration are kept; SCENE_SIZE_PX and OPTIONS 'scene' still apply).<br>"
        "<b>OUTPUT</b>: the model file (.pt, tensors and plain metadata only). Left empty (or "
        "temporary), the model is kept in your QGIS profile folder, insar_gnss_3d/models/, under "
        "a name from SAMPLES, EPOCHS and SEED; the log says where. Checkpoints are "
        "kept after every epoch in OUTPUT + '.checkpoints': after a cancel, run again with the "
        "same OUTPUT and parameters to resume; they are deleted when training finishes.<br>"
        "<b>REPORT</b>: HTML with training/validation loss and validation mSSIM per component "
        "per epoch, the recipe and the model size.<br>"
        "Advanced: SCENE_SIZE_PX (training crop, pixels), PIXEL_SIZE [m], WIDTH (channels of "
        "both branches), VALIDATION_SAMPLES, OPTIONS (JSON: {\"scene\": {SceneConfig fields}, "
        "\"model\": {ModelConfig fields}, and TrainConfig fields such as \"ssim_weight\", "
        "\"weight_decay\", \"threads\", \"amp\"; \"cpu_bf16\": true trains in bfloat16 on a CPU that "
        "computes it in hardware (AVX512-BF16, AMX), ~1.5x faster steps to the same validation loss, "
        "float32 elsewhere; \"mirror_twins\": true draws half of each batch and adds the scenes' "
        "east-west mirror images, half the scene generation per step, BATCH_SIZE even}).")

    SAMPLES, EPOCHS, BATCH_SIZE, LEARNING_RATE = "SAMPLES", "EPOCHS", "BATCH_SIZE", "LEARNING_RATE"
    DEVICE, SEED, DEM, STATIONS, INIT_MODEL = "DEVICE", "SEED", "DEM", "STATIONS", "INIT_MODEL"
    OUTPUT, REPORT = "OUTPUT", "REPORT"
    SCENE_SIZE_PX, PIXEL_SIZE, WIDTH = "SCENE_SIZE_PX", "PIXEL_SIZE", "WIDTH"
    VALIDATION_SAMPLES, OPTIONS = "VALIDATION_SAMPLES", "OPTIONS"
    DEVICES = DEVICES
    TRACKS_REPORT = True
    #: TrainConfig fields OPTIONS may set (the others have their own parameter or are internal).
    OPTION_FIELDS = ("weight_decay", "warmup_fraction", "ssim_weight", "amp", "cpu_bf16", "threads",
                     "mirror_twins", "model", "scene")
    VAL_MSSIM = {c: f"VAL_MSSIM_{c.upper()}" for c in COMPONENTS}

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters (names fixed by DESIGN.md; the sizes and OPTIONS are advanced)."""
        number = QgsProcessingParameterNumber
        self.addParameter(number(self.SAMPLES, "Scenes per epoch [1-10,000,000]", number.Integer,
                                 DEFAULT_SAMPLES, minValue=1, maxValue=10000000))
        self.addParameter(number(self.EPOCHS, "Epochs [1-100,000]", number.Integer, DEFAULT_EPOCHS,
                                 minValue=1, maxValue=100000))
        self.addParameter(number(self.BATCH_SIZE, "Batch size (scenes per step) [1-4096]", number.Integer, 16,
                                 minValue=1, maxValue=4096))
        self.addParameter(number(self.LEARNING_RATE, "Peak learning rate (AdamW) [1e-7 - 1]", number.Double,
                                 2e-3, minValue=1e-7, maxValue=1.0))
        add_device_parameter(self)
        self.addParameter(number(self.SEED, "Seed", number.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.DEM, "DEM [m] for the scenes' topography", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.STATIONS, "GNSS stations for the scenes' network (points)",
            [QgsProcessing.TypeVectorPoint], optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.INIT_MODEL, "Model file to fine-tune", QgsProcessingParameterFile.File,
            optional=True, fileFilter="InSAR-GNSS 3D model (*.pt);;All files (*)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, "Model file (default: kept in your QGIS profile folder)", "InSAR-GNSS 3D model (*.pt)",
            optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Training report", "HTML files (*.html)",
            defaultValue=QgsProcessing.TEMPORARY_OUTPUT, optional=True, createByDefault=True))
        advanced = [
            number(self.SCENE_SIZE_PX, "Scene size [pixels] (default 64, or the INIT_MODEL's)",
                   number.Integer, None, optional=True, minValue=16, maxValue=1024),
            number(self.PIXEL_SIZE, "Pixel size [m] (default 1000, or the INIT_MODEL's)", number.Double,
                   None, optional=True, minValue=50.0, maxValue=20000.0),
            number(self.WIDTH, "Network width [channels of each branch] (default 32)", number.Integer,
                   None, optional=True, minValue=4, maxValue=512),
            number(self.VALIDATION_SAMPLES, "Validation scenes (fixed seed)", number.Integer, 64,
                   minValue=1, maxValue=100000),
            QgsProcessingParameterString(self.OPTIONS, "More options (JSON)", "", optional=True),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        for c in COMPONENTS:
            self.addOutput(QgsProcessingOutputNumber(self.VAL_MSSIM[c], f"Validation mSSIM {c} (last epoch)"))

    # -- inputs ------------------------------------------------------------------------------
    def _optional_number(self, parameters, key, context, integer):
        value = parameters.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return (self.parameterAsInt if integer else self.parameterAsDouble)(parameters, key, context)

    def _options(self, parameters, context):
        text = (self.parameterAsString(parameters, self.OPTIONS, context) or "").strip()
        if not text:
            return {}
        try:
            options = json.loads(text)
        except ValueError as exc:
            raise QgsProcessingException(f"OPTIONS is not valid JSON: {exc}") from None
        if not isinstance(options, dict):
            raise QgsProcessingException("OPTIONS must be a JSON object, e.g. {\"ssim_weight\": 0.5}.")
        unknown = sorted(set(options) - set(self.OPTION_FIELDS))
        if unknown:
            raise QgsProcessingException(f"Unknown OPTIONS {unknown}; valid: {sorted(self.OPTION_FIELDS)}.")
        for key in ("model", "scene"):
            if not isinstance(options.get(key, {}), dict):
                raise QgsProcessingException(f"OPTIONS '{key}' must be a JSON object.")
        return options

    def _device(self, parameters, context, feedback, torch):
        device, word = device_from(self, parameters, context)
        if device.type == "cuda":
            feedback.pushInfo(f"Training on the GPU {torch.cuda.get_device_name(device)} "
                              f"({'found by DEVICE=auto' if word == 'auto' else 'DEVICE=cuda'}), "
                              "with mixed precision.")
        else:
            feedback.pushInfo(f"Training on the CPU ({torch.get_num_threads()} threads)"
                              + ("; PyTorch sees no CUDA GPU." if word == "auto" else "."))
        return word

    def _init_scene(self, path):
        """Scene configuration of INIT_MODEL (checked to be one of ours)."""
        from ..core.modelfile import ModelFileError, load_model
        try:
            _, scene, _ = load_model(path)
        except ModelFileError as exc:
            raise QgsProcessingException(f"INIT_MODEL: {exc}") from None
        return scene

    def _dem(self, parameters, context, feedback, pixel_m, size_px):
        from ..core.raster import dem_for_scenes
        layer = self.parameterAsRasterLayer(parameters, self.DEM, context)
        if layer is None:
            return None, None
        try:
            dem, grid = dem_for_scenes(layer.source(), pixel_m)
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from None
        if min(dem.shape) < size_px:
            raise QgsProcessingException(
                f"The DEM covers {dem.shape[1]} x {dem.shape[0]} pixels of {pixel_m:g} m, less than one "
                f"scene of {size_px} x {size_px} pixels; give a larger DEM or a smaller SCENE_SIZE_PX.")
        feedback.pushInfo(f"DEM: {dem.shape[1]} x {dem.shape[0]} pixels of {pixel_m:g} m "
                          f"({100 * (dem > 0).mean():.0f} % land); scenes are random crops of it.")
        return dem, grid

    def _stations(self, parameters, context, feedback, grid, pixel_m, size_px, margin_m):
        """Station (x, y) [m] in the scenes' frame (origin: the DEM grid's upper-left corner)."""
        import numpy as np
        from qgis.core import QgsCoordinateReferenceSystem
        source = self.parameterAsSource(parameters, self.STATIONS, context)
        if source is None:
            return None
        crs = (QgsCoordinateReferenceSystem.fromWkt(grid.crs_wkt) if grid is not None
               else utm_crs_for(source.sourceExtent(), source.sourceCrs()))
        transform = QgsCoordinateTransform(source.sourceCrs(), crs, QgsProject.instance())
        points = []
        for feature in source.getFeatures():
            geom = feature.geometry()
            if not geom.isEmpty():
                p = transform.transform(geom.centroid().asPoint())
                points.append((p.x(), p.y()))
        if not points:
            raise QgsProcessingException("STATIONS has no point features.")
        xy = np.unique(np.round(np.array(points, dtype=np.float64), 3), axis=0)
        if grid is not None:
            xy = xy - (grid.x0, grid.y0)
            w, h = grid.width * pixel_m, grid.height * pixel_m
            keep = ((xy[:, 0] > -margin_m) & (xy[:, 0] < w + margin_m)
                    & (xy[:, 1] < margin_m) & (xy[:, 1] > -h - margin_m))
            if not keep.any():
                raise QgsProcessingException("No station of STATIONS lies on the DEM or within "
                                             f"{margin_m / 1e3:g} km of it; check both layers' CRS.")
            if not keep.all():
                feedback.pushInfo(f"{(~keep).sum()} stations farther than {margin_m / 1e3:g} km "
                                  "outside the DEM are left out.")
            xy = xy[keep]
        else:
            half = 0.5 * size_px * pixel_m
            xy = xy - xy.mean(axis=0) + (half, -half)
        feedback.pushInfo(f"GNSS network: {len(xy)} stations from STATIONS.")
        return xy

    # -- run ---------------------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Recipe -> Trainer.fit -> model file and report."""
        torch = import_torch()
        from ..core.configs import SceneConfig, TrainConfig
        from ..core.train import Trainer, TrainingCancelled

        options = self._options(parameters, context)
        out = self._model_path(parameters, context, feedback)        # both checked before any work
        report = file_output(self, parameters, self.REPORT, context, ".html")
        device = self._device(parameters, context, feedback, torch)
        init = self.parameterAsFile(parameters, self.INIT_MODEL, context) or ""

        scene_opts = dict(options.pop("scene", {}))
        model_opts = dict(options.pop("model", {}))
        size_px = self._optional_number(parameters, self.SCENE_SIZE_PX, context, True)
        pixel_m = self._optional_number(parameters, self.PIXEL_SIZE, context, False)
        width = self._optional_number(parameters, self.WIDTH, context, True)
        if size_px is not None:
            scene_opts["size_px"] = size_px
        if pixel_m is not None:
            scene_opts["pixel_m"] = pixel_m
        if width is not None:
            if init:
                feedback.pushWarning("WIDTH is ignored when fine-tuning: INIT_MODEL fixes the architecture.")
            else:
                model_opts.update(width=width, gnss_width=width)
        base = self._init_scene(init) if init else SceneConfig()
        try:
            scene = SceneConfig.from_dict({**base.to_dict(), **scene_opts})
        except (ValueError, TypeError) as exc:
            raise QgsProcessingException(f"Scene options: {exc}") from None

        dem, grid = self._dem(parameters, context, feedback, scene.pixel_m, scene.size_px)
        stations = self._stations(parameters, context, feedback, grid, scene.pixel_m, scene.size_px,
                                  scene.station_margin_m)
        if stations is not None and len(stations) > scene.max_stations:
            scene_opts["max_stations"] = int(len(stations))

        try:
            cfg = TrainConfig(
                samples=self.parameterAsInt(parameters, self.SAMPLES, context),
                epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
                validation_samples=self.parameterAsInt(parameters, self.VALIDATION_SAMPLES, context),
                seed=self.parameterAsInt(parameters, self.SEED, context), device=device,
                checkpoint_dir=out + ".checkpoints", init_model=init, model=model_opts, scene=scene_opts,
                **options)
        except (ValueError, TypeError) as exc:   # an OPTIONS value out of range (check_fields)
            raise QgsProcessingException(f"Training options: {exc}") from None
        cfg = dataclasses.replace(cfg, resume=self._can_resume(cfg, feedback, torch))

        def progress(fraction, message):
            feedback.setProgress(100.0 * fraction)
            # one log line per epoch ("epoch 3: train ..."); no per-step text, which QGIS 3.22
            # echoes into the log
            if message.split(" ", 2)[1].endswith(":"):
                feedback.pushInfo(message)

        start = time.time()
        try:
            trainer = Trainer(cfg, dem_m=dem, stations_xy_m=stations, progress=progress,
                              is_canceled=feedback.isCanceled)
            from ..core.model import parameter_count
            feedback.pushInfo(f"{parameter_count(trainer.model):,} parameters, {trainer.precision} training "
                              f"steps; {trainer.steps_per_epoch} "
                              f"steps of {cfg.batch_size} scenes per epoch; scenes of {trainer.scene.size_px} x "
                              f"{trainer.scene.size_px} pixels of {trainer.scene.pixel_m:g} m.")
            if cfg.resume and trainer.load_checkpoint():
                feedback.pushInfo(f"Resuming from the checkpoint after epoch {trainer.epoch} "
                                  f"({cfg.checkpoint_dir}).")
            trainer.cfg = dataclasses.replace(cfg, resume=False)   # loaded once: fit() must not reload
            history = trainer.fit(out)
        except TrainingCancelled as exc:
            raise QgsProcessingException(
                f"{exc} No model file was written; run again with the same OUTPUT and parameters to "
                "resume from the checkpoint.") from None
        except (ValueError, TypeError) as exc:   # SceneConfig / ModelConfig / sampler refusals
            raise QgsProcessingException(f"Cannot train with these settings: {exc}") from None
        except RuntimeError as exc:             # torch (e.g. CUDA out of memory)
            raise QgsProcessingException(f"Training failed: {exc}") from None
        except OSError as exc:                  # checkpoint or model file (disk full, removed folder)
            raise QgsProcessingException(
                f"OUTPUT: writing {exc.filename or out} failed ({exc.strerror or exc}); the last "
                "checkpoint, if any, is kept; free space or choose another OUTPUT.") from None
        seconds = time.time() - start
        shutil.rmtree(cfg.checkpoint_dir, ignore_errors=True)
        feedback.pushInfo(f"Model written to {out} ({os.path.getsize(out) / 1e6:.2f} MB) after "
                          f"{seconds:.0f} s.")
        if getattr(trainer.model, "std_head", None) is not None:
            # training refits the head's raw sigma (core.train.reset_std_calibration)
            feedback.pushWarning(f"The model's std head is not calibrated yet: its std bands are the raw "
                                 f"sigma of training. Calibrate it on held-out scenes (a few minutes) with "
                                 f"python -m insar_gnss_3d.core.calibrate \"{out}\" before trusting them.")
        results = {self.OUTPUT: out}
        for c in COMPONENTS:
            values = history.get(f"val_mssim_{c}") or [float("nan")]
            results[self.VAL_MSSIM[c]] = float(values[-1])
        if report:
            try:
                _write_report(report, trainer, out, seconds, dem is not None, stations)
            except OSError as exc:
                raise QgsProcessingException(
                    f"REPORT: the model was written to {out}, but the report {report} could not be "
                    f"({exc.strerror or exc}).") from None
            results[self.REPORT] = report
            self.report_written()
        feedback.setProgress(100.0)
        return results

    def _model_path(self, parameters, context, feedback):
        """OUTPUT, checked writable; empty or temporary -> a permanent file in the QGIS profile."""
        from qgis.core import QgsProcessingUtils
        path = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        temp = os.path.abspath(QgsProcessingUtils.tempFolder()) + os.sep
        if not path or path == QgsProcessing.TEMPORARY_OUTPUT or os.path.abspath(path).startswith(temp):
            path = default_model_path(self.parameterAsInt(parameters, self.SAMPLES, context),
                                      self.parameterAsInt(parameters, self.EPOCHS, context),
                                      self.parameterAsInt(parameters, self.SEED, context))
            feedback.pushInfo(f"OUTPUT not given: the model will be kept at {path} (your QGIS profile "
                              "folder; a temporary file would be deleted when QGIS quits).")
        return checked_destination(path, self.OUTPUT, ".pt")

    @staticmethod
    def _can_resume(cfg, feedback, torch):
        """Resume only from a checkpoint of the same recipe (else start afresh and say so)."""
        import dataclasses
        path = os.path.join(cfg.checkpoint_dir, "checkpoint_rank0.pt")
        if not os.path.exists(path):
            return False
        try:
            saved = json.loads(torch.load(path, map_location="cpu", weights_only=True)["config"])
            if not isinstance(saved, dict):
                raise TypeError("config is not a mapping")
        except Exception:  # unreadable, truncated or foreign: not ours to resume
            feedback.pushInfo(f"{path} is not a training checkpoint of this plugin (damaged, cut short "
                              "or another program's file); starting afresh (it will be replaced).")
            return False
        current = json.loads(json.dumps(dataclasses.asdict(cfg)))
        saved.pop("resume", None)
        current.pop("resume", None)
        if saved != current:
            feedback.pushInfo(f"A checkpoint of another recipe is in {cfg.checkpoint_dir}; starting "
                              "afresh (it will be replaced).")
            return False
        return True


def _write_report(path, trainer, model_path, seconds, real_dem, stations):
    """HTML: loss and validation mSSIM curves, the recipe, the model's size."""
    import dataclasses

    from ..core.model import parameter_count
    from ..core.report import figure_html, html_document, html_table, new_figure, paragraph, write_html

    h = trainer.history
    epochs = h["epoch"]
    def curve(key):                                  # None (no training steps yet) as a gap
        return [float("nan") if v is None else v for v in h[key]]
    with_nll = any(v is not None for v in h["val_nll"])
    fig = new_figure(15.0 if with_nll else 11.0, 3.8)
    axes = fig.subplots(1, 3 if with_nll else 2)
    ax_loss, ax_ssim = axes[0], axes[1]
    ax_loss.plot(epochs, curve("train_loss"), "o-", label="training")
    ax_loss.plot(epochs, curve("val_loss"), "s-", label="validation")
    if with_nll:
        ax_nll = axes[2]
        ax_nll.plot(epochs, curve("train_nll"), "o-", label="training")
        ax_nll.plot(epochs, curve("val_nll"), "s-", label="validation")
        ax_nll.set_xlabel("epoch")
        ax_nll.set_ylabel("std head: Gaussian NLL per pixel")
        ax_nll.legend()
        ax_nll.grid(True, alpha=0.3)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss (L1 + w (1 - SSIM), scaled units)")
    ax_loss.legend()
    ax_loss.grid(True, alpha=0.3)
    for c, color in zip(COMPONENTS, ("#d62728", "#2ca02c", "#1f77b4")):
        ax_ssim.plot(epochs, h[f"val_mssim_{c}"], "o-", color=color, label=c)
    ax_ssim.set_xlabel("epoch")
    ax_ssim.set_ylabel("validation mSSIM")
    ax_ssim.legend()
    ax_ssim.grid(True, alpha=0.3)
    from matplotlib.ticker import MaxNLocator
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    hidden = ("model", "scene", "resume", "checkpoint_dir")
    recipe = {k: v for k, v in dataclasses.asdict(trainer.cfg).items() if k not in hidden}
    recipe.update(device=str(trainer.device), real_dem=real_dem,
                  user_stations=0 if stations is None else len(stations))
    last = [[c, h[f"val_mssim_{c}"][-1] if h[f"val_mssim_{c}"] else float("nan")] for c in COMPONENTS]
    size = [["parameters", f"{parameter_count(trainer.model):,}"],
            ["file size", f"{os.path.getsize(model_path) / 1e6:.2f} MB"],
            ["training time", f"{seconds:.0f} s"], ["model file", model_path]]
    def kv(d):
        return html_table(["field", "value"], [[k, json.dumps(v) if isinstance(v, (list, tuple, dict)) else v]
                                               for k, v in d.items()])
    parts = [
        "<h2>Learning curves</h2>", figure_html(fig, "loss (the same L1 + SSIM terms for training and validation), "
                                                       "validation mSSIM" + (" and the std head's Gaussian NLL"
                                                                             if with_nll else "") + " per epoch"),
        paragraph("Validation: fixed-seed scenes, mSSIM per component (Wang et al. 2004, data range "
                  "= max - min of the truth) in metres.", "note"),
        "<h2>Last epoch</h2>", html_table(["component", "validation mSSIM"], last, ".3f"),
        "<h2>Model</h2>", html_table(["", ""], size),
        "<h2>Training recipe</h2>", kv(recipe),
        "<h2>Scene generator</h2>", kv(trainer.scene.to_dict()),
        "<h2>Architecture</h2>", kv(trainer.model.config.to_dict()),
    ]
    write_html(path, html_document("InSAR-GNSS 3D training report", parts))
