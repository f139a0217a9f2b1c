"""The joint InSAR + GNSS least-squares peer (core/joint.py): each step against known answers."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from insar_gnss_3d.core.baselines import decompose_asc_desc
from insar_gnss_3d.core.geometry import los_unit_vector
from insar_gnss_3d.core.joint import (estimate_scene, event_time_function, fit_reference_ramp,
                                      gnss_net_sigma, joint_enu, los_residual_rms, prior_scale,
                                      reduce_series, solve_tracks, step_time_function, time_function_at_epochs,
                                      track_noise_m, unremoved_ramp_noise_m)

ASC = np.array(los_unit_vector(-12.0, 39.0))
DESC = np.array(los_unit_vector(-168.0, 39.0))


# --------------------------------------------------------------------------- time function


def _stations(rng, history, amplitudes_m, sigma_m=(2e-3, 2e-3, 6e-3)):
    """(S, D, 3) daily series: amplitude (3,) x history + white noise + a constant offset."""
    s = len(amplitudes_m)
    enu = np.asarray(amplitudes_m)[:, None, :] * history[None, :, None]
    enu = enu + rng.normal(0.0, 1.0, enu.shape) * np.asarray(sigma_m) + rng.normal(0, 1, (s, 1, 3))
    return enu


def test_event_time_function_recovers_a_sigmoid_slow_slip():
    rng = np.random.default_rng(1)
    days = np.arange(121.0)
    truth = 1.0 / (1.0 + np.exp(-(days - 60.0) / 5.0))
    truth = (truth - truth[:7].mean()) / (truth[-7:].mean() - truth[:7].mean())
    # three stations that move (pointing different ways), five that do not
    amps = [(0.03, -0.01, 0.02), (-0.02, 0.015, -0.01), (0.0, 0.02, 0.005)] + [(0.0, 0.0, 0.0)] * 5
    enu = _stations(rng, truth, amps)
    enu[0, 30:40] = np.nan                                  # a gap
    enu[1, ::5] = np.nan
    f = event_time_function(days, enu)
    assert f is not None and f.shape == (121,)
    assert np.all(np.diff(f) >= 0) and f.min() >= 0 and f.max() <= 1
    assert np.sqrt(np.mean((f - np.clip(truth, 0, 1)) ** 2)) < 0.03
    # the half-way day within 2 days
    assert abs(float(np.interp(0.5, f, days)) - 60.0) < 2.0


def test_event_time_function_is_none_when_nothing_moves():
    rng = np.random.default_rng(2)
    enu = _stations(rng, np.zeros(121), [(0.0, 0.0, 0.0)] * 6)
    assert event_time_function(np.arange(121.0), enu) is None


def test_step_time_function():
    assert_allclose(step_time_function([0, 9.5, 10, 11], 10), [0, 0, 1, 1])


def test_gnss_net_sigma_matches_the_scatter_of_the_net_displacement():
    rng = np.random.default_rng(3)
    white = np.array([2e-3, 2e-3, 6e-3])
    enu = rng.normal(0, 1, (400, 121, 3)) * white
    net = np.median(enu[:, -7:], 1) - np.median(enu[:, :7], 1)
    sigma = gnss_net_sigma(enu, lags_days=(1,))
    assert_allclose(np.median(sigma, axis=0), white * np.sqrt(np.pi / 7), rtol=0.1)
    assert_allclose(net.std(0), white * np.sqrt(np.pi / 7), rtol=0.15)
    # white + random walk (1 mm / sqrt(day)) and a step: the random walk dominates
    walk = np.cumsum(rng.normal(0, 1e-3, (400, 121, 3)), axis=1)
    step = step_time_function(np.arange(121), 50)[None, :, None] * 0.05
    series = enu + walk + step
    net = np.median(series[:, -7:], 1) - np.median(series[:, :7], 1) - 0.05
    f = step_time_function(np.arange(121), 50)
    sigma = gnss_net_sigma(series, time_function=f)
    assert np.all(np.median(sigma, axis=0) > net.std(0))                # conservative
    assert_allclose(np.median(sigma, axis=0), net.std(0), rtol=0.35)
    # on white noise alone the random-walk term stays small
    assert_allclose(np.median(gnss_net_sigma(enu, time_function=f), axis=0), white * np.sqrt(np.pi / 7), rtol=0.5)
    assert_allclose(net.std(0), np.sqrt(white ** 2 * np.pi / 7 + 1e-6 * 114), rtol=0.15)


# --------------------------------------------------------------------------- series


def test_reduce_series_recovers_a_step_and_averages_the_noise():
    rng = np.random.default_rng(4)
    t, h, w = 20, 60, 50
    days = np.arange(t) * 6.0
    f = step_time_function(days, 60.0)
    b_true = np.linspace(-0.05, 0.08, h * w).reshape(h, w)
    sigma = 0.01
    series = b_true[None] * f[:, None, None] + rng.normal(0, sigma, (t, h, w))
    series += rng.normal(0, 0.05, (t, 1, 1))                  # per-epoch reference offsets
    series[3, :10] = np.nan
    b, resid = reduce_series(series, days, f)
    err = b - b_true
    err -= np.median(err)                                    # the epoch medians' constant
    two_epoch = (series[-1] - series[0]) - b_true
    two_epoch -= np.nanmedian(two_epoch)
    # step in the middle of n = 20 epochs: std(b) = 2 sigma / sqrt(n); two epochs: sqrt(2) sigma
    assert_allclose(np.nanstd(err), 2 * sigma / np.sqrt(t), rtol=0.1)
    assert_allclose(np.nanstd(two_epoch), np.sqrt(2) * sigma, rtol=0.1)
    assert np.nanstd(two_epoch) / np.nanstd(err) > 0.8 * np.sqrt(t / 2)
    assert_allclose(np.nanmedian(resid), sigma, rtol=0.1)
    # the noise figure is the formal std of b
    assert_allclose(track_noise_m(resid, f), 2 * sigma / np.sqrt(t), rtol=0.1)


def test_a_step_between_acquisitions_is_fitted_as_the_interpolated_epochs_see_it():
    """Noise-free acquisitions of a step, interpolated onto model epochs as training and
    extraction do: the step becomes a ramp between the two acquisitions around it. With the
    acquisition days the time function is interpolated the same way, the fit is exact and the
    noise is nil; without, the misfit grows with the displacement and passes for noise."""
    import torch

    from insar_gnss_3d.core.features import resample_epochs

    days = np.arange(121.0)
    acquired = np.arange(2.0, 121.0, 24.0)                    # 2, 26, 50, 74, 98 (event at 60)
    model_days = np.linspace(0.0, 120.0, 16)
    f_days = step_time_function(days, 60.0)
    b_true = np.linspace(0.1, 1.0, 12).reshape(3, 4)        # 0.1-1 m
    series = b_true[None] * np.interp(acquired, days, f_days)[:, None, None]
    epochs = resample_epochs(torch.as_tensor(series)[None, None], torch.as_tensor(acquired)[None, None],
                             model_days)[0, 0].numpy()
    f_seen = time_function_at_epochs(days, f_days, model_days, acquired)
    assert_allclose(f_seen, np.clip((model_days - 50.0) / 24.0, 0.0, 1.0), atol=1e-12)
    b, resid = reduce_series(epochs, model_days, f_seen)
    error = b - b_true                                        # up to the epochs' reference (a constant)
    assert np.ptp(error) < 1e-6                               # float32 interpolation weights
    assert track_noise_m(resid, f_seen) < 1e-5
    b_step, resid_step = reduce_series(epochs, model_days, time_function_at_epochs(days, f_days, model_days))
    assert track_noise_m(resid_step, np.interp(model_days, days, f_days)) > 0.01
    assert np.ptp(b_step - b_true) > 0.01


def test_reduce_series_needs_epochs_on_both_sides():
    days = np.arange(6.0)
    f = step_time_function(days, 3)
    series = np.ones((6, 2, 2)) * f[:, None, None]
    series[3:, 0, 0] = np.nan                               # only pre-event epochs
    series[:4, 1, 1] = np.nan                               # two epochs
    b, resid = reduce_series(series, days, f, remove_epoch_median=False)
    assert np.isnan(b[0, 0]) and np.isnan(b[1, 1]) and np.isnan(resid[0, 0])
    assert_allclose(b[0, 1], 1.0)
    with pytest.raises(ValueError, match="one value per epoch"):
        reduce_series(series, days[:5], f)


def test_track_noise_from_the_far_field_scatter():
    rng = np.random.default_rng(5)
    d = rng.normal(0, 0.004, (100, 100))
    d[40:60, 40:60] += 0.5
    far = np.ones_like(d, dtype=bool)
    far[30:70, 30:70] = False
    assert_allclose(track_noise_m(displacement_m=d, far_mask=far), 0.004, rtol=0.1)
    with pytest.raises(ValueError):
        track_noise_m()


# --------------------------------------------------------------------------- reference


def test_fit_reference_ramp_recovers_an_offset_and_a_ramp():
    h, w, pixel = 64, 80, 1000.0
    rng = np.random.default_rng(6)
    yy, xx = np.mgrid[0:h, 0:w]
    x = (xx + 0.5) * pixel
    y = -(yy + 0.5) * pixel
    gnss_field = np.stack([1e-3 * np.sin(x / 2e4), 2e-3 * np.cos(y / 3e4), 5e-3 * np.sin((x + y) / 2.5e4)])
    unit = np.broadcast_to(ASC[:, None, None], (3, h, w))
    true_los = np.sum(unit * gnss_field, 0)
    c0, cx, cy = 0.031, 4e-7, -6e-7
    observed = true_los + c0 + cx * x + cy * y
    rows = rng.uniform(2, h - 2, 6)
    cols = rng.uniform(2, w - 2, 6)
    sx, sy = cols * pixel, -rows * pixel                      # station positions [m]
    g = np.stack([1e-3 * np.sin(sx / 2e4), 2e-3 * np.cos(sy / 3e4), 5e-3 * np.sin((sx + sy) / 2.5e4)]).T
    corrected, coef = fit_reference_ramp(observed, unit, g, rows, cols, pixel)
    assert coef["method"] == "offset+ramp" and coef["stations_used"] == 6
    # exact up to the bilinear sampling of a curved field between pixel centres
    assert_allclose([coef["offset_m"], coef["ramp_east_m_per_m"], coef["ramp_north_m_per_m"]],
                    [c0, cx, cy], rtol=5e-3, atol=1e-4)
    assert_allclose(corrected, true_los, atol=2e-4)
    # a station with a wrong GNSS value and a huge sigma barely moves a weighted fit (4
    # stations: too few for the outlier rejection, which would drop it otherwise)
    r4, c4 = np.array([10.3, 12.7, 50.2, 48.9]), np.array([8.1, 70.4, 12.6, 66.2])
    sx, sy = c4 * pixel, -r4 * pixel
    g_bad = np.stack([1e-3 * np.sin(sx / 2e4), 2e-3 * np.cos(sy / 3e4), 5e-3 * np.sin((sx + sy) / 2.5e4)]).T
    g_bad[0] += 0.5
    sigma = np.full((4, 3), 1e-3)
    sigma[0] = 10.0
    _, weighted = fit_reference_ramp(observed, unit, g_bad, r4, c4, pixel, gnss_sigma_m=sigma)
    assert weighted["method"] == "offset+ramp"
    assert_allclose(weighted["offset_m"], c0, atol=1e-3)
    _, plain = fit_reference_ramp(observed, unit, g_bad, r4, c4, pixel)
    assert abs(plain["offset_m"] - c0) > 0.01
    # two stations: offset only; none on data: the median
    _, coef2 = fit_reference_ramp(observed, unit, g[:2], rows[:2], cols[:2], pixel)
    assert coef2["method"] == "offset" and coef2["ramp_east_m_per_m"] == 0.0
    _, coef0 = fit_reference_ramp(observed, unit, g[:2], rows[:2] + 1000, cols[:2], pixel)
    assert coef0["method"] == "median" and "median" in coef0["note"]


def test_fit_reference_ramp_refuses_a_ramp_on_collinear_stations():
    h = w = 50
    unit = ASC
    rows = np.array([10.2, 20.3, 30.1, 40.4])
    cols = rows * 0.9 + 1.0
    los = np.full((h, w), 0.02)
    _, coef = fit_reference_ramp(los, unit, np.zeros((4, 3)), rows, cols, 1000.0)
    assert coef["method"] == "offset" and "line" in coef["note"]
    assert_allclose(coef["offset_m"], 0.02)


# --------------------------------------------------------------------------- joint solve


def _field(h=30, w=40):
    yy, xx = np.mgrid[0:h, 0:w] / 10.0
    return np.stack([0.1 * np.sin(xx), 0.05 * np.cos(yy), 0.2 * np.sin(xx + yy)])


def test_joint_with_a_loose_prior_is_the_exact_asc_desc_solution():
    truth = _field()
    h, w = truth.shape[1:]
    los_a = np.tensordot(ASC, truth, 1)
    los_d = np.tensordot(DESC, truth, 1)
    prior = np.zeros_like(truth)
    prior[1] = truth[1]                                      # north fixed by the prior
    est, std = joint_enu([los_a, los_d], [ASC, DESC], [0.01, 0.01], prior, (1e4, 1e-7, 1e4))
    assert_allclose(est, truth, atol=1e-7)
    # the same as the classical decomposition once north is removed from the LOS
    east, up = decompose_asc_desc(los_a - ASC[1] * truth[1], los_d - DESC[1] * truth[1],
                                  tuple(ASC), tuple(DESC))
    assert_allclose(est[0], east, atol=1e-7)
    assert_allclose(est[2], up, atol=1e-7)
    assert np.all(std[1] < 1e-6)


def test_joint_with_a_tight_prior_returns_the_prior_and_nan_tracks_drop_out():
    truth = _field()
    prior = 0.5 * truth + 0.01
    los_a = np.tensordot(ASC, truth, 1)
    los_d = np.tensordot(DESC, truth, 1)
    los_d[:5] = np.nan
    est, std = joint_enu([los_a, los_d], [ASC, DESC], [0.01, 0.01], prior, (1e-7, 1e-7, 1e-7))
    assert_allclose(est, prior, atol=1e-8)
    assert_allclose(std, 1e-7, rtol=1e-4)
    # no track at all in a pixel: the prior and its sigma
    los_a[:2] = np.nan
    est, std = joint_enu([los_a, los_d], [ASC, DESC], [0.01, 0.01], prior, (0.1, 0.2, 0.3))
    assert_allclose(est[:, :2], prior[:, :2])
    assert_allclose(std[:, :2, :], np.broadcast_to(np.array([0.1, 0.2, 0.3])[:, None, None], (3, 2, 40)))


def test_joint_posterior_matches_the_one_dimensional_case():
    h, w = 3, 4
    b = np.full((h, w), 0.30)
    s, sp, p = 0.02, 0.05, np.zeros((3, h, w))
    p[2] = 0.10
    est, std = joint_enu([b], [np.array([0.0, 0.0, 1.0])], [s], p, (1e-3, 1e-3, sp))
    var = 1.0 / (1.0 / s ** 2 + 1.0 / sp ** 2)
    assert_allclose(std[2], np.sqrt(var))
    assert_allclose(est[2], var * (0.30 / s ** 2 + 0.10 / sp ** 2))
    assert_allclose(est[:2], 0.0, atol=1e-12)
    # per-pixel noise maps and an infinite prior sigma on up
    noise = np.full((h, w), s)
    est, std = joint_enu([b], [np.array([0.0, 0.0, 1.0])], [noise], p, (1e-3, 1e-3, np.inf))
    assert_allclose(est[2], 0.30)
    assert_allclose(std[2], s)


def test_joint_refuses_bad_shapes_and_sigmas():
    p = np.zeros((3, 2, 2))
    with pytest.raises(ValueError, match="one entry per track"):
        joint_enu([np.zeros((2, 2))], [ASC, DESC], [0.01], p, (1, 1, 1))
    with pytest.raises(ValueError, match="> 0"):
        joint_enu([np.zeros((2, 2))], [ASC], [0.0], p, (1, 1, 1))


def test_prior_scale_inflates_only_an_overconfident_prior():
    rng = np.random.default_rng(9)
    truth = _field()
    sigma_p = np.array([0.01, 0.01, 0.01])
    noise = 0.005
    los = [np.tensordot(u, truth, 1) + rng.normal(0, noise, truth.shape[1:]) for u in (ASC, DESC)]
    honest = truth + rng.normal(0, 1, truth.shape) * sigma_p[:, None, None]
    assert_allclose(prior_scale(los, [ASC, DESC], [noise, noise], honest, sigma_p), 1.0, atol=0.1)
    # a prior 5x worse than it claims: the factor says so, and the estimate follows the tracks
    bad = truth + 5 * rng.normal(0, 1, truth.shape) * sigma_p[:, None, None]
    k = prior_scale(los, [ASC, DESC], [noise, noise], bad, sigma_p)
    assert 3.0 < k < 6.0
    est_raw, _ = joint_enu(los, [ASC, DESC], [noise, noise], bad, sigma_p)
    est, _ = joint_enu(los, [ASC, DESC], [noise, noise], bad, sigma_p * k)
    assert np.sqrt(np.mean((est[2] - truth[2]) ** 2)) < 0.85 * np.sqrt(np.mean((est_raw[2] - truth[2]) ** 2))


def test_los_residual_rms_ignores_a_constant():
    truth = _field()
    los = np.tensordot(ASC, truth, 1) + 0.3
    assert los_residual_rms(truth, los, ASC) < 1e-12
    rng = np.random.default_rng(7)
    noisy = los + rng.normal(0, 0.01, los.shape)
    assert_allclose(los_residual_rms(truth, noisy, ASC), 0.01, rtol=0.1)


# --------------------------------------------------------------------------- one scene


def test_estimate_scene_beats_both_inputs_on_a_synthetic_scene():
    """Okada-like smooth field, 2 tracks of 16 epochs with noise, 12 stations, kriging prior."""
    rng = np.random.default_rng(8)
    h = w = 48
    pixel = 1000.0
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - 24) ** 2 + (yy - 20) ** 2) / 80.0
    truth = np.stack([0.15 * np.exp(-r2) * (xx - 24) / 8, 0.08 * np.exp(-r2), 0.3 * np.exp(-r2)])
    days = np.arange(121.0)
    history = step_time_function(days, 50)
    acq = np.arange(0, 121, 8.0)
    series, units = [], []
    for unit in (ASC, DESC):
        los = np.tensordot(unit, truth, 1)
        s = los[None] * step_time_function(acq, 50)[:, None, None]
        s = s + rng.normal(0, 0.01, s.shape) + rng.normal(0, 0.03, (len(acq), 1, 1))
        # a reference offset and a ramp in the displacement (as a wrong reference map gives)
        s = s + (0.02 + 3e-7 * (xx + 0.5) * pixel) * step_time_function(acq, 50)[:, None, None]
        series.append(s)
        units.append(unit)
    n_st = 12
    sr, sc = rng.uniform(1, h - 1, n_st), rng.uniform(1, w - 1, n_st)
    xy = np.column_stack([sc * pixel, -sr * pixel])
    amp = truth[:, sr.astype(int), sc.astype(int)].T
    gnss = _stations(rng, history, amp)
    result = estimate_scene(series, [acq, acq], units, gnss, xy, pixel)
    err = np.sqrt(np.mean((result.estimate_m - truth) ** 2, axis=(1, 2)))
    prior_err = np.sqrt(np.mean((result.prior_m - truth) ** 2, axis=(1, 2)))
    assert np.all(np.isfinite(result.estimate_m)) and np.all(result.std_m > 0)
    assert err[0] < 0.5 * prior_err[0] and err[2] < 0.5 * prior_err[2]
    assert err[0] < 0.01 and err[2] < 0.01
    tracks = result.quality["tracks"]
    assert [t["reference"]["method"] for t in tracks] == ["offset+ramp", "offset+ramp"]
    for t in tracks:
        # fitted noise of b vs truth: 2 * 0.01 / sqrt(16) = 5 mm
        assert 0.003 < t["noise_m"] < 0.008
        assert t["los_residual_rms_m"] < 2 * t["noise_m"]
        assert_allclose(t["reference"]["ramp_east_m_per_m"], 3e-7, atol=1e-7)
        assert t["ramp_noise_m"] == 0.0            # the ramp was fitted to the stations
    assert len(result.quality["stations"]) == n_st


@pytest.mark.parametrize("layout", ["one", "collinear"])
def test_estimate_scene_stays_bounded_with_degenerate_networks(layout):
    """One station, or three on a line: offset-only references and a prior that reverts to zero."""
    rng = np.random.default_rng(10)
    h = w = 40
    pixel = 1000.0
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - 20) ** 2 + (yy - 20) ** 2) / 60.0
    truth = np.stack([0.1 * np.exp(-r2), -0.05 * np.exp(-r2), 0.25 * np.exp(-r2)])
    acq = np.arange(0, 121, 12.0)
    step = step_time_function(acq, 60)[:, None, None]
    series = [np.tensordot(u, truth, 1)[None] * step + rng.normal(0, 0.005, (len(acq), h, w))
              for u in (ASC, DESC)]
    if layout == "one":
        sr, sc = np.array([18.5]), np.array([22.5])
    else:
        sr, sc = np.array([10.5, 20.5, 30.5]), np.array([10.5, 20.5, 30.5])
    xy = np.column_stack([sc * pixel, -sr * pixel])
    gnss = _stations(rng, step_time_function(np.arange(121.0), 60), truth[:, sr.astype(int), sc.astype(int)].T)
    result = estimate_scene(series, [acq, acq], [ASC, DESC], gnss, xy, pixel)
    assert np.isfinite(result.estimate_m).all()
    assert np.abs(result.estimate_m).max() < 1.5 * np.abs(truth).max()
    assert np.abs(result.prior_m).max() < 1.5 * np.abs(truth).max()
    assert {t["reference"]["method"] for t in result.quality["tracks"]} == {"offset"}
    err = np.sqrt(np.mean((result.estimate_m - truth) ** 2, axis=(1, 2)))
    assert err[0] < 0.01 and err[2] < 0.01


def _bump_and_ramp(h=60, w=80, pixel=2000.0, ramp=(4e-7, -2.5e-7)):
    """A Gaussian uplift (3, H, W) [m] and a planar ramp (H, W) [m] in the scene frame."""
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - 30) ** 2 + (yy - 25) ** 2) / 50.0
    truth = np.stack([0.1 * np.exp(-r2), 0.05 * np.exp(-r2), 0.4 * np.exp(-r2)])
    plane = 0.01 + ramp[0] * xx * pixel + ramp[1] * yy * pixel
    return truth, plane, pixel


def test_unremoved_ramp_noise_is_the_spread_of_the_ramp_left_in_a_track():
    rng = np.random.default_rng(21)
    truth, plane, pixel = _bump_and_ramp()
    los = np.tensordot(ASC, truth, 1) + plane + rng.normal(0.0, 0.003, plane.shape)
    los[:10, :15] = np.nan                                   # a decorrelated corner
    expected = np.std((plane - 0.01)[np.isfinite(los)])      # ~11 mm
    assert_allclose(unremoved_ramp_noise_m(los, ASC, truth, pixel), expected, rtol=0.05)
    # a prior 50 % too strong near the fault: the far field still measures the ramp
    assert_allclose(unremoved_ramp_noise_m(los, ASC, 1.5 * truth, pixel), expected, rtol=0.1)
    flat = np.tensordot(ASC, truth, 1) + rng.normal(0.0, 0.003, plane.shape)
    assert unremoved_ramp_noise_m(flat, ASC, truth, pixel) < 0.1 * expected
    assert unremoved_ramp_noise_m(np.full_like(plane, np.nan), ASC, truth, pixel) == 0.0


def test_an_offset_reference_counts_the_ramp_it_leaves_in_the_noise():
    """One station: offset-only references; the tracks' ramps enter their noise (ramp_noise_m)."""
    rng = np.random.default_rng(22)
    truth, plane, pixel = _bump_and_ramp()
    acq = np.arange(0, 121, 12.0)
    step = step_time_function(acq, 60)[:, None, None]
    series = [(np.tensordot(u, truth, 1) + plane)[None] * step + rng.normal(0, 0.003, (len(acq),) + plane.shape)
              for u in (ASC, DESC)]
    sr, sc = np.array([40.5]), np.array([60.5])
    xy = np.column_stack([sc * pixel, -sr * pixel])
    gnss = _stations(rng, step_time_function(np.arange(121.0), 60), truth[:, sr.astype(int), sc.astype(int)].T)
    result = estimate_scene(series, [acq, acq], [ASC, DESC], gnss, xy, pixel, event_day=60)
    ramp_std = np.std(plane)
    for t, ramp in zip(result.quality["tracks"], result.ramp_noise_m):
        assert t["reference"]["method"] == "offset"
        # the kriging prior of one station is nearly flat: the far field is most of the scene
        assert_allclose(t["ramp_noise_m"], ramp_std, rtol=0.15)
        assert ramp == t["ramp_noise_m"] > 5 * t["series_noise_m"]
    # the ramp widens the standard deviation, not the weights: the estimate is the same
    est, std, _ = solve_tracks(result.observations, result.prior_m, result.prior_std_m)
    est_r, std_r, _ = solve_tracks(result.observations, result.prior_m, result.prior_std_m,
                                   ramp_noise_m=result.ramp_noise_m)
    assert_allclose(est_r, est)
    assert np.all(std_r >= std - 1e-12) and np.median(std_r[2] / std[2]) > 2.0


