"""GNSS daily time series: the in-memory type, and readers for NGL .tenv3, GEONET F5 .pos, CSV.

Conventions in :mod:`.conventions`: east/north/up in metres (any constant offset), one
sample per day, NaN where a day is missing. Readers return :class:`GnssSeries` with
``x``/``y`` = longitude/latitude [deg] (WGS 84 / ITRF; the difference is far below a pixel).
Every parsing error is a ``ValueError`` whose message starts with ``<file>, line <n>:``.

Formats
-------
NGL ``.tenv3`` (Nevada Geodetic Laboratory; ``README_tenv3.txt`` beside the test data)
    One line per day: station, ``YYMMMDD``, decimal year, MJD, GPS week and day, reference
    longitude, then east, north and up each as an integer and a fractional column [m]
    (the integer part may be re-initialised, so only integer + fraction is meaningful), then
    antenna height, sigmas and correlations; the newer files add latitude, longitude (which
    NGL may write as ``lon - 360``) and height. The day is taken from the MJD (exact) and
    checked against ``YYMMMDD``. East/north/up are NGL's local eastings from the reference
    meridian, northings from the equator and heights [m].
GEONET F5 ``.pos`` (Geospatial Information Authority of Japan)
    Header blocks ``+SITE/INF`` ... ``-SITE/INF`` (``ID`` = six-digit site code, ``RINEX``
    = four-character code) and ``+SOLVER/INF``; then ``+DATA`` ... ``-DATA`` holding one line
    per day ``yyyy mm dd HH:MM:SS X Y Z lat lon h`` (ECEF X, Y, Z [m], ITRF / GRS80); lines
    starting with ``*`` are column titles and rules. One file per station and year. ECEF is
    turned into local east/north/up about a reference position by :func:`.geometry.ecef_to_enu`.
Plain CSV
    A header row naming the columns ``station, date, lon, lat, east, north, up`` (any order,
    case-insensitive, other columns ignored; delimiter ``,``, ``;`` or tab), dates ISO
    ``YYYY-MM-DD``, lon/lat [deg], east/north/up [m]; ``nan`` marks a missing component;
    lines starting with ``#`` are comments.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .geometry import ecef_to_enu, ecef_to_lonlat  # noqa: F401 (ecef_to_enu: importers)
from .runtime import ProgressFn, report


@dataclass
class GnssSeries:
    """Daily E/N/U positions of a station network on a common, gap-free day axis.

    Attributes
    ----------
    stations : list of str
        Station names, length S.
    x, y : numpy.ndarray, shape (S,)
        Station coordinates in the CRS of the analysis [m] (or lon/lat [deg] when read
        from files, before projection).
    dates : numpy.ndarray of datetime64[D], shape (D,)
        Consecutive days.
    enu_m : numpy.ndarray, shape (S, D, 3)
        East, north, up [m]; NaN on days without a solution.
    """

    stations: List[str]
    x: np.ndarray
    y: np.ndarray
    dates: np.ndarray
    enu_m: np.ndarray

    def __post_init__(self):
        s, d = len(self.stations), len(self.dates)
        if self.enu_m.shape != (s, d, 3):
            raise ValueError(f"enu_m must have shape (stations, days, 3) = ({s}, {d}, 3), "
                             f"got {self.enu_m.shape}.")
        if self.x.shape != (s,) or self.y.shape != (s,):
            raise ValueError("x and y must hold one coordinate per station.")


#: Day 0 of the Modified Julian Date (MJD = JD - 2400000.5).
MJD_EPOCH = np.datetime64("1858-11-17", "D")

#: Two samples of one station and day closer than this [m] are the same solution.
DUPLICATE_TOLERANCE_M = 1e-4

#: A station whose lon/lat differs by more than this [deg] (about 1 m) between lines moves.
POSITION_TOLERANCE_DEG = 1e-5

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
CSV_COLUMNS = ("station", "date", "lon", "lat", "east", "north", "up")
FORMATS = ("tenv3", "pos", "csv")


# --------------------------------------------------------------------------------------
# dates and assembly


def parse_date(text) -> np.datetime64:
    """ISO ``YYYY-MM-DD`` (a time part after ``T`` or a space is ignored) -> datetime64[D].

    Also takes ``datetime.date``/``datetime64``. Raises ``ValueError`` for anything else.
    """
    if isinstance(text, np.datetime64):
        return text.astype("datetime64[D]")
    if isinstance(text, _dt.date):
        return np.datetime64(text.isoformat()[:10], "D")
    s = str(text).strip()
    day = s[:10]
    if len(s) > 10 and s[10] not in "T ":
        raise ValueError(f"'{s}' is not an ISO date YYYY-MM-DD.")
    try:
        return np.datetime64(_dt.date.fromisoformat(day).isoformat(), "D")
    except ValueError:
        raise ValueError(f"'{s}' is not an ISO date YYYY-MM-DD.") from None


def series_from_samples(station: Sequence[str], x: Sequence[float], y: Sequence[float],
                        dates: Sequence[np.datetime64], enu_m: np.ndarray,
                        where: Optional[Sequence[str]] = None,
                        position_tolerance: float = POSITION_TOLERANCE_DEG) -> GnssSeries:
    """Long format (one sample per station and day) -> :class:`GnssSeries`.

    Parameters
    ----------
    station, x, y, dates : sequences of length N
        Station name, station coordinate (any CRS), and day of every sample.
    enu_m : array (N, 3)
        East, north, up [m]; NaN for a missing component.
    where : sequence of str, optional
        Where each sample comes from (``"file.csv, line 7"``), used in error messages.
    position_tolerance : float
        Largest change of a station's x or y between samples [CRS units]; the first
        sample's position is kept.

    Returns
    -------
    GnssSeries
        Stations in order of first appearance; the day axis runs from the earliest to the
        latest sample, with NaN on the days in between that have none.

    Raises
    ------
    ValueError
        No samples; a station that moves; two different samples for one station and day.
    """
    n = len(station)
    if n == 0:
        raise ValueError("There are no GNSS samples.")
    where = list(where) if where is not None else [f"sample {i + 1}" for i in range(n)]
    enu = np.asarray(enu_m, dtype=np.float64).reshape(n, 3)
    days = np.asarray(dates, dtype="datetime64[D]")
    index: Dict[str, int] = {}
    first: List[int] = []
    for i, name in enumerate(station):
        k = index.setdefault(name, len(index))
        if k == len(first):
            first.append(i)
        else:
            j = first[k]
            if (abs(x[i] - x[j]) > position_tolerance or abs(y[i] - y[j]) > position_tolerance):
                raise ValueError(
                    f"{where[i]}: station {name} is at ({x[i]:.8g}, {y[i]:.8g}) but at "
                    f"({x[j]:.8g}, {y[j]:.8g}) in {where[j]}; a station must keep one position "
                    "(rename it if the antenna moved).")
    d0, d1 = days.min(), days.max()
    n_days = int((d1 - d0).astype(int)) + 1
    out = np.full((len(index), n_days, 3), np.nan)
    rows = np.array([index[s] for s in station])
    keys = rows * n_days + (days - d0).astype(np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    # the first sample of each (station, day) in input order, and the repeats
    first_of_group = order[np.searchsorted(sorted_keys, sorted_keys, side="left")]
    repeats = np.flatnonzero(np.r_[False, sorted_keys[1:] == sorted_keys[:-1]])
    for r in repeats:
        i, j = order[r], first_of_group[r]
        if not np.allclose(enu[i], enu[j], atol=DUPLICATE_TOLERANCE_M, rtol=0.0, equal_nan=True):
            raise ValueError(
                f"{where[i]}: station {station[i]} has a second, different solution for "
                f"{days[i]} (first in {where[j]}); keep one per day.")
    unique = np.setdiff1d(np.arange(n), order[repeats])
    out.reshape(-1, 3)[keys[unique]] = enu[unique]
    names = [station[i] for i in first]
    return GnssSeries(names, np.array([float(x[i]) for i in first]),
                      np.array([float(y[i]) for i in first]),
                      d0 + np.arange(n_days).astype("timedelta64[D]"), out)


# --------------------------------------------------------------------------------------
# NGL .tenv3


def _wrap_lon(lon: float) -> float:
    """Longitude in [-180, 180)."""
    return (lon + 180.0) % 360.0 - 180.0


def _tmerc_to_lonlat(reflon_deg: float, east_m: float, north_m: float) -> Tuple[float, float]:
    """Lon/lat of NGL eastings (from the reference meridian) and northings (from the equator).

    Used only for old ``.tenv3`` files without latitude/longitude columns: a transverse
    Mercator with scale 1 on the reference meridian, which agrees with NGL's coordinates to
    centimetres within the 0.1-degree zone (plenty for a station's map position).
    """
    from pyproj import CRS, Transformer
    tm = CRS.from_proj4(f"+proj=tmerc +lon_0={reflon_deg} +k=1 +x_0=0 +y_0=0 +ellps=WGS84")
    lon, lat = Transformer.from_crs(tm, "EPSG:4326", always_xy=True).transform(east_m, north_m)
    return float(lon), float(lat)


def read_tenv3(path: str) -> GnssSeries:
    """Read an NGL ``.tenv3`` file (format in the module docstring).

    Parameters
    ----------
    path : str
        The file.

    Returns
    -------
    GnssSeries
        One station per station name in the file (normally one); ``enu_m`` = NGL eastings,
        northings and heights [m] (integer + fractional columns); ``x``/``y`` = lon/lat
        [deg] of the first line (from its latitude/longitude columns, or, in old files,
        from the eastings and northings).

    Raises
    ------
    ValueError
        ``"<path>, line <n>: ..."`` for a line with too few or non-numeric columns, a date
        column that disagrees with the MJD, or a reference longitude that changes.

    References
    ----------
    .. [1] Blewitt, G., Hammond, W. C., Kreemer, C. (2018). Harnessing the GPS data
       explosion for interdisciplinary science. Eos 99, doi:10.1029/2018EO104623.
    """
    name = os.path.basename(path)
    station, xs, ys, dates, enu, where = [], [], [], [], [], []
    reflon: Dict[str, Tuple[float, int]] = {}
    position: Dict[str, Tuple[float, float]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if lineno == 1 and fields[0].lower() == "site":
                continue  # column titles of the newer files
            here = f"{name}, line {lineno}"
            if len(fields) < 20:
                raise ValueError(f"{here}: expected at least 20 columns of a .tenv3 line, "
                                 f"found {len(fields)}.")
            try:
                mjd = float(fields[3])
                values = [float(v) for v in fields[6:13]]
                lat_lon = (float(fields[20]), float(fields[21])) if len(fields) >= 23 else None
            except ValueError as exc:
                raise ValueError(f"{here}: a numeric column is not a number ({exc}).") from None
            if not all(np.isfinite(values)) or not np.isfinite(mjd):
                raise ValueError(f"{here}: a coordinate or the MJD is not finite.")
            day = MJD_EPOCH + np.timedelta64(int(np.floor(mjd)), "D")
            stamp = day.astype(_dt.date)
            expected = f"{stamp.year % 100:02d}{_MONTHS[stamp.month - 1]}{stamp.day:02d}"
            if fields[1].upper() != expected:
                raise ValueError(f"{here}: the date {fields[1]} disagrees with MJD {fields[3]} "
                                 f"({day}); the line is corrupt.")
            site = fields[0]
            ref, e_int, e_frac, n_int, n_frac, u_int, u_frac = values
            if site not in reflon:
                reflon[site] = (ref, lineno)
            elif ref != reflon[site][0]:
                raise ValueError(
                    f"{here}: the reference longitude of {site} changes from {reflon[site][0]} "
                    f"(line {reflon[site][1]}) to {ref}; eastings from different meridians "
                    "cannot be joined.")
            east, north, up = e_int + e_frac, n_int + n_frac, u_int + u_frac
            if site not in position:
                if lat_lon is not None:
                    position[site] = (_wrap_lon(lat_lon[1]), lat_lon[0])
                else:
                    lon, lat = _tmerc_to_lonlat(ref, east, north)
                    position[site] = (_wrap_lon(lon), lat)
            station.append(site)
            xs.append(position[site][0])
            ys.append(position[site][1])
            dates.append(day)
            enu.append((east, north, up))
            where.append(here)
    if not station:
        raise ValueError(f"{name}: no .tenv3 data lines found.")
    return series_from_samples(station, xs, ys, dates, np.array(enu), where)


# --------------------------------------------------------------------------------------
# GEONET F5 .pos


@dataclass
class PosFile:
    """Raw content of one GEONET F5 ``.pos`` file (see :func:`parse_pos`)."""

    path: str
    station: str
    dates: np.ndarray   # datetime64[D], shape (N,)
    xyz_m: np.ndarray   # ECEF [m], shape (N, 3)
    lines: List[int]    # line number of each sample


def parse_pos(path: str) -> PosFile:
    """Parse a GEONET F5 ``.pos`` file without converting coordinates.

    The station name is the ``ID`` of ``+SITE/INF`` (six-digit GEONET code), else its
    ``RINEX`` code, else the file name up to the first dot.

    Raises
    ------
    ValueError
        ``"<path>, line <n>: ..."`` for a malformed data line; a file without ``+SITE/INF``
        or ``+DATA``, or cut before ``-DATA`` (a truncated download).
    """
    name = os.path.basename(path)
    block = None
    seen_site = seen_data = ended = False
    info: Dict[str, str] = {}
    dates, xyz, lines = [], [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            if text.startswith("+"):
                block = text[1:].upper()
                seen_site |= block == "SITE/INF"
                seen_data |= block == "DATA"
                continue
            if text.startswith("-"):
                if text[1:].upper() == "DATA":
                    ended = True
                block = None
                continue
            if block == "SITE/INF":
                key, _, value = text.partition(" ")
                info.setdefault(key.upper(), value.strip())
            elif block == "DATA" and not text.startswith("*"):
                here = f"{name}, line {lineno}"
                fields = text.split()
                if len(fields) < 7:
                    raise ValueError(f"{here}: expected 'yyyy mm dd HH:MM:SS X Y Z lat lon h', "
                                     f"found {len(fields)} columns.")
                try:
                    day = np.datetime64(_dt.date(int(fields[0]), int(fields[1]),
                                                 int(fields[2])).isoformat(), "D")
                    values = [float(v) for v in fields[4:7]]
                except ValueError as exc:
                    raise ValueError(f"{here}: unreadable date or coordinate ({exc}).") from None
                if not all(np.isfinite(values)) or np.linalg.norm(values) < 6.0e6:
                    raise ValueError(f"{here}: X, Y, Z = {fields[4:7]} is not a position on "
                                     "the Earth (ECEF metres).")
                dates.append(day)
                xyz.append(values)
                lines.append(lineno)
    if not seen_site:
        raise ValueError(f"{name}: no +SITE/INF block; this is not a GEONET F5 .pos file.")
    if not seen_data:
        raise ValueError(f"{name}: no +DATA block; this is not a GEONET F5 .pos file.")
    if not ended:
        raise ValueError(f"{name}: the +DATA block has no -DATA end line; the file is truncated.")
    if not dates:
        raise ValueError(f"{name}: the +DATA block holds no daily positions.")
    station = info.get("ID") or info.get("RINEX") or name.split(".")[0]
    return PosFile(path, station.split()[0], np.array(dates, dtype="datetime64[D]"),
                   np.array(xyz), lines)


def read_pos(path: str, reference_xyz_m: Optional[Sequence[float]] = None) -> GnssSeries:
    """Read a GEONET F5 ``.pos`` file (format in the module docstring).

    Parameters
    ----------
    path : str
        The file.
    reference_xyz_m : 3 floats, optional
        ECEF origin [m] of the local frame; default the file's first position. Give the
        same origin to every file of one station (:func:`read_gnss_files` does).

    Returns
    -------
    GnssSeries
        One station; ``enu_m`` from :func:`.geometry.ecef_to_enu`; ``x``/``y`` = lon/lat [deg] of
        the reference position.
    """
    pos = parse_pos(path)
    return _pos_series([pos], reference_xyz_m)


def _pos_series(files: Sequence[PosFile], reference_xyz_m=None) -> GnssSeries:
    """One station's .pos files -> GnssSeries in a common local frame."""
    ref = np.asarray(reference_xyz_m if reference_xyz_m is not None else files[0].xyz_m[0])
    lon, lat, _ = ecef_to_lonlat(ref)
    dates = np.concatenate([p.dates for p in files])
    enu = ecef_to_enu(np.concatenate([p.xyz_m for p in files]), ref)
    where = [f"{os.path.basename(p.path)}, line {n}" for p in files for n in p.lines]
    n = len(dates)
    return series_from_samples([files[0].station] * n, [lon] * n, [lat] * n, dates, enu, where)


# --------------------------------------------------------------------------------------
# CSV


def read_csv(path: str) -> GnssSeries:
    """Read a plain CSV file of daily positions (format in the module docstring).

    Returns
    -------
    GnssSeries
        One entry per station, positions from the station's first line.

    Raises
    ------
    ValueError
        ``"<path>, line <n>: ..."`` for a missing column title, a wrong column count, an
        unreadable date or number, a station that moves, or two different lines for one
        station and day.
    """
    name = os.path.basename(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        numbered = [(n, line) for n, line in enumerate(f, 1)
                    if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise ValueError(f"{name}: the file is empty.")
    header_line, header = numbered[0]
    delimiter = max(",;\t", key=header.count)
    rows = csv.reader([line for _, line in numbered], delimiter=delimiter)
    titles = [t.strip().lower() for t in next(rows)]
    missing = [c for c in CSV_COLUMNS if c not in titles]
    if missing:
        raise ValueError(f"{name}, line {header_line}: the header lacks the column(s) "
                         f"{', '.join(missing)}; expected {', '.join(CSV_COLUMNS)}.")
    col = {c: titles.index(c) for c in CSV_COLUMNS}
    station, xs, ys, dates, enu, where = [], [], [], [], [], []
    for (lineno, _), row in zip(numbered[1:], rows):
        here = f"{name}, line {lineno}"
        if len(row) != len(titles):
            raise ValueError(f"{here}: {len(row)} columns where the header has {len(titles)}.")
        site = row[col["station"]].strip()
        if not site:
            raise ValueError(f"{here}: the station name is empty.")
        try:
            day = parse_date(row[col["date"]])
        except ValueError as exc:
            raise ValueError(f"{here}: {exc}") from None
        try:
            lon, lat, e, n, u = (float(row[col[c]]) for c in ("lon", "lat", "east", "north", "up"))
        except ValueError as exc:
            raise ValueError(f"{here}: a number cannot be read ({exc}).") from None
        if not (-180.0 <= lon <= 360.0 and -90.0 <= lat <= 90.0):
            raise ValueError(f"{here}: lon {lon}, lat {lat} is not a longitude/latitude in degrees.")
        station.append(site)
        xs.append(_wrap_lon(lon))
        ys.append(lat)
        dates.append(day)
        enu.append((e, n, u))
        where.append(here)
    if not station:
        raise ValueError(f"{name}: the file has a header but no data lines.")
    return series_from_samples(station, xs, ys, dates, np.array(enu), where)


# --------------------------------------------------------------------------------------
# several files


def detect_format(path: str) -> str:
    """``"tenv3"``, ``"pos"`` or ``"csv"`` from the file name, else from the first line."""
    lower = path.lower()
    for ext, fmt in ((".tenv3", "tenv3"), (".pos", "pos"), (".csv", "csv")):
        if lower.endswith(ext):
            return fmt
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    if first.strip().upper().startswith("+SITE/INF"):
        return "pos"
    if first.split()[:2] == ["site", "YYMMMDD"] or len(first.split()) in (20, 23):
        return "tenv3"
    if "station" in first.lower() and "date" in first.lower():
        return "csv"
    raise ValueError(f"{os.path.basename(path)}: cannot tell the format; expected an NGL "
                     ".tenv3, a GEONET F5 .pos or a CSV file with columns "
                     f"{', '.join(CSV_COLUMNS)}.")


def merge_series(series: Sequence[GnssSeries], labels: Optional[Sequence[str]] = None,
                 start_date=None, end_date=None) -> GnssSeries:
    """Merge station sets onto one consecutive day axis, cut to ``[start_date, end_date]``.

    A station present in several inputs keeps the first input's position and takes the
    days of all of them; a day given twice must agree to ``DUPLICATE_TOLERANCE_M``.
    Stations without a sample in the window are dropped; the day axis runs from the first
    to the last day with a sample (inside the window), NaN on days without one.

    Parameters
    ----------
    series : sequence of GnssSeries
    labels : sequence of str, optional
        Names of the inputs (file names) for error messages.
    start_date, end_date : ISO text, datetime.date or datetime64, optional
        Inclusive window.

    Raises
    ------
    ValueError
        No sample in the window, an empty window, or conflicting duplicate days.
    """
    labels = list(labels) if labels is not None else [f"input {i + 1}" for i in range(len(series))]
    start = parse_date(start_date) if start_date not in (None, "") else None
    end = parse_date(end_date) if end_date not in (None, "") else None
    if start is not None and end is not None and end < start:
        raise ValueError(f"The end date {end} is before the start date {start}.")
    station, xs, ys, dates, enu, where = [], [], [], [], [], []
    for s, label in zip(series, labels):
        keep = np.ones(len(s.dates), dtype=bool)
        if start is not None:
            keep &= s.dates >= start
        if end is not None:
            keep &= s.dates <= end
        for k, name in enumerate(s.stations):
            valid = keep & np.any(np.isfinite(s.enu_m[k]), axis=1)
            for d in np.flatnonzero(valid):
                station.append(name)
                xs.append(s.x[k])
                ys.append(s.y[k])
                dates.append(s.dates[d])
                enu.append(s.enu_m[k, d])
                where.append(label)
    if not station:
        window = f" between {start or 'the start'} and {end or 'the end'}" if (start or end) else ""
        raise ValueError(f"No GNSS sample{window} in {', '.join(labels) or 'the input'}.")
    return series_from_samples(station, xs, ys, dates, np.array(enu), where,
                               position_tolerance=np.inf)


def read_gnss_files(paths: Sequence[str], start_date=None, end_date=None,
                    relative_to_first: bool = True,
                    progress: ProgressFn = None) -> GnssSeries:
    """Read and merge ``.tenv3``, ``.pos`` and CSV files (format from the name or content).

    All ``.pos`` files of one station share the local frame of its earliest position, so
    yearly files join without a jump.

    Parameters
    ----------
    paths : sequence of str
    start_date, end_date : ISO ``YYYY-MM-DD``, optional
        Inclusive window; the day axis spans the samples inside it.
    relative_to_first : bool
        Subtract each station's first sample in the window (per component), so every
        series starts at 0 and holds displacement [m]; otherwise keep each format's frame
        (NGL eastings/northings/heights, .pos local ENU, CSV as given).
    progress : callable(fraction, message), optional
        Called with the fraction of files read (0-1) and the file's name after each file; it
        may raise to stop.

    Returns
    -------
    GnssSeries
        ``x``/``y`` = lon/lat [deg].

    Raises
    ------
    ValueError
        Any reader's error (file and line), one station in files of different formats, no
        sample in the window.
    """
    if not paths:
        raise ValueError("No GNSS files given.")
    loaded: List[Tuple[str, str, object]] = []  # (label, format, GnssSeries | PosFile)
    for i, path in enumerate(paths):
        label = os.path.basename(path)
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such file.")
        fmt = detect_format(path)
        data = {"tenv3": read_tenv3, "pos": parse_pos, "csv": read_csv}[fmt](path)
        loaded.append((label, fmt, data))
        report(progress, (i + 1) / len(paths), f"{label} read")
    # one station, one format: the frames of different formats have different origins
    formats: Dict[str, Tuple[str, str]] = {}
    for label, fmt, data in loaded:
        for name in ([data.station] if fmt == "pos" else data.stations):
            other = formats.setdefault(name, (fmt, label))
            if other[0] != fmt:
                raise ValueError(
                    f"Station {name} is in {other[1]} ({other[0]}) and in {label} ({fmt}); "
                    "their east/north/up have different origins: give it in one format.")
    series, labels = [], []
    pos_by_station: Dict[str, List[PosFile]] = {}
    for label, fmt, data in loaded:
        if fmt == "pos":
            pos_by_station.setdefault(data.station, []).append(data)
        else:
            series.append(data)
            labels.append(label)
    for files in pos_by_station.values():
        files = sorted(files, key=lambda p: p.dates.min())
        series.append(_pos_series(files))
        labels.append(", ".join(os.path.basename(p.path) for p in files))
    merged = merge_series(series, labels, start_date, end_date)
    if relative_to_first:
        for k in range(len(merged.stations)):
            for c in range(3):
                valid = np.flatnonzero(np.isfinite(merged.enu_m[k, :, c]))
                if valid.size:
                    merged.enu_m[k, :, c] -= merged.enu_m[k, valid[0], c]
    return merged


# --------------------------------------------------------------------------------------
# common-mode filter


def common_mode_filter(series: GnssSeries, min_stations: int = 3) -> Tuple[GnssSeries, np.ndarray]:
    """Remove the network's common-mode error by stacking (Wdowinski et al. 1997).

    For each station and component, a straight line is fitted by least squares to the
    available days and removed; the common mode of a day is the mean of these residuals
    over the stations observed that day (NaN-aware); it is subtracted from every station.

    Parameters
    ----------
    series : GnssSeries
        Daily positions [m], NaN gaps allowed.
    min_stations : int
        Fewest stations whose residuals form a day's common mode. Days with fewer get a NaN
        common mode and are set to NaN in the output (left out rather than passed on
        uncorrected).

    Returns
    -------
    filtered : GnssSeries
        Same stations, positions and days; ``enu_m - common_mode``.
    common_mode : numpy.ndarray (D, 3)
        East, north, up common mode [m] per day.

    Raises
    ------
    ValueError
        Fewer than ``min_stations`` stations with at least two days.

    Notes
    -----
    Any signal shared by the whole network is removed with the error: a coseismic step or a
    slow slip that moves every station alike partly goes into the common mode. Wdowinski et
    al. estimated the filter from stations and days away from the event; use a network wider
    than the deformation, or run the filter on the days before the event.

    References
    ----------
    .. [1] Wdowinski, S., Bock, Y., Zhang, J., Fang, P., Genrich, J. (1997). Southern
       California Permanent GPS Geodetic Array: Spatial filtering of daily positions for
       estimating coseismic and postseismic displacements induced by the 1992 Landers
       earthquake. J. Geophys. Res. 102(B8), 18057-18070, doi:10.1029/97JB01378.
    """
    if min_stations < 1:
        raise ValueError(f"min_stations must be at least 1, got {min_stations}.")
    enu = series.enu_m
    n_sta, n_days, _ = enu.shape
    t = np.arange(n_days, dtype=np.float64)
    residual = np.full_like(enu, np.nan)
    usable = 0
    for k in range(n_sta):
        station_used = False
        for c in range(3):
            valid = np.isfinite(enu[k, :, c])
            if valid.sum() < 2:
                continue
            slope, intercept = np.polyfit(t[valid], enu[k, valid, c], 1)
            residual[k, valid, c] = enu[k, valid, c] - (slope * t[valid] + intercept)
            station_used = True
        usable += station_used
    if usable < min_stations:
        raise ValueError(f"The common-mode filter needs at least {min_stations} stations with "
                         f"two or more days; {usable} of {n_sta} have them.")
    count = np.sum(np.isfinite(residual), axis=0)
    total = np.nansum(residual, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        common = np.where(count >= min_stations, total / np.maximum(count, 1), np.nan)
    filtered = GnssSeries(list(series.stations), series.x.copy(), series.y.copy(),
                          series.dates.copy(), enu - common[None, :, :])
    return filtered, common
