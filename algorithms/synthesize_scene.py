"""``insargnss3d:synthesizescene``: one synthetic scene with its truth, as GIS layers."""

import datetime
import math

from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY,
                       QgsProcessing, QgsProcessingException, QgsProcessingParameterExtent,
                       QgsProcessingParameterFeatureSink, QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString, QgsProject,
                       QgsRectangle)
from qgis.PyQt.QtCore import QVariant

from .fault_layer import write_fault_polygon
from .common import (InsarGnssAlgorithm, check_canceled, import_torch, load_styled, output_path,
                     output_paths_first, transform_extent, utm_crs_for)

#: Default scene: central Kyushu (131.0 E, 32.8 N), 96 km square.
DEFAULT_CENTRE_LONLAT = (131.0, 32.8)
DEFAULT_SIZE_M = 96e3


class SynthesizeSceneAlgorithm(InsarGnssAlgorithm):
    """Synthetic InSAR (asc + desc) and GNSS time series of a megathrust slip event."""

    NAME = "synthesizescene"
    DISPLAY_NAME = "Synthesize scene (InSAR + GNSS + truth)"
    GROUP = "Modelling"
    HELP = (
        "One synthetic scene as the CNN is trained on: a thrust on a shallow megathrust "
        "(Okada 1985), an earthquake step or a slow slip ramp inside a 121-day window, "
        "ascending and descending Sentinel-1-like cumulative LOS time series [m, positive "
        "towards the satellite] with stratified, long-wavelength and turbulent atmospheric "
        "noise, decorrelation holes and per-epoch reference offsets, daily GNSS east/north/up "
        "series [m] with white and random-walk noise, common mode and gaps, and the truth "
        "(east/north/up displacement from the first to the last day).<br>"
        "SEED makes it reproducible (same seed, same files). DEM (optional) gives real "
        "topography (resampled to PIXEL_SIZE), else fractal terrain with a random sea. "
        "STATIONS (optional points) is your GNSS network, else a random ~15-35 km network. "
        "EXTENT (optional) else the DEM's centre or central Kyushu, 96 km square, in the local "
        "UTM zone. MAX_DISPLACEMENT_M fixes the truth's largest |component| (0 = random, "
        "1 mm - 1 m log-uniform). START_DATE is the first day of the window.<br>"
        "Outputs open directly in extractdisplacement and decomposelos: InSAR rasters have "
        "one band per acquisition, described by its date; LOS rasters hold the east/north/up "
        "unit vector from the ground to the satellite.")

    SEED, DEM, STATIONS, EXTENT = "SEED", "DEM", "STATIONS", "EXTENT"
    PIXEL_SIZE, MAX_DISPLACEMENT_M, START_DATE = "PIXEL_SIZE", "MAX_DISPLACEMENT_M", "START_DATE"
    INSAR_ASC, INSAR_DESC, LOS_ASC, LOS_DESC = "INSAR_ASC", "INSAR_DESC", "LOS_ASC", "LOS_DESC"
    DEM_OUT, GNSS, TRUTH, FAULT = "DEM_OUT", "GNSS", "TRUTH", "FAULT"

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters and outputs (names of DESIGN.md)."""
        number = QgsProcessingParameterNumber
        self.addParameter(number(self.SEED, "Seed", number.Integer, 1, minValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer(self.DEM, "DEM [m] (else fractal terrain)",
                                                            optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.STATIONS, "GNSS stations (points; else a random network)", [QgsProcessing.TypeVectorPoint],
            optional=True))
        self.addParameter(QgsProcessingParameterExtent(
            self.EXTENT, "Extent (else the DEM's centre or central Kyushu)", optional=True))
        self.addParameter(number(self.PIXEL_SIZE, "Pixel size [m]", number.Double, 1000.0,
                                 minValue=100.0, maxValue=10000.0))
        self.addParameter(number(self.MAX_DISPLACEMENT_M, "Largest |displacement| of the truth [m] (0 = random)",
                                 number.Double, 0.0, minValue=0.0, maxValue=20.0))
        self.addParameter(QgsProcessingParameterString(self.START_DATE, "First day of the window (YYYY-MM-DD)",
                                                       "2024-01-01"))
        for key, label in ((self.INSAR_ASC, "InSAR ascending (bands = acquisitions) [m]"),
                           (self.INSAR_DESC, "InSAR descending (bands = acquisitions) [m]"),
                           (self.LOS_ASC, "LOS unit vector ascending (E, N, U)"),
                           (self.LOS_DESC, "LOS unit vector descending (E, N, U)"),
                           (self.DEM_OUT, "DEM [m]"), (self.TRUTH, "Truth displacement (E, N, U) [m]")):
            self.addParameter(QgsProcessingParameterRasterDestination(key, label))
        self.addParameter(QgsProcessingParameterFeatureSink(self.GNSS, "GNSS daily positions",
                                                            QgsProcessing.TypeVectorPoint))
        self.addParameter(QgsProcessingParameterFeatureSink(self.FAULT, "Fault (surface projection)",
                                                            QgsProcessing.TypeVectorPolygon))

    # -- grid ------------------------------------------------------------------------------
    def _scene_grid(self, parameters, context, pixel_m, dem_layer):
        if parameters.get(self.EXTENT):
            extent = self.parameterAsExtent(parameters, self.EXTENT, context)
            extent_crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
        elif dem_layer is not None:
            full = dem_layer.extent()
            c = full.center()
            # the centre of the DEM, at most 96 km square
            half_x = min(full.width(), self._extent_in(DEFAULT_SIZE_M, dem_layer.crs())) / 2
            half_y = min(full.height(), self._extent_in(DEFAULT_SIZE_M, dem_layer.crs())) / 2
            extent = QgsRectangle(c.x() - half_x, c.y() - half_y, c.x() + half_x, c.y() + half_y)
            extent_crs = dem_layer.crs()
        else:
            wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
            lon, lat = DEFAULT_CENTRE_LONLAT
            crs = utm_crs_for(QgsRectangle(lon, lat, lon, lat), wgs84)
            centre = QgsCoordinateTransform(wgs84, crs, QgsProject.instance()).transform(QgsPointXY(lon, lat))
            half = DEFAULT_SIZE_M / 2
            extent = QgsRectangle(centre.x() - half, centre.y() - half, centre.x() + half, centre.y() + half)
            extent_crs = crs
        if extent.isEmpty():
            raise QgsProcessingException("The extent is empty.")
        projected = extent_crs.isValid() and not extent_crs.isGeographic()
        crs = extent_crs if projected else utm_crs_for(extent, extent_crs)
        extent = transform_extent(extent, extent_crs, crs)
        size_px = int(math.ceil(max(extent.width(), extent.height()) / pixel_m / 4.0) * 4)
        if size_px < 16:
            raise QgsProcessingException(f"The scene would be only {size_px} pixels wide; use a larger extent "
                                         "or a smaller pixel size.")
        if size_px > 2048:
            raise QgsProcessingException(f"The scene would be {size_px} x {size_px} pixels; the generator "
                                         "is meant for scenes up to 2048 pixels: use a larger pixel size.")
        c = extent.center()
        half = size_px * pixel_m / 2
        return crs, c.x() - half, c.y() + half, size_px

    @staticmethod
    def _extent_in(size_m, crs):
        return size_m if not crs.isGeographic() else size_m / 111e3

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Draw the scene, then write every layer."""
        import_torch()
        import numpy as np
        from ..core.geometry import Grid
        from ..core.synthetic import SceneConfig, SceneSampler, scene_arrays
        from ..core.raster import warp_to_grid

        output_paths_first(self, parameters, context, (self.INSAR_ASC, self.INSAR_DESC, self.LOS_ASC,
                                                       self.LOS_DESC, self.DEM_OUT, self.TRUTH, self.GNSS,
                                                       self.FAULT))      # before any work
        seed = self.parameterAsInt(parameters, self.SEED, context)
        pixel_m = self.parameterAsDouble(parameters, self.PIXEL_SIZE, context)
        start = self._start_date(parameters, context)
        dem_layer = self.parameterAsRasterLayer(parameters, self.DEM, context)
        crs, x0, y0, size_px = self._scene_grid(parameters, context, pixel_m, dem_layer)
        grid = Grid(x0, y0, pixel_m, size_px, size_px, crs.toWkt())
        feedback.pushInfo(f"Scene: {size_px} x {size_px} pixels of {pixel_m:g} m in {crs.authid()}.")

        dem = None
        if dem_layer is not None:
            dem = warp_to_grid(dem_layer.source(), grid, "DEM", bands=[1], resampling="average")[0]
            if not np.isfinite(dem).any():
                raise QgsProcessingException("The DEM has no data inside the scene extent.")
        stations_xy = self._stations(parameters, context, crs, x0, y0)
        overrides = {"size_px": size_px, "pixel_m": pixel_m}
        max_disp = self.parameterAsDouble(parameters, self.MAX_DISPLACEMENT_M, context)
        if max_disp > 0:
            overrides["max_displacement_m"] = (max_disp, max_disp)
        if stations_xy is not None:
            overrides["station_margin_m"] = 1e9   # keep every user station
            overrides["max_stations"] = max(len(stations_xy), 1)
        scene = SceneConfig.from_dict({**SceneConfig().to_dict(), **overrides})
        if dem is not None:
            # sea / no data: elevation 0 (no InSAR phase there, no station)
            dem = np.where(np.isfinite(dem), np.maximum(dem, 0.0), 0.0)
        sampler = SceneSampler(scene, seed=seed, dem_m=dem, stations_xy_m=stations_xy)
        arrays = scene_arrays(sampler.sample(1), 0)
        feedback.setProgress(40)
        check_canceled(feedback)
        return self._write(parameters, context, feedback, grid, crs, arrays, start)

    def _start_date(self, parameters, context):
        text = self.parameterAsString(parameters, self.START_DATE, context).strip()
        try:
            return datetime.date.fromisoformat(text)
        except ValueError as exc:
            raise QgsProcessingException(f"START_DATE '{text}' is not an ISO date YYYY-MM-DD.") from exc

    def _stations(self, parameters, context, crs, x0, y0):
        source = self.parameterAsSource(parameters, self.STATIONS, context)
        if source is None:
            return None
        import numpy as np
        transform = QgsCoordinateTransform(source.sourceCrs(), crs, QgsProject.instance())
        xy = []
        for feature in source.getFeatures():
            geom = feature.geometry()
            if geom.isEmpty():
                continue
            p = transform.transform(geom.centroid().asPoint())
            xy.append((p.x() - x0, p.y() - y0))
        if not xy:
            raise QgsProcessingException("The STATIONS layer has no point features.")
        return np.unique(np.array(xy, dtype=np.float64), axis=0)

    def _write(self, parameters, context, feedback, grid, crs, arrays, start):
        import numpy as np
        from ..core.gnss_io import GnssSeries
        from ..core.raster import robust_limit, write_diverging_style, write_raster
        from .gnss_layer import create_gnss_sink, write_gnss_features

        results = {}
        written = []
        try:
            for key, series, days in ((self.INSAR_ASC, arrays.insar_m[0], arrays.acq_days[0]),
                                      (self.INSAR_DESC, arrays.insar_m[1], arrays.acq_days[1])):
                path = output_path(self, parameters, key, context)
                dates = [(start + datetime.timedelta(days=int(d))).isoformat() for d in days]
                write_raster(path, grid, series, dates)
                written.append(path)
                load_styled(context, path, write_diverging_style(path, len(dates), robust_limit(series[-1])))
                results[key] = path
            for key, vec in ((self.LOS_ASC, arrays.los[0]), (self.LOS_DESC, arrays.los[1])):
                path = output_path(self, parameters, key, context)
                write_raster(path, grid, vec, ("east", "north", "up"), unit="")   # unit vectors
                written.append(path)
                results[key] = path
            path = output_path(self, parameters, self.DEM_OUT, context)
            write_raster(path, grid, arrays.dem_m[None], ("elevation_m",))
            written.append(path)
            results[self.DEM_OUT] = path
            path = output_path(self, parameters, self.TRUTH, context)
            write_raster(path, grid, arrays.truth_m, ("east", "north", "up"))
            written.append(path)
            load_styled(context, path, write_diverging_style(path, 3, robust_limit(arrays.truth_m[2], 100)))
            results[self.TRUTH] = path
            feedback.setProgress(70)
            check_canceled(feedback)

            xy = arrays.gnss_xy_m
            names = [f"S{i + 1:03d}" for i in range(len(xy))]
            dates = np.datetime64(start.isoformat()) + np.arange(arrays.gnss_m.shape[1])
            series = GnssSeries(names, grid.x0 + xy[:, 0], grid.y0 + xy[:, 1], dates, arrays.gnss_m.astype(np.float64))
            sink, dest = create_gnss_sink(self, parameters, self.GNSS, context, crs)
            write_gnss_features(sink, series)
            results[self.GNSS] = dest
            results[self.FAULT] = self._write_fault(parameters, context, crs, grid, arrays, start)
        except Exception:
            import os
            for path in written:
                for p in (path, path[:-4] + ".qml"):
                    if os.path.exists(p):
                        os.remove(p)
            raise
        feedback.setProgress(100)
        return results

    def _write_fault(self, parameters, context, crs, grid, arrays, start):
        import numpy as np
        history = arrays.slip_history
        onset = int(np.argmax(history > 0))
        duration = int(np.count_nonzero((history > 0) & (history < 1)))
        return write_fault_polygon(self, parameters, context, self.FAULT, crs, grid, arrays.fault, (
            ("onset_date", QVariant.String, (start + datetime.timedelta(days=onset)).isoformat()),
            ("duration_days", QVariant.Int, duration),
            ("max_displacement_m", QVariant.Double, float(np.abs(arrays.truth_m).max()))))
