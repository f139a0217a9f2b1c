"""GNSS readers (.tenv3, GEONET F5 .pos, CSV), merging, and the common-mode filter (no QGIS)."""

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

from insar_gnss_3d.core import gnss_io
from insar_gnss_3d.core.gnss_io import (GnssSeries, common_mode_filter, ecef_to_enu, merge_series,
                                        read_csv, read_gnss_files, read_pos, read_tenv3)

DATA = Path(__file__).resolve().parents[1] / "data"
LHAS = DATA / "LHAS_2005.tenv3"
LHAS_FULL = Path("/work/shared/data/gnss/LHAS.tenv3")


# ------------------------------------------------------------------ fixtures written by code

def enu_to_ecef(enu, lon0, lat0, h0):
    """ECEF of local ENU offsets about (lon0, lat0, h0): the transpose of the ENU rotation."""
    x0 = np.array(Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True).transform(lon0, lat0, h0))
    lam, phi = np.radians(lon0), np.radians(lat0)
    rot = np.array([[-np.sin(lam), np.cos(lam), 0.0],
                    [-np.sin(phi) * np.cos(lam), -np.sin(phi) * np.sin(lam), np.cos(phi)],
                    [np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)]])
    return x0 + np.asarray(enu) @ rot


def write_pos(path, site, dates, xyz, end_marker=True, extra_line=None):
    """A GEONET F5 .pos file in the documented layout (+SITE/INF, +SOLVER/INF, +DATA ... -DATA)."""
    to_llh = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)
    rule = "*----+--+--+--------+" + "-----------------+" * 6
    lines = ["+SITE/INF", f" ID           {site}", f" RINEX        {site[-4:]}",
             " J_NAME       テスト", " E_NAME       TEST", "-SITE/INF", "",
             "+SOLVER/INF", " SOFT_NAME    Bernese", " EPHEMERIS    IGS", " SOLUTION_ID  F5(GPS)",
             " VERSION      00", " COORDINATE   ITRF2014", " ELLIPSOID    GRS80", "-SOLVER/INF", "",
             "+DATA",
             "*yyyy mm dd HH:MM:SS       X (m)             Y (m)             Z (m)         "
             "Lat. (deg.)       Lon. (deg.)       Height (m)", rule]
    for day, (x, y, z) in zip(dates, xyz):
        lon, lat, h = to_llh.transform(x, y, z)
        d = dt.date.fromisoformat(str(day))
        lines.append(f" {d.year:04d} {d.month:02d} {d.day:02d} 12:00:00 {x: .10E}  {y: .10E}  "
                     f"{z: .10E}  {lat: .10E}  {lon: .10E}  {h: .10E} ")
    if extra_line is not None:
        lines.append(extra_line)
    lines.append(rule)
    if end_marker:
        lines.append("-DATA")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def write_csv(path, rows, header="station,date,lon,lat,east,north,up"):
    """Plain CSV with a header row."""
    Path(path).write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return Path(path)


def days(start, n):
    """n consecutive datetime64[D] from ISO ``start``."""
    return np.datetime64(start, "D") + np.arange(n)


# ------------------------------------------------------------------ .tenv3

def test_core_does_not_import_qgis():
    code = ("import sys; sys.modules['qgis'] = None; "
            "import insar_gnss_3d.core.gnss_io as g; print(g.read_tenv3)")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "build" / "plugins")})


def test_tenv3_real_slice_numbers():
    s = read_tenv3(str(LHAS))
    assert s.stations == ["LHAS"]
    # position from the first line's latitude/longitude columns; NGL writes lon - 360
    np.testing.assert_allclose([s.x[0], s.y[0]], [-268.8960094935 + 360.0, 29.6573407051], atol=1e-9)
    assert s.dates[0] == np.datetime64("2005-05-16")      # MJD 53506
    assert s.dates[-1] == np.datetime64("2006-01-15")     # MJD 53750
    assert len(s.dates) == 245 and np.isfinite(s.enu_m[0, :, 0]).sum() == 200
    # "LHAS 05MAY16 ... 385  1.345004   3282129  0.765157  3624  0.658052": integer + fraction
    np.testing.assert_allclose(s.enu_m[0, 0], [386.345004, 3282129.765157, 3624.658052], rtol=0, atol=1e-9)
    # "LHAS 05JUL03 ... 385  1.349254   3282129  0.768106  3624  0.651482"; 05JUL02 is missing
    k = int((np.datetime64("2005-07-03") - s.dates[0]).astype(int))
    np.testing.assert_allclose(s.enu_m[0, k], [386.349254, 3282129.768106, 3624.651482], rtol=0, atol=1e-9)
    assert np.all(np.isnan(s.enu_m[0, k - 1]))
    # the 22-day gap 2005-11-09 .. 2005-11-30 between lines 05NOV08 and 05DEC01
    gap = (s.dates >= np.datetime64("2005-11-09")) & (s.dates <= np.datetime64("2005-11-30"))
    assert gap.sum() == 22 and np.all(np.isnan(s.enu_m[0, gap]))
    assert np.all(np.isfinite(s.enu_m[0, s.dates == np.datetime64("2005-11-08")]))