def test_joint_std_with_an_error_outside_the_weights_matches_a_simulation():
    """The sandwich covariance: weights from the noise s, errors of variance s^2 + e^2."""
    rng = np.random.default_rng(23)
    h = w = 80
    truth = np.zeros((3, h, w))
    s, e, prior_sigma = 0.01, 0.03, np.array([0.05, 0.05, 0.05])
    los = [np.tensordot(u, truth, 1) + rng.normal(0, s, (h, w)) + rng.normal(0, e, (h, w)) for u in (ASC, DESC)]
    prior = truth + prior_sigma[:, None, None] * rng.normal(0, 1, truth.shape)
    est, std = joint_enu(los, [ASC, DESC], [s, s], prior, prior_sigma, extra_error_m_list=[e, e])
    plain_est, plain_std = joint_enu(los, [ASC, DESC], [s, s], prior, prior_sigma)
    assert_allclose(est, plain_est)
    empirical = np.std(est - truth, axis=(1, 2))
    assert_allclose(std[:, 0, 0], empirical, rtol=0.06)           # 6,400 pixels: ~1 % sampling error
    assert np.all(plain_std[[0, 2], 0, 0] < 0.5 * empirical[[0, 2]])  # without it: too narrow on E, U
    with pytest.raises(ValueError, match="extra_error_m_list"):
        joint_enu(los, [ASC, DESC], [s, s], prior, prior_sigma, extra_error_m_list=[e])


