"""Classical peers: asc/desc decomposition, GNSS net displacement, GNSS interpolation."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from insar_gnss_3d.core.baselines import (INTERPOLATION_METHODS, decompose_asc_desc,
                                          gnss_net_displacement, interpolate_gnss)
from insar_gnss_3d.core.geometry import Grid, enu_to_los, los_unit_vector
from insar_gnss_3d.core.gnss_io import GnssSeries
from insar_gnss_3d.core.okada import Fault, surface_displacement

ASC = los_unit_vector(-12.0, 39.0)     # Sentinel-1 ascending
DESC = los_unit_vector(-168.0, 39.0)   # Sentinel-1 descending


def okada_field(grid, depth=15e3):
    east, north = grid.centres()
    fault = Fault(east=100e3, north=100e3, depth=depth, strike=10.0, dip=15.0, length=80e3,
                  width=50e3, rake=90.0, slip=1.0)
    return np.stack(surface_displacement(fault, east, north))


# ----------------------------------------------------------------- asc/desc decomposition

def test_decomposition_recovers_east_and_up_without_north():
    grid = Grid.from_extent(0, 0, 200e3, 200e3, 2e3)
    e, _, u = okada_field(grid)
    zero = np.zeros_like(e)
    d_asc = enu_to_los(e, zero, u, *ASC)
    d_desc = enu_to_los(e, zero, u, *DESC)
    east, up = decompose_asc_desc(d_asc, d_desc, ASC, DESC)
    assert_allclose(east, e, rtol=0, atol=1e-12)
    assert_allclose(up, u, rtol=0, atol=1e-12)


def test_decomposition_with_per_pixel_geometry():
    rng = np.random.default_rng(0)
    shape = (20, 30)
    inc_a, inc_d = rng.uniform(30, 46, shape), rng.uniform(30, 46, shape)
    los_a = los_unit_vector(-12.0 + rng.normal(0, 1, shape), inc_a)
    los_d = los_unit_vector(-168.0 + rng.normal(0, 1, shape), inc_d)
    e, u = rng.normal(0, 0.1, shape), rng.normal(0, 0.1, shape)
    east, up = decompose_asc_desc(enu_to_los(e, 0, u, *los_a), enu_to_los(e, 0, u, *los_d),
                                  los_a, los_d)
    assert_allclose(east, e, rtol=0, atol=1e-12)
    assert_allclose(up, u, rtol=0, atol=1e-12)


def test_north_leaks_into_up_as_documented():
    east, up = decompose_asc_desc(enu_to_los(0, 1.0, 0, *ASC), enu_to_los(0, 1.0, 0, *DESC), ASC, DESC)
    det = ASC[0] * DESC[2] - DESC[0] * ASC[2]
    assert_allclose(east, 0.0, atol=1e-12)
    assert_allclose(up, (ASC[0] * DESC[1] - DESC[0] * ASC[1]) / det, rtol=1e-12)
    assert_allclose(up, -0.17, atol=0.005)


def test_decomposition_nan_and_singular():
    d_a = np.array([0.01, np.nan, 0.02, 0.03])
    d_d = np.array([0.02, 0.01, np.nan, 0.03])
    east, up = decompose_asc_desc(d_a, d_d, ASC, DESC)
    assert np.isfinite(east[0]) and np.isfinite(up[0]) and np.isfinite(east[3])
    assert np.isnan(east[1:3]).all() and np.isnan(up[1:3]).all()
    # the same geometry twice cannot separate east from up
    east, up = decompose_asc_desc(d_a, d_a, ASC, ASC)
    assert np.isnan(east).all() and np.isnan(up).all()


def test_decomposition_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        decompose_asc_desc(np.zeros(3), np.zeros(4), ASC, DESC)


# ----------------------------------------------------------------- GNSS net displacement

def make_series(step, days=121, step_day=60, white=(0.0023, 0.0023, 0.0068), seed=0, gaps=0.0):
    rng = np.random.default_rng(seed)
    s = len(step)
    t = np.arange(days)
    enu = np.where(t[None, :, None] >= step_day, np.asarray(step)[:, None, :], 0.0)
    enu = enu + rng.normal(0, 1, (s, days, 3)) * np.asarray(white) + rng.normal(0, 1, (s, 1, 3))
    if gaps:
        enu[rng.random((s, days)) < gaps] = np.nan
    dates = np.datetime64("2024-01-01") + np.arange(days).astype("timedelta64[D]")
    return GnssSeries([f"S{i:03d}" for i in range(s)], np.zeros(s), np.zeros(s), dates, enu)


def test_net_displacement_recovers_a_step_within_the_noise():
    rng = np.random.default_rng(1)
    step = rng.normal(0, 0.05, (200, 3))
    net = gnss_net_displacement(make_series(step, gaps=0.2, seed=2))
    # 20 % missing days: an end window rarely keeps fewer than min_days = 3 of its 7 days
    ok = np.isfinite(net).all(axis=1)
    assert ok.mean() > 0.97
    err = (net - step)[ok]
    # median of 7 days each end: sigma_diff ~ sqrt(pi / 7) sigma = 1.5 mm / 4.6 mm
    assert_allclose(err.std(axis=0), [1.5e-3, 1.5e-3, 4.6e-3], rtol=0.3)
    assert_allclose(err.mean(axis=0), 0.0, atol=1.5e-3)


def test_net_displacement_is_robust_to_outlier_days():
    step = np.array([[0.1, -0.05, 0.02]])
    series = make_series(step, white=(0, 0, 0))
    series.enu_m[0, 2, :] += 1.0       # a bad day in the first window
    series.enu_m[0, -3, :] -= 1.0      # and one in the last
    assert_allclose(gnss_net_displacement(series), step, atol=1e-12)


def test_net_displacement_nan_where_an_end_window_is_empty():
    series = make_series(np.full((2, 3), 0.01), white=(0, 0, 0))
    series.enu_m[1, -7:, 2] = np.nan       # station 1 lost its last week, up only
    series.enu_m[1, -7:-4, 0] = np.nan     # 4 east days left: still enough
    net = gnss_net_displacement(series)
    assert np.isnan(net[1, 2])
    assert_allclose(net[0], 0.01, atol=1e-12)
    assert_allclose(net[1, :2], 0.01, atol=1e-12)


def test_net_displacement_bad_arguments():
    with pytest.raises(ValueError, match="end window"):
        gnss_net_displacement(make_series(np.zeros((1, 3)), days=10))
    with pytest.raises(ValueError, match="min_days"):
        gnss_net_displacement(make_series(np.zeros((1, 3))), end_days=3, min_days=5)


# ----------------------------------------------------------------- interpolation

def jittered_network(spacing_m, extent_m=200e3, seed=0):
    """Stations on a jittered square lattice: GEONET-like, one per spacing^2."""
    rng = np.random.default_rng(seed)
    c = np.arange(spacing_m / 2, extent_m, spacing_m)
    x, y = np.meshgrid(c, c)
    x = x.ravel() + rng.uniform(-0.35, 0.35, x.size) * spacing_m
    y = y.ravel() + rng.uniform(-0.35, 0.35, y.size) * spacing_m
    return x, y


@pytest.mark.parametrize("spacing_km, tolerance", [(20, 0.05), (25, 0.08), (30, 0.10)])
def test_thin_plate_reproduces_a_smooth_field(spacing_km, tolerance):
    """Okada field of a 80 x 50 km thrust 15 km deep: inside the network (15 km from its
    edge), RMSE of each component below `tolerance` x its maximum."""
    grid = Grid.from_extent(0, 0, 200e3, 200e3, 2e3)
    truth = okada_field(grid)
    x, y = jittered_network(spacing_km * 1e3)
    f = Fault(east=100e3, north=100e3, depth=15e3, strike=10.0, dip=15.0, length=80e3,
              width=50e3, rake=90.0, slip=1.0)
    values = np.stack(surface_displacement(f, x, y), axis=1)
    gx, gy = grid.centres()
    out = interpolate_gnss(x, y, values, gx, gy)
    assert out.shape == (3,) + gx.shape
    inner = (gx > 15e3) & (gx < 185e3) & (gy > 15e3) & (gy < 185e3)
    for k in range(3):
        rms = np.sqrt(np.mean((out[k] - truth[k])[inner] ** 2))
        assert rms < tolerance * np.abs(truth[k]).max(), (k, rms / np.abs(truth[k]).max())


def test_interpolation_is_exact_at_stations_and_skips_nan():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1e5, 30), rng.uniform(0, 1e5, 30)
    values = np.column_stack([np.sin(x / 3e4), np.cos(y / 3e4), x / 1e5])
    values[4, 1] = np.nan
    for method in INTERPOLATION_METHODS:
        out = interpolate_gnss(x, y, values, x, y, method=method)
        ok = np.isfinite(values)
        assert_allclose(out.T[ok], values[ok], atol=1e-9)
        assert np.isfinite(out).all()


def test_linear_and_nearest_fill_outside_the_hull():
    x, y = np.array([0.0, 1e4, 0.0, 1e4]), np.array([0.0, 0.0, 1e4, 1e4])
    values = np.array([1.0, 2.0, 3.0, 4.0])
    gx, gy = np.array([5e3, -5e4]), np.array([5e3, -5e4])
    lin = interpolate_gnss(x, y, values, gx, gy, method="linear")
    assert lin.shape == (2,)
    assert lin[0] == pytest.approx(2.5)
    assert lin[1] == pytest.approx(1.0)  # nearest station outside the hull


def test_interpolation_refuses_too_few_or_collinear_stations():
    with pytest.raises(ValueError, match="at least 3"):
        interpolate_gnss([0, 1], [0, 1], [1.0, 2.0], [0.5], [0.5])
    with pytest.raises(ValueError, match="one line"):
        interpolate_gnss([0, 1, 2], [0, 1, 2], [1.0, 2.0, 3.0], [0.5], [0.5], method="linear")
    with pytest.raises(ValueError, match="thin_plate, linear, nearest"):
        interpolate_gnss([0, 1, 2], [0, 1, 0], [1.0, 2.0, 3.0], [0.5], [0.5], method="kriging")


def test_core_modules_import_without_qgis():
    """core/ never imports qgis (it runs on GPU servers without QGIS)."""
    import subprocess
    import sys
    code = ("import sys; sys.modules['qgis'] = None\n"
            "import insar_gnss_3d.core.metrics, insar_gnss_3d.core.baselines, "
            "insar_gnss_3d.core.insar_io, insar_gnss_3d.core.report\n"
            "assert not any(m.startswith('qgis.') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, env={**__import__("os").environ,
                   "PYTHONPATH": ":".join(sys.path)})