@pytest.mark.skipif(not LHAS_FULL.exists(), reason="the shared full LHAS.tenv3 is not on this machine")
def test_tenv3_full_real_file():
    s = read_tenv3(str(LHAS_FULL))
    assert (s.dates[0], s.dates[-1]) == (np.datetime64("1995-05-19"), np.datetime64("2007-01-29"))
    assert np.isfinite(s.enu_m[0, :, 0]).sum() == 3631
    # Lhasa moves about 4.6 cm/yr east and 2 cm/yr north in ITRF (India-Eurasia collision)
    t = (s.dates - s.dates[0]).astype(float) / 365.25
    ok = np.isfinite(s.enu_m[0, :, 0])
    ve, vn = (np.polyfit(t[ok], s.enu_m[0, ok, c], 1)[0] for c in (0, 1))
    assert 0.040 < ve < 0.050 and 0.015 < vn < 0.025


def test_tenv3_old_format_position_from_eastings(tmp_path):
    # drop the three latitude/longitude/height columns: the position comes from the eastings
    lines = LHAS.read_text().splitlines()
    old = tmp_path / "LHAS_old.tenv3"
    old.write_text("\n".join(" ".join(line.split()[:20]) for line in lines[1:]) + "\n")
    s_old, s_new = read_tenv3(str(old)), read_tenv3(str(LHAS))
    np.testing.assert_allclose([s_old.x[0], s_old.y[0]], [s_new.x[0], s_new.y[0]], atol=2e-7)
    np.testing.assert_array_equal(s_old.enu_m, s_new.enu_m)


@pytest.mark.parametrize("edit, message", [
    (lambda f: f[:12], "line 4: expected at least 20 columns"),
    (lambda f: f[:8] + ["1.3x5"] + f[9:], "line 4: a numeric column is not a number"),
    (lambda f: f[:1] + ["05MAY20"] + f[2:], "line 4: the date 05MAY20 disagrees with MJD 53508"),
    (lambda f: f[:6] + ["91.2"] + f[7:], "line 4: the reference longitude of LHAS changes"),
])
def test_tenv3_malformed_line_names_file_and_line(tmp_path, edit, message):
    lines = LHAS.read_text().splitlines()
    lines[3] = " ".join(edit(lines[3].split()))
    bad = tmp_path / "bad.tenv3"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=f"bad.tenv3, {message}"):
        read_tenv3(str(bad))


# ------------------------------------------------------------------ GEONET F5 .pos

def test_ecef_to_enu_matches_iogp_example_and_proj():
    # IOGP Guidance Note 7-2, geocentric/topocentric example (EPSG method 9836)
    ref = [3652755.3058, 319574.6799, 5201547.3536]
    point = np.array([3771793.968, 140253.342, 5124304.349])
    np.testing.assert_allclose(ecef_to_enu(point, ref), [-189013.869, -128642.040, -4220.171], atol=1e-3)
    proj = Transformer.from_pipeline(
        f"+proj=topocentric +ellps=WGS84 +X_0={ref[0]} +Y_0={ref[1]} +Z_0={ref[2]}")
    rng = np.random.default_rng(1)
    pts = np.array(ref) + rng.normal(scale=5e3, size=(20, 3))
    np.testing.assert_allclose(ecef_to_enu(pts, ref), np.column_stack(proj.transform(*pts.T)), atol=1e-6)


