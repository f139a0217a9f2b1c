"""``insargnss3d:importgnss``: NGL .tenv3, GEONET F5 .pos and CSV files -> GNSS point layer."""

from qgis.core import (QgsCoordinateReferenceSystem, QgsProcessing, QgsProcessingException,
                       QgsProcessingParameterBoolean, QgsProcessingParameterFeatureSink,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterString)

from .common import InsarGnssAlgorithm, check_canceled, sink_destination_check
from .gnss_layer import create_gnss_sink, write_gnss_features


class ImportGnssAlgorithm(InsarGnssAlgorithm):
    """Read GNSS daily position files into one point layer in the GNSS format."""

    NAME = "importgnss"
    DISPLAY_NAME = "Import GNSS time series (.tenv3, .pos, CSV)"
    GROUP = "GNSS"
    HELP = (
        "Reads daily GNSS positions and writes the GNSS point layer the other tools take: one "
        "point per station per day (EPSG:4326), fields <i>station</i>, <i>date</i> (ISO "
        "YYYY-MM-DD text), <i>east</i>, <i>north</i>, <i>up</i> [m]. Days without a solution "
        "have no point.<br>"
        "<b>FILES</b> (repeat on the command line: FILES=a FILES=b), any mix of<ul>"
        "<li>NGL <b>.tenv3</b> (Nevada Geodetic Laboratory): east/north/up = integer + "
        "fractional columns [m], day from the MJD column;</li>"
        "<li>GEONET F5 <b>.pos</b> (GSI Japan, one file per station and year): ECEF X, Y, Z "
        "turned into local east/north/up about the station's earliest position, so the yearly "
        "files of a station join without a jump;</li>"
        "<li><b>CSV</b> with a header naming station, date, lon, lat, east, north, up.</li></ul>"
        "A station given in two formats is refused (their origins differ).<br>"
        "<b>START_DATE</b>, <b>END_DATE</b>: optional inclusive window (YYYY-MM-DD). Each "
        "station's east/north/up is then shifted so that its first day in the window is 0 "
        "(displacement since the start, metres). The CNN takes 121-day windows.<br>"
        "<b>COMMON_MODE</b>: remove the network's common-mode error by stacking (Wdowinski et "
        "al. 1997, JGR 102(B8), 18057-18070): each station is detrended, the daily mean of the "
        "residuals over the stations (at least 3) is subtracted from all. It also removes any "
        "deformation shared by the whole network, so use a network wider than the event.<br>"
        "A malformed line stops the import with its file name and line number.")

    FILES, START_DATE, END_DATE = "FILES", "START_DATE", "END_DATE"
    COMMON_MODE, OUTPUT = "COMMON_MODE", "OUTPUT"

    def initAlgorithm(self, config=None):  # noqa: N802
        """Parameters (names fixed by DESIGN.md)."""
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.FILES, "GNSS files (.tenv3, .pos, .csv)", QgsProcessing.TypeFile))
        self.addParameter(QgsProcessingParameterString(
            self.START_DATE, "First day (YYYY-MM-DD)", optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.END_DATE, "Last day (YYYY-MM-DD)", optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.COMMON_MODE, "Remove common-mode error (Wdowinski et al. 1997)", False))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, "GNSS daily positions", QgsProcessing.TypeVectorPoint))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Read, merge, optionally filter, then write in one go."""
        from ..core.gnss_io import common_mode_filter, read_gnss_files

        sink_destination_check(self, parameters, self.OUTPUT, context)      # before any work
        paths = self.parameterAsFileList(parameters, self.FILES, context)
        if not paths:
            raise QgsProcessingException("FILES: give at least one .tenv3, .pos or CSV file.")
        start = self.parameterAsString(parameters, self.START_DATE, context).strip() or None
        end = self.parameterAsString(parameters, self.END_DATE, context).strip() or None

        def progress(fraction, message):
            check_canceled(feedback)
            feedback.setProgress(70.0 * fraction)

        try:
            series = read_gnss_files(paths, start, end, relative_to_first=True, progress=progress)
            if self.parameterAsBoolean(parameters, self.COMMON_MODE, context):
                series, common = common_mode_filter(series)
                feedback.pushInfo("Common mode removed; its scatter (std) east/north/up: "
                                  + ", ".join(f"{1e3 * v:.2f}" for v in _nanstd(common)) + " mm.")
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from None
        n_days = len(series.dates)
        feedback.pushInfo(f"{len(series.stations)} station(s), {series.dates[0]} to "
                          f"{series.dates[-1]} ({n_days} days).")
        if n_days != 121:
            feedback.pushInfo(f"Note: the CNN (extractdisplacement) takes a 121-day window; these "
                              f"series span {n_days} days. Set START_DATE and END_DATE to choose it.")
        check_canceled(feedback)
        sink, dest_id = create_gnss_sink(self, parameters, self.OUTPUT, context,
                                         QgsCoordinateReferenceSystem("EPSG:4326"))
        count = write_gnss_features(sink, series)
        feedback.setProgress(100.0)
        feedback.pushInfo(f"{count} daily points written.")
        return {self.OUTPUT: dest_id}


def _nanstd(common):
    """Per-component standard deviation over the finite days."""
    import numpy as np
    return [float(np.nanstd(common[:, c])) if np.isfinite(common[:, c]).any() else float("nan")
            for c in range(3)]
