"""``insargnss3d:extractdisplacement``: the dual-branch CNN on the user's InSAR + GNSS data."""

import os

import numpy as np

from qgis.core import (QgsProcessing, QgsProcessingException,
                       QgsProcessingMultiStepFeedback, QgsProcessingParameterBoolean, QgsProcessingParameterDefinition,
                       QgsProcessingParameterFeatureSink, QgsProcessingParameterString,
                       QgsProcessingParameterEnum, QgsProcessingParameterFile,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterLayer)

from ..core.runtime import BUNDLED_MODEL, DEVICES
from .arrows import ARROWS, add_displacement_outputs, write_arrows
from .common import (InsarGnssAlgorithm, add_device_parameter, check_canceled, device_from, file_output,
                     import_torch, load_styled, output_path, sink_destination_check)
from .gnss_layer import add_gnss_parameters, working_grid_and_gnss, working_pixel_m
from .insar_inputs import (INSAR_ASC, INSAR_DESC, INSAR_HELP, add_los_parameters, insar_units,
                           raster_path, track_source)


class ExtractDisplacementAlgorithm(InsarGnssAlgorithm):
    """East/north/up displacement of fault slip from InSAR time series and GNSS, by the CNN."""

    NAME = "extractdisplacement"
    DISPLAY_NAME = "Extract 3-D displacement (InSAR + GNSS, CNN)"
    GROUP = "Displacement"
    HELP = (
        "The east, north and up surface displacement [m] caused by fault slip, recovered by the "
        "dual-branch CNN of Okada & Fukushima (JpGU 2025) from ascending and descending InSAR "
        "time series, a DEM and daily GNSS series. The result is the displacement from the "
        "first to the last day of the model's 121-day window.<br>" + INSAR_HELP +
        "LOS_ASC / LOS_DESC may also be a LiCSAR *.geo.E.tif alone: its .N and .U siblings "
        "beside it are used with it.<br>"
        "One track alone works when the model was trained with a track missing in part of its "
        "scenes (the log says so); otherwise give both.<br>"
        "<b>DEM</b> [m]: any CRS and resolution (LiCSAR *.geo.hgt.tif, SRTM).<br>"
        "<b>GNSS</b>: points, one per station per day (fields chosen with STATION_FIELD, "
        "DATE_FIELD, EAST_FIELD, NORTH_FIELD, UP_FIELD; metres, any constant offset; gaps "
        "allowed). The window is the 121 days the series span; when they span more, the 121 "
        "days ending on the last InSAR epoch (the log says so). Stations within the model's "
        "training margin (30 km by default) of the scene are used, farther ones ignored.<br>"
        "<b>How</b>: every input is warped onto the model's working grid (the UTM zone of the "
        "scene centre at the model's pixel size; a multi-scale model, trained over a range of "
        "pixel sizes, takes the pixel that makes the scene's longer side two training scenes "
        "long, within that range), the InSAR epochs are interpolated in time "
        "onto the model's epochs, each InSAR epoch and GNSS series loses its reference offset, "
        "the network runs on overlapping tiles blended without seams (TILE_SIZE, advanced), "
        "on the scene and on its east-west mirror image (tracks swapped, east negated: an exact "
        "symmetry of the physics), averaged, "
        "and the result is warped back.<br>"
        "<b>Data consistency</b> (CONSISTENCY, on by default): the network's field becomes the "
        "prior of a per-pixel joint least-squares estimate with each track's LOS displacement "
        "(reduced from its series with the event's time function from the GNSS network, or a "
        "step at EVENT_DATE; offset and ramp fitted to the GNSS; noise estimated from the "
        "series' residual), after Wang & Wright (2012) and SISTEM (Guglielmino et al. 2011). "
        "The output then agrees with every track within its noise and cannot invent motion "
        "the line of sight does not show; the network's uncertainty (its std head's per-pixel "
        "sigma, calibrated on held-out scenes as a power law of that sigma and of the distance "
        "to the nearest station, so it grows away from the stations; for older models a "
        "calibrated fraction of its field's size; widened when the tracks disagree with it) "
        "weighs it. An elastic source (one uniform-slip Okada rectangle) is then fitted to the "
        "tracks and the stations and blended into the prior as far as it explains them, so that "
        "north between the stations follows the physics of the rupture (with one track only "
        "where the stations confirm it); QUALITY reports it.<br>"
        "<b>MODEL</b>: a model file from trainmodel (default: the bundled model). DEVICE: auto "
        "(CUDA when PyTorch sees a GPU), cpu or cuda.<br>"
        "<b>Output</b>: 6-band float32 GeoTIFF on the grid of the first INSAR_ASC layer (of "
        "INSAR_DESC when there is no ascending track), bands east, north, up [m] and their "
        "standard deviations east_std, north_std, up_std [m] (without CONSISTENCY: the network's "
        "field and its own sigma, or the 3 bands only for a model without a std head), NoData "
        "NaN where neither track has data; styled with a diverging ramp centred "
        "on zero (band up).<br>"
        "<b>QUALITY</b> (optional, .json or .html): per track the LOS residual RMS of the "
        "output [m] beside the track's noise estimate and its fitted offset/ramp; per station "
        "the observed net displacement and the output's residual [m]; warnings when the scene "
        "lies outside the model's training ranges (extent, displacement, station spacing) or "
        "the output exceeds twice the largest observed displacement. The warnings also go to "
        "the log.<br>"
        "<b>ARROWS</b> (optional points): the output's horizontal motion on a regular sub-grid, "
        "fields east, north, up, magnitude [m] and azimuth [deg clockwise from grid north], "
        "drawn as arrows sized by magnitude and coloured by up.<br>"
        "<b>SOURCE</b> (optional polygon): the elastic source the data-consistency step fitted, as "
        "its surface projection (top edge first) in the working grid's UTM zone, fields strike_deg, "
        "dip_deg, rake_deg, slip_m, top_depth_km, length_km, width_km, mw (rigidity 30 GPa) as "
        "synthesizescene's FAULT, explained (fraction of the data it explains) and prior_share (its "
        "share of the prior); empty when none was fitted (one track, or CONSISTENCY off).")

    INSAR_UNITS, DEM, MODEL, DEVICE = "INSAR_UNITS", "DEM", "MODEL", "DEVICE"
    TILE_SIZE, OUTPUT = "TILE_SIZE", "OUTPUT"
    CONSISTENCY, EVENT_DATE, QUALITY, SOURCE = "CONSISTENCY", "EVENT_DATE", "QUALITY", "SOURCE"
    UNITS = ("m", "mm", "rad")
    DEVICES = DEVICES

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters (names fixed by DESIGN.md; TILE_SIZE is advanced)."""
        for key, track in ((INSAR_ASC, "ascending"), (INSAR_DESC, "descending")):
            self.addParameter(QgsProcessingParameterMultipleLayers(
                key, f"InSAR {track} LOS displacement (one multi-band raster, or one raster per "
                     "epoch)", QgsProcessing.TypeRaster, optional=True))
        units = QgsProcessingParameterEnum(self.INSAR_UNITS, "InSAR units (m, mm, rad = LiCSAR phase)",
                                           list(self.UNITS), defaultValue="m")
        units.setUsesStaticStrings(True)
        self.addParameter(units)
        add_los_parameters(self, "_ASC", "ascending")
        add_los_parameters(self, "_DESC", "descending")
        self.addParameter(QgsProcessingParameterRasterLayer(self.DEM, "DEM [m]"))
        add_gnss_parameters(self)
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Model file (default: the bundled model)", QgsProcessingParameterFile.File,
            optional=True, fileFilter="InSAR-GNSS 3D model (*.pt);;All files (*)"))
        add_device_parameter(self)
        tile = QgsProcessingParameterNumber(
            self.TILE_SIZE, "Tile size [pixels of the working grid]", QgsProcessingParameterNumber.Integer,
            128, minValue=32, maxValue=2048)
        tile.setFlags(tile.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(tile)
        self.addParameter(QgsProcessingParameterBoolean(
            self.CONSISTENCY, "Make the output consistent with the InSAR and GNSS data (joint least squares)",
            defaultValue=True))
        event = QgsProcessingParameterString(
            self.EVENT_DATE, "Event date YYYY-MM-DD (default: time function from the GNSS series)",
            optional=True)
        event.setFlags(event.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(event)
        add_displacement_outputs(self)
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.SOURCE, "Fitted elastic source (surface projection, fields as synthesizescene's FAULT)",
            QgsProcessing.TypeVectorPolygon, optional=True, createByDefault=False))

    # -- inputs ----------------------------------------------------------------------------
    def _model(self, parameters, context, feedback):
        from ..core.modelfile import ModelFileError, load_model
        from ..core.prepare import check_model_inputs
        path = self.parameterAsFile(parameters, self.MODEL, context) or BUNDLED_MODEL
        if path == BUNDLED_MODEL and not os.path.isfile(path):
            raise QgsProcessingException(
                f"The bundled model {path} is missing; give a model file with MODEL (train one "
                "with 'Train model', insargnss3d:trainmodel).")
        try:
            model, scene, payload = load_model(path)
            check_model_inputs(model, scene)
        except ModelFileError as exc:
            raise QgsProcessingException(str(exc)) from None
        validation = payload.get("validation") or {}
        scores = ", ".join(f"{k[10:]} {v:.3f}" for k, v in validation.items() if k.startswith("val_mssim_"))
        feedback.pushInfo(f"Model {os.path.basename(path)}: {scene.model_epochs} epochs over "
                          f"{scene.gnss_days} days, "
                          + (f"{scene.pixel_m_range[0]:g}-{scene.pixel_m_range[1]:g} m pixels (multi-scale)"
                             if scene.multi_scale else f"{scene.pixel_m:g} m pixels")
                          + (f", validation mSSIM {scores}" if scores else "") + ".")
        return model, scene

    def _device(self, parameters, context):
        return device_from(self, parameters, context)[0]

    def _inputs(self, parameters, context, feedback):
        """Model, its scene configuration, device, both tracks, units and DEM path."""
        model, scene = self._model(parameters, context, feedback)
        device = self._device(parameters, context)
        asc = track_source(self, parameters, INSAR_ASC, context)
        desc = track_source(self, parameters, INSAR_DESC, context)
        units = insar_units(self, parameters, context)
        dem_layer = self.parameterAsRasterLayer(parameters, self.DEM, context)
        if dem_layer is None:
            raise QgsProcessingException("DEM: give an elevation raster [m].")
        return model, scene, device, asc, desc, units, raster_path(dem_layer, self.DEM)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Model, working grid, GNSS, preparation, tiled network, output on the input grid."""
        import_torch()
        from ..core import prepare
        from ..core.raster import robust_limit, write_diverging_style

        steps = QgsProcessingMultiStepFeedback(4, feedback)
        model, scene, device, asc, desc, units, dem_path = self._inputs(parameters, context, feedback)
        tile_px = self.parameterAsInt(parameters, self.TILE_SIZE, context)
        consistency = self.parameterAsBoolean(parameters, self.CONSISTENCY, context)
        event_date = _event_date(self.parameterAsString(parameters, self.EVENT_DATE, context))
        path = output_path(self, parameters, self.OUTPUT, context)
        quality_path = file_output(self, parameters, self.QUALITY, context, ".json")
        sink_destination_check(self, parameters, ARROWS, context)
        sink_destination_check(self, parameters, self.SOURCE, context)
        canceled = feedback.isCanceled
        try:
            prepare.check_tracks(asc, desc, scene)       # fail fast; its note comes back below
            reference = asc if asc is not None else desc
            pixel_m = working_pixel_m(scene, reference)
            grid, series = working_grid_and_gnss(self, parameters, context, reference, pixel_m, feedback, steps)
            check_canceled(feedback)
            steps.setCurrentStep(1)
            prepared = prepare.prepare_scene(
                asc, desc, dem_path, series.dates, series.enu_m, series.x, series.y, series.stations,
                scene, units=units, grid=grid, is_canceled=canceled,
                progress=lambda f, m: steps.setProgress(100.0 * f))
            window_end = prepared.window_start + (scene.gnss_days - 1)
            feedback.pushInfo(f"Window {prepared.window_start} to {window_end} ({scene.gnss_days} days): "
                              f"InSAR interpolated onto {scene.model_epochs} model epochs; "
                              f"{len(prepared.stations)} GNSS stations.")
            for name, used in prepared.tracks.items():
                if used is not None:
                    feedback.pushInfo(f"{name}: {len(used.dates)} epochs used ({used.dates[0]} to "
                                      f"{used.dates[-1]}), units {units}.")
            for note in prepared.notes:
                if _is_warning(note):
                    feedback.pushWarning(note)
                else:
                    feedback.pushInfo(note)
            steps.setCurrentStep(2)
            feedback.pushInfo(f"Network on {device.type.upper()} in tiles of {tile_px} pixels, on the scene and "
                              "its mirror image (averaged).")
            result, network_std = prepare.run_model(prepared, model.to(device), device=device, tile_px=tile_px,
                                                    overlap_px=max(8, tile_px // 4), is_canceled=canceled,
                                                    progress=lambda f, m: steps.setProgress(100.0 * f),
                                                    with_std=True)
            check_canceled(feedback)
            quality = None
            if consistency:
                result, quality = self._consistent(prepared, result, network_std, scene, event_date, feedback)
            elif network_std is not None:
                # the network's own field and its std head's standard deviation
                result = np.concatenate([result, network_std])
            check_canceled(feedback)
            steps.setCurrentStep(3)
            tracks = prepared.tracks
            del prepared                              # free the inputs before the write-back
            prepare.write_result(result, grid, reference.paths[0], path, tracks, descriptions=BAND_NAMES[:len(result)],
                                 is_canceled=canceled, progress=lambda f, m: steps.setProgress(100.0 * f))
            if quality_path:
                if quality is None:
                    feedback.pushWarning("QUALITY needs CONSISTENCY (the figures come from the joint "
                                         "least-squares step); no quality file was written.")
                    quality_path = ""
                else:
                    from ..core.quality import write_quality
                    write_quality(quality_path, quality)
        except prepare.ExtractionCancelled as exc:
            raise QgsProcessingException(str(exc)) from None
        except ValueError as exc:  # core errors, ModelFileError included
            raise QgsProcessingException(str(exc)) from None
        except RuntimeError as exc:  # torch (e.g. CUDA out of memory) and GDAL
            raise QgsProcessingException(f"The extraction failed: {exc}") from None
        feedback.pushInfo("Largest |east|, |north|, |up|: " + ", ".join(
            f"{1e3 * float(abs(c).max()):.1f} mm" if c.size else "-" for c in _finite(result[:3])) + ".")
        steps.setProgress(100.0)
        load_styled(context, path, write_diverging_style(path, 3, robust_limit(result[2])))
        return {self.OUTPUT: path, self.QUALITY: quality_path or None,
                **self._write_source(parameters, context, grid, quality, feedback),
                **write_arrows(self, parameters, context, path)}

    def _write_source(self, parameters, context, grid, quality, feedback):
        """The SOURCE polygon when asked for (empty when the step fitted none); ``{}`` when not asked."""
        if not self.parameterAsOutputLayer(parameters, self.SOURCE, context):
            return {}
        from qgis.core import QgsCoordinateReferenceSystem
        from qgis.PyQt.QtCore import QVariant

        from ..core.source_fit import source_fault
        from .fault_layer import write_fault_polygon

        source = (quality or {}).get("source")
        if not source:
            feedback.pushWarning("SOURCE: no elastic source was fitted (it needs CONSISTENCY and two tracks); "
                                 "the layer is empty.")
        extra = (("explained", QVariant.Double, source["explained"] if source else None),
                 ("prior_share", QVariant.Double, source["prior_weight"] if source else None))
        crs = QgsCoordinateReferenceSystem.fromWkt(grid.crs_wkt)
        return {self.SOURCE: write_fault_polygon(self, parameters, context, self.SOURCE, crs, grid,
                                                 source_fault(source) if source else None, extra)}

    def _consistent(self, prepared, network_m, network_std_m, scene, event_date, feedback):
        """The data-consistency step (:mod:`..core.consistency`); warnings go to the log."""
        from ..core.consistency import consistent_extraction

        event_day = None
        if event_date is not None:
            event_day = float((event_date - prepared.window_start).astype(int))
            if not 0 < event_day < scene.gnss_days - 1:
                raise QgsProcessingException(
                    f"EVENT_DATE {event_date} lies outside the window {prepared.window_start} to "
                    f"{prepared.window_start + (scene.gnss_days - 1)}; give a date inside it or leave it empty.")
        feedback.pushInfo("Data consistency: joint least squares of the network's field with each "
                          "track's LOS and the GNSS.")
        result, quality, notes = consistent_extraction(prepared, network_m, scene, event_day, network_std_m)
        for note in notes:
            feedback.pushInfo(f"Data consistency: {note}.")
        for note in quality["notes"]:
            (feedback.pushWarning if note["level"] == "warning" else feedback.pushInfo)(note["text"])
        return result, quality


#: Band names of the output: the displacement, then its standard deviation.
BAND_NAMES = ("east", "north", "up", "east_std", "north_std", "up_std")


def _event_date(text):
    """EVENT_DATE as numpy datetime64[D], None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return np.datetime64(text, "D")
    except ValueError:
        raise QgsProcessingException(f"EVENT_DATE: {text!r} is not a date; write it as YYYY-MM-DD.") from None


def _finite(result):
    return [c[np.isfinite(c)] for c in result]


def _is_warning(note: str) -> bool:
    """Notes about doubtful inputs are warnings; the others are information."""
    words = ("unusually", "wrapped", "covers only", "span only", "less certain", "check")
    return any(w in note for w in words)