def test_pos_crafted_file_recovers_enu(tmp_path):
    lon0, lat0, h0 = 130.7, 32.8, 120.0            # Kumamoto
    n = 30
    t = np.arange(n, dtype=float)
    truth = np.column_stack([0.002 * t, -0.001 * t, 0.05 * (t >= 15)])   # creep + a 5 cm uplift step
    dates = days("2016-04-01", n)
    keep = np.r_[0:10, 12:n]                         # two missing days
    path = write_pos(tmp_path / "950462.16.pos", "950462", dates[keep], enu_to_ecef(truth[keep], lon0, lat0, h0))
    s = read_pos(str(path))
    assert s.stations == ["950462"]
    np.testing.assert_allclose([s.x[0], s.y[0]], [lon0, lat0], atol=1e-8)
    assert len(s.dates) == n and s.dates[0] == dates[0]
    np.testing.assert_allclose(s.enu_m[0, keep], truth[keep], atol=2e-4)   # file holds 0.1 mm
    assert np.all(np.isnan(s.enu_m[0, 10:12]))


@pytest.mark.parametrize("kwargs, message", [
    (dict(extra_line=" 2016 04 31 12:00:00 -3.5E+06 3.9E+06 3.4E+06 0 0 0"),
     r"950462.16.pos, line 23: unreadable date"),
    (dict(extra_line=" 2016 05 01 12:00:00 -3.5E+06 3.9E+06"), r"950462.16.pos, line 23: expected"),
    (dict(extra_line=" 2016 05 01 12:00:00 0.0 0.0 0.0 0 0 0"), r"950462.16.pos, line 23: X, Y, Z"),
    (dict(end_marker=False), "no -DATA end line; the file is truncated"),
])
def test_pos_malformed(tmp_path, kwargs, message):
    xyz = enu_to_ecef(np.zeros((3, 3)), 130.7, 32.8, 0.0)
    path = write_pos(tmp_path / "950462.16.pos", "950462", days("2016-04-01", 3), xyz, **kwargs)
    with pytest.raises(ValueError, match=message):
        read_pos(str(path))


def test_pos_without_site_block_is_refused(tmp_path):
    path = tmp_path / "x.pos"
    path.write_text("+DATA\n 2016 04 01 12:00:00 -3.5E+06 3.9E+06 3.4E+06 0 0 0\n-DATA\n")
    with pytest.raises(ValueError, match="x.pos: no \\+SITE/INF block"):
        read_pos(str(path))


def test_yearly_pos_files_join_without_a_jump(tmp_path):
    lon0, lat0 = 131.0, 33.0
    dates = days("2015-12-20", 24)
    truth = np.column_stack([0.001 * np.arange(24), np.zeros(24), np.zeros(24)])
    xyz = enu_to_ecef(truth, lon0, lat0, 50.0) + 10.0   # station 10 m from the frame origin
    a = write_pos(tmp_path / "950001.15.pos", "950001", dates[:12], xyz[:12])
    b = write_pos(tmp_path / "950001.16.pos", "950001", dates[12:], xyz[12:])
    s = read_gnss_files([str(b), str(a)])
    assert s.stations == ["950001"] and len(s.dates) == 24
    np.testing.assert_allclose(s.enu_m[0], truth, atol=2e-4)


# ------------------------------------------------------------------ CSV

def test_csv_two_stations_with_gap(tmp_path):
    rows = [("A", "2020-01-01", 130.5, 32.5, 0.0, 0.0, 0.0),
            ("A", "2020-01-04", 130.5, 32.5, 0.003, 0.001, "nan"),
            ("B", "2020-01-02", 131.0, 33.0, 1.0, 2.0, 3.0)]
    s = read_csv(str(write_csv(tmp_path / "net.csv", rows)))
    assert s.stations == ["A", "B"]
    np.testing.assert_allclose(s.x, [130.5, 131.0])
    np.testing.assert_array_equal(s.dates, days("2020-01-01", 4))
    np.testing.assert_allclose(s.enu_m[0, 3, :2], [0.003, 0.001])
    assert np.isnan(s.enu_m[0, 3, 2]) and np.all(np.isnan(s.enu_m[0, 1:3]))
    np.testing.assert_allclose(s.enu_m[1, 1], [1.0, 2.0, 3.0])