def test_estimate_scene_without_any_track_is_the_gnss_prior_on_the_grid_given():
    """No InSAR at all (both tracks None): the joint peer is the kriging of the stations on
    ``grid_shape``; without a grid or a prior there is nothing to estimate on."""
    rng = np.random.default_rng(12)
    xy = np.array([[5e3, -5e3], [30e3, -8e3], [12e3, -28e3], [33e3, -33e3]])
    amp = np.array([[0.05, 0.0, 0.02], [0.03, 0.01, 0.0], [0.0, -0.02, 0.01], [0.01, 0.0, -0.01]])
    gnss = _stations(rng, step_time_function(np.arange(121.0), 60), amp)
    result = estimate_scene([None, None], [None, None], [ASC, DESC], gnss, xy, 1000.0, grid_shape=(40, 40))
    assert result.estimate_m.shape == (3, 40, 40)
    assert_allclose(result.estimate_m, result.prior_m)
    # at the stations the kriging is within a few mm of their net displacement
    assert np.abs(result.estimate_m[:, 5, 5] - amp[0]).max() < 0.01
    assert [t["used"] for t in result.quality["tracks"]] == [False, False]
    with pytest.raises(ValueError, match="no grid"):
        estimate_scene([None, None], [None, None], [ASC, DESC], gnss, xy, 1000.0)