def test_csv_columns_in_any_order_with_semicolons(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("# comment\nup;east;Station;date;north;lat;lon;note\n3;1;S1;2021-05-01;2;10;20;ok\n")
    s = read_csv(str(path))
    assert s.stations == ["S1"] and (s.x[0], s.y[0]) == (20.0, 10.0)
    np.testing.assert_allclose(s.enu_m[0, 0], [1, 2, 3])


@pytest.mark.parametrize("rows, message", [
    ([("A", "2020-01-01", 130.5, 32.5, 0, 0, 0), ("A", "2020/01/02", 130.5, 32.5, 0, 0, 0)],
     "net.csv, line 3: '2020/01/02' is not an ISO date"),
    ([("A", "2020-01-01", 130.5, 32.5, 0, 0, 0), ("A", "2020-01-02", 130.5, 32.5, "x", 0, 0)],
     "net.csv, line 3: a number cannot be read"),
    ([("A", "2020-01-01", 130.5, 32.5, 0, 0, 0), ("A", "2020-01-02", 130.5, 32.5, 0, 0)],
     "net.csv, line 3: 6 columns where the header has 7"),
    ([("A", "2020-01-01", 130.5, 32.5, 0, 0, 0), ("A", "2020-01-02", 130.6, 32.5, 0, 0, 0)],
     "net.csv, line 3: station A is at"),
    ([("A", "2020-01-01", 130.5, 32.5, 0, 0, 0), ("A", "2020-01-01", 130.5, 32.5, 0.5, 0, 0)],
     "net.csv, line 3: station A has a second, different solution for 2020-01-01 .first in net.csv, line 2"),
    ([("A", "2020-01-01", 130.5, 95.0, 0, 0, 0)], "net.csv, line 2: lon 130.5, lat 95.0"),
])
def test_csv_malformed(tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        read_csv(str(write_csv(tmp_path / "net.csv", rows)))


def test_csv_missing_column(tmp_path):
    with pytest.raises(ValueError, match="net.csv, line 1: the header lacks the column.s. up"):
        read_csv(str(write_csv(tmp_path / "net.csv", [("A", "2020-01-01", 1, 2, 3, 4)],
                               header="station,date,lon,lat,east,north")))


# ------------------------------------------------------------------ merging and cutting

def test_read_gnss_files_merges_cuts_and_zeroes(tmp_path):
    csv_path = write_csv(tmp_path / "net.csv", [
        ("K1", "2005-06-01", 130.0, 32.0, 0.5, 0.5, 0.5),
        ("K1", "2005-06-05", 130.0, 32.0, 0.6, 0.5, 0.4),
        ("K1", "2006-02-01", 130.0, 32.0, 9.0, 9.0, 9.0)])
    s = read_gnss_files([str(LHAS), str(csv_path)], start_date="2005-06-01", end_date="2005-06-30")
    assert s.stations == ["LHAS", "K1"]
    np.testing.assert_array_equal(s.dates, days("2005-06-01", 30))
    # K1: relative to its first day in the window; LHAS: idem; days without data NaN
    np.testing.assert_allclose(s.enu_m[1, 0], [0, 0, 0])
    np.testing.assert_allclose(s.enu_m[1, 4], [0.1, 0.0, -0.1], atol=1e-12)
    assert np.all(np.isnan(s.enu_m[1, 5:]))
    lhas = read_tenv3(str(LHAS))
    k0 = int((np.datetime64("2005-06-01") - lhas.dates[0]).astype(int))
    expected = lhas.enu_m[0, k0:k0 + 30] - lhas.enu_m[0, k0]
    np.testing.assert_allclose(s.enu_m[0], expected, atol=1e-9)
    # same numbers without zeroing
    raw = read_gnss_files([str(LHAS)], "2005-06-01", "2005-06-30", relative_to_first=False)
    np.testing.assert_allclose(raw.enu_m[0], lhas.enu_m[0, k0:k0 + 30], atol=0)


def test_window_without_data_and_bad_window(tmp_path):
    with pytest.raises(ValueError, match="No GNSS sample between 2010-01-01 and 2010-12-31"):
        read_gnss_files([str(LHAS)], "2010-01-01", "2010-12-31")
    with pytest.raises(ValueError, match="end date 2005-01-01 is before the start date 2005-02-01"):
        read_gnss_files([str(LHAS)], "2005-02-01", "2005-01-01")
    with pytest.raises(ValueError, match="'2005-13-01' is not an ISO date"):
        read_gnss_files([str(LHAS)], "2005-13-01")


def test_station_in_two_formats_is_refused(tmp_path):
    csv_path = write_csv(tmp_path / "lhas.csv", [("LHAS", "2004-01-01", 91.1, 29.66, 0, 0, 0)])
    with pytest.raises(ValueError, match="Station LHAS is in LHAS_2005.tenv3 .tenv3. and in lhas.csv .csv."):
        read_gnss_files([str(LHAS), str(csv_path)])


def test_merge_conflicting_duplicate_days():
    a = GnssSeries(["S"], np.array([1.0]), np.array([2.0]), days("2020-01-01", 2), np.zeros((1, 2, 3)))
    b = GnssSeries(["S"], np.array([1.0]), np.array([2.0]), days("2020-01-02", 2), np.ones((1, 2, 3)))
    with pytest.raises(ValueError,
                       match="b.csv: station S has a second, different solution for 2020-01-02 .first in a.csv"):
        merge_series([a, b], ["a.csv", "b.csv"])
    merged = merge_series([a, b], ["a.csv", "b.csv"], start_date="2020-01-03")
    np.testing.assert_array_equal(merged.dates, days("2020-01-03", 1))


def test_format_detection(tmp_path):
    (tmp_path / "lhas.txt").write_text(LHAS.read_text())
    assert gnss_io.detect_format(str(tmp_path / "lhas.txt")) == "tenv3"
    (tmp_path / "what.dat").write_text("hello world\n")
    with pytest.raises(ValueError, match="what.dat: cannot tell the format"):
        gnss_io.detect_format(str(tmp_path / "what.dat"))


# ------------------------------------------------------------------ common-mode filter

def detrended_std(enu):
    """Mean over stations of the scatter about each station's least-squares line, per component."""
    t = np.arange(enu.shape[1])
    out = np.zeros((enu.shape[0], 3))
    for k in range(enu.shape[0]):
        for c in range(3):
            ok = np.isfinite(enu[k, :, c])
            out[k, c] = np.std(enu[k, ok, c] - np.polyval(np.polyfit(t[ok], enu[k, ok, c], 1), t[ok]))
    return out.mean(axis=0)


def test_common_mode_filter_removes_injected_signal():
    rng = np.random.default_rng(1997)
    n_sta, n_days, sigma = 12, 121, 0.002        # 2 mm white noise per station and day
    t = np.arange(n_days)
    trend = rng.normal(scale=1e-4, size=(n_sta, 1, 3)) * t[None, :, None]
    common = np.column_stack([0.004 * np.sin(2 * np.pi * t / 30), 0.003 * np.cos(2 * np.pi * t / 17),
                              np.cumsum(rng.normal(scale=0.002, size=n_days))])
    noise = rng.normal(scale=sigma, size=(n_sta, n_days, 3))
    enu = trend + common[None] + noise
    enu[3, 40:60] = np.nan                        # gaps do not matter
    enu[7, ::5] = np.nan
    series = GnssSeries([f"S{i}" for i in range(n_sta)], np.arange(n_sta, dtype=float),
                        np.zeros(n_sta), days("2020-01-01", n_days), enu)
    filtered, cm = common_mode_filter(series)
    # the filter recovers the common signal up to its own linear trend (absorbed by the
    # stations' trends) plus the mean noise: sigma / sqrt(12) = 0.58 mm
    line = np.polynomial.polynomial.polyval(t, np.polynomial.polynomial.polyfit(t, common, 1)).T
    error = cm - (common - line) - (cm - (common - line)).mean(axis=0)
    rms = np.sqrt(np.mean(error ** 2, axis=0))
    assert np.all(rms < 1.5 * sigma / np.sqrt(n_sta)), rms
    # scatter about each station's straight line drops from common + noise to the noise
    before, after = detrended_std(enu), detrended_std(filtered.enu_m)
    assert np.all(before > 1.4 * sigma), before
    np.testing.assert_allclose(after, sigma, rtol=0.1)
    assert np.array_equal(np.isnan(filtered.enu_m), np.isnan(enu))


def test_common_mode_filter_needs_stations():
    s = GnssSeries(["A", "B"], np.zeros(2), np.zeros(2), days("2020-01-01", 5), np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="at least 3 stations"):
        common_mode_filter(s)
    s3 = GnssSeries(["A", "B", "C"], np.zeros(3), np.zeros(3), days("2020-01-01", 5), np.zeros((3, 5, 3)))
    s3.enu_m[1:, 2] = np.nan                      # day 3: one station only
    filtered, cm = common_mode_filter(s3)
    assert np.all(np.isnan(cm[2])) and np.all(np.isnan(filtered.enu_m[:, 2]))
    np.testing.assert_allclose(cm[[0, 1, 3, 4]], 0.0, atol=1e-15)
