"""Statistics of the noise generators in core/noise.py, measured on the generated data.

Every statistical check uses a fixed seed and a two-sided tolerance a few standard errors
wide, stated next to it.
"""

import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from insar_gnss_3d.core import noise

F64 = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------
# helpers: spectra and structure functions of generated data
# ----------------------------------------------------------------------------------------

def radial_psd(fields):
    """Radially averaged 2-D periodogram of Hann-windowed fields (N, n, n): (ring k [cyc/px], P)."""
    n = fields.shape[-1]
    win = np.hanning(n)
    f = fields - fields.mean(axis=(-2, -1), keepdims=True)
    spec = (np.abs(np.fft.fft2(f * np.outer(win, win))) ** 2).mean(axis=0)
    freq = np.fft.fftfreq(n)
    ring = np.rint(np.hypot(freq[:, None], freq[None, :]) * n).astype(int)
    counts = np.bincount(ring.ravel())
    power = np.bincount(ring.ravel(), weights=spec.ravel()) / np.maximum(counts, 1)
    return np.arange(len(power)) / n, power


def profile_psd(fields):
    """1-D periodogram of Hann-windowed rows and columns (profiles): (k [cyc/px], P)."""
    n = fields.shape[-1]
    win = np.hanning(n)
    rows = fields - fields.mean(axis=-1, keepdims=True)
    cols = np.swapaxes(fields, -1, -2)
    cols = cols - cols.mean(axis=-1, keepdims=True)
    spec = np.concatenate([np.abs(np.fft.rfft(rows * win, axis=-1)) ** 2,
                           np.abs(np.fft.rfft(cols * win, axis=-1)) ** 2])
    return np.fft.rfftfreq(n), spec.reshape(-1, spec.shape[-1]).mean(axis=0)


def loglog_slope(k, p, lo, hi):
    sel = np.arange(lo, hi + 1)
    return np.polyfit(np.log(k[sel]), np.log(p[sel]), 1)[0]


def semivariogram(fields, max_lag):
    """0.5 E[(x(r + h) - x(r))^2] along rows and columns, h = 1..max_lag [px]."""
    lags = np.arange(1, max_lag + 1)
    gamma = [0.25 * (np.mean((fields[..., :, h:] - fields[..., :, :-h]) ** 2)
                     + np.mean((fields[..., h:, :] - fields[..., :-h, :]) ** 2)) for h in lags]
    return lags, np.array(gamma)


def structure_function(series, max_lag):
    """E[(x(t + n) - x(t))^2] over the day axis (-1), n = 1..max_lag."""
    lags = np.arange(1, max_lag + 1)
    return lags, np.array([np.mean((series[..., n:] - series[..., :-n]) ** 2) for n in lags])


# ----------------------------------------------------------------------------------------
# turbulence
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["powerlaw", "exponential"])
def test_turbulence_std_is_sigma_over_many_fields(kind):
    # sigma per group of fields (a (2, 1) tensor broadcast to the (2, 300) leading dims)
    sigma = torch.tensor([[0.005], [0.015]], dtype=F64)
    x = noise.turbulence((2, 300, 64, 64), 1000.0, sigma, 10e3, kind=kind, generator=gen(1),
                         dtype=F64).numpy()
    assert x.shape == (2, 300, 64, 64)
    rms = np.sqrt((x ** 2).mean(axis=(1, 2, 3)))          # ensemble std (the mean is 0)
    # 300 maps, each a few tens of independent values at these scales: the standard error
    # of the rms is ~2 %; +-6 % is 3 standard errors.
    np.testing.assert_allclose(rms, [0.005, 0.015], rtol=0.06)
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)) / [0.005, 0.015], 0.0, atol=0.1)


@pytest.mark.parametrize("kind", ["powerlaw", "exponential"])
def test_turbulence_float32(kind):
    x = noise.turbulence((200, 32, 48), 500.0, 0.01, 5e3, kind=kind, generator=gen(2))
    assert x.dtype == torch.float32 and x.shape == (200, 32, 48)
    assert torch.isfinite(x).all()
    np.testing.assert_allclose(float(x.double().pow(2).mean().sqrt()), 0.01, rtol=0.08)


def test_exponential_correlation_length_from_variogram():
    # two correlation lengths in one call (a (2, 1) tensor), 5 and 15 pixels of 1 km
    lengths = np.array([5e3, 15e3])
    x = noise.turbulence((2, 64, 128, 128), 1000.0, 0.01, torch.tensor(lengths)[:, None],
                         kind="exponential", generator=gen(3), dtype=F64).numpy()

    def model(h, sill, length):
        return sill * (1.0 - np.exp(-h / length))

    for fields, length in zip(x, lengths):
        lags, gamma = semivariogram(fields, int(3 * length / 1000.0))
        (sill, fitted), _ = optimize.curve_fit(model, lags * 1000.0, gamma, p0=(1e-4, 1e4))
        np.testing.assert_allclose(fitted, length, rtol=0.15)
        np.testing.assert_allclose(sill, 0.01 ** 2, rtol=0.15)


def test_exponential_covariance_decays_to_1_over_e_at_the_correlation_length():
    x = noise.turbulence((128, 96, 96), 500.0, 1.0, 4e3, kind="exponential", generator=gen(4),
                         dtype=F64).numpy()
    lag = 8                                                   # 4 km / 500 m
    cov = 0.5 * ((x[..., :, lag:] * x[..., :, :-lag]).mean() + (x[..., lag:, :] * x[..., :-lag, :]).mean())
    np.testing.assert_allclose(cov / (x ** 2).mean(), math.exp(-1.0), atol=0.04)


def test_padding_keeps_opposite_edges_apart():
    # L = 8 px on a 32-px map: the first and last columns are 31 px apart, correlation
    # exp(-31/8) = 0.02 with the default 2x padding; without padding the FFT's periodicity
    # puts them 1 px apart (exp(-1/8) = 0.88). 2000 maps: standard error ~0.01.
    def edge_correlation(pad):
        x = noise.turbulence((2000, 32, 32), 1.0, 1.0, 8.0, kind="exponential", generator=gen(30),
                             dtype=F64, pad_factor=pad).numpy()
        return (x[..., 0] * x[..., -1]).mean() / (x ** 2).mean()

    np.testing.assert_allclose(edge_correlation(2.0), math.exp(-31 / 8), atol=0.04)
    np.testing.assert_allclose(edge_correlation(1.0), math.exp(-1 / 8), atol=0.04)


def test_powerlaw_large_scales_slope():
    # crossover wavelength (0.5 px) below the pixel: the whole band is in the large-scale
    # regime, 1-D beta = 5/3, 2-D slope -8/3 (Hanssen 2001).
    x = noise.turbulence((32, 256, 256), 1000.0, 0.01, 500.0, generator=gen(5), dtype=F64).numpy()
    k, p = radial_psd(x)
    np.testing.assert_allclose(loglog_slope(k, p, 4, 64), -8.0 / 3.0, atol=0.12)
    k1, p1 = profile_psd(x)
    np.testing.assert_allclose(loglog_slope(k1, p1, 4, 32), -5.0 / 3.0, atol=0.12)


def test_powerlaw_small_scales_slope():
    # crossover wavelength (1000 px) far above the map: small-scale regime, 1-D beta = 8/3,
    # 2-D slope -11/3.
    x = noise.turbulence((32, 256, 256), 1000.0, 0.01, 1e6, generator=gen(6), dtype=F64).numpy()
    k, p = radial_psd(x)
    np.testing.assert_allclose(loglog_slope(k, p, 4, 64), -11.0 / 3.0, atol=0.12)
    k1, p1 = profile_psd(x)
    np.testing.assert_allclose(loglog_slope(k1, p1, 4, 32), -8.0 / 3.0, atol=0.12)


def test_powerlaw_spectrum_bends_at_corr_length():
    # crossover inside the band (16 px): the measured spectrum follows the documented PSD
    # k^-8/3 (1 + (k L)^2)^-1/2 on both sides of k = 1/L, i.e. no residual trend.
    length_px = 16
    x = noise.turbulence((32, 256, 256), 100.0, 0.01, length_px * 100.0, generator=gen(7),
                         dtype=F64).numpy()
    k, p = radial_psd(x)
    sel = np.arange(4, 100)
    model = k[sel] ** (-8.0 / 3.0) * (1.0 + (k[sel] * length_px) ** 2) ** -0.5
    ratio = np.log(p[sel] / model)
    trend = np.polyfit(np.log(k[sel]), ratio, 1)[0]
    np.testing.assert_allclose(trend, 0.0, atol=0.08)
    np.testing.assert_allclose(ratio - ratio.mean(), 0.0, atol=0.25)
    # while a pure power law of either slope leaves a clear trend
    assert abs(np.polyfit(np.log(k[sel]), np.log(p[sel] * k[sel] ** (8.0 / 3.0)), 1)[0]) > 0.4


def test_turbulence_rejects_bad_input():
    with pytest.raises(ValueError, match="powerlaw, exponential"):
        noise.turbulence((4, 4), 1.0, 0.01, 10.0, kind="kolmogorov")
    with pytest.raises(ValueError, match="sigma_m"):
        noise.turbulence((4, 4), 1.0, -0.01, 10.0)
    with pytest.raises(ValueError, match="corr_length_m"):
        noise.turbulence((4, 4), 1.0, 0.01, 0.0)
    with pytest.raises(ValueError, match="broadcast"):
        noise.turbulence((3, 4, 4), 1.0, torch.ones(2), 10.0)
    with pytest.raises(ValueError, match="pixel_m"):
        noise.turbulence((4, 4), 0.0, 0.01, 10.0)
    with pytest.raises(ValueError, match="pad_factor"):
        noise.turbulence((4, 4), 1.0, 0.01, 10.0, pad_factor=0.5)
    with pytest.raises(ValueError, match="dtype"):
        noise.turbulence((4, 4), 1.0, 0.01, 10.0, dtype=torch.float16)


# ----------------------------------------------------------------------------------------
# stratified delay
# ----------------------------------------------------------------------------------------

def test_stratified_coefficient_recovered_by_regression():
    dem = noise.fractal_dem((96, 96), 1000.0, 2000.0, generator=gen(8), dtype=F64)
    coeff = torch.tensor([-20e-6, -5e-6, 0.0, 7e-6, 20e-6], dtype=F64)      # m per m
    delay = noise.stratified(dem, coeff)
    assert delay.shape == (5, 96, 96)
    h = dem.numpy().ravel()
    design = np.column_stack([h, np.ones_like(h)])
    for d, c in zip(delay.numpy(), coeff.numpy()):
        slope, intercept = np.linalg.lstsq(design, d.ravel(), rcond=None)[0]
        np.testing.assert_allclose(slope, c, atol=1e-12)
        np.testing.assert_allclose(d.mean(), 0.0, atol=1e-12)              # mean removed


def test_stratified_broadcasts_and_ignores_nan():
    dem = torch.rand((2, 1, 8, 8), generator=gen(10), dtype=F64) * 1000.0
    dem[0, 0, 3, 3] = float("nan")
    out = noise.stratified(dem, torch.full((2, 3), 1e-5, dtype=F64))
    assert out.shape == (2, 3, 8, 8)
    assert torch.isnan(out[0, :, 3, 3]).all() and torch.isfinite(out[1]).all()
    np.testing.assert_allclose(torch.nanmean(out, dim=(-2, -1)).numpy(), 0.0, atol=1e-15)
    with pytest.raises(ValueError, match="broadcast"):
        noise.stratified(dem, torch.ones(3, 1))


# ----------------------------------------------------------------------------------------
# ramps
# ----------------------------------------------------------------------------------------

def _grid(h, w, pixel_m):
    x = (np.arange(w) - (w - 1) / 2) * pixel_m
    y = -(np.arange(h) - (h - 1) / 2) * pixel_m
    return np.meshgrid(x, y)                                  # east, north of each pixel


def test_ramp_slope_recovered_by_plane_fit():
    slopes = torch.rand(500, generator=gen(11), dtype=F64) * 1e-6
    r = noise.ramp((500, 32, 48), 250.0, slopes, generator=gen(12), dtype=F64).numpy()
    xx, yy = _grid(32, 48, 250.0)
    design = np.column_stack([xx.ravel(), yy.ravel(), np.ones(xx.size)])
    coef = np.linalg.lstsq(design, r.reshape(500, -1).T, rcond=None)[0]     # (3, 500)
    np.testing.assert_allclose(np.hypot(coef[0], coef[1]), slopes.numpy(), rtol=1e-9, atol=1e-20)
    np.testing.assert_allclose(coef[2], 0.0, atol=1e-15)                     # zero mean
    np.testing.assert_allclose(r - (design @ coef).T.reshape(r.shape), 0.0, atol=1e-15)  # planar
    direction = np.mod(np.arctan2(coef[1], coef[0]), 2 * np.pi) / (2 * np.pi)
    assert stats.kstest(direction, "uniform").pvalue > 0.01                  # random direction


def test_ramp_quadratic_term():
    r = noise.ramp((50, 40, 40), 1000.0, 5e-7, generator=gen(13), dtype=F64,
                   quadratic_m_per_m2=2e-12).numpy()
    xx, yy = _grid(40, 40, 1000.0)
    design = np.column_stack([xx.ravel() ** 2, xx.ravel() * yy.ravel(), yy.ravel() ** 2,
                              xx.ravel(), yy.ravel(), np.ones(xx.size)])
    coef = np.linalg.lstsq(design, r.reshape(50, -1).T, rcond=None)[0]
    for a, b, c, gx, gy, _ in coef.T:
        curvatures = np.linalg.eigvalsh([[2 * a, b], [b, 2 * c]])
        np.testing.assert_allclose(curvatures, [0.0, 4e-12], atol=1e-18)     # 2 c along s, 0 across
        np.testing.assert_allclose(np.hypot(gx, gy), 5e-7, rtol=1e-9)
    np.testing.assert_allclose(r.mean(axis=(1, 2)), 0.0, atol=1e-15)
    # the same seed gives the same plane without the quadratic term
    plane = noise.ramp((50, 40, 40), 1000.0, 5e-7, generator=gen(13), dtype=F64).numpy()
    np.testing.assert_allclose((design[:, 3:5] @ coef[3:5]).T.reshape(r.shape), plane, atol=1e-13)


# ----------------------------------------------------------------------------------------
# decorrelation mask
# ----------------------------------------------------------------------------------------

def test_decorrelation_mask_fraction_and_clusters():
    fraction = torch.tensor([[0.2], [0.5]])
    valid = noise.decorrelation_mask((2, 100, 64, 64), 500.0, fraction, generator=gen(14))
    assert valid.dtype == torch.bool and valid.shape == (2, 100, 64, 64)
    invalid = ~valid.numpy()
    # 100 maps of ~(64 / 4)^2 patches each: standard error ~0.5 %
    np.testing.assert_allclose(invalid.mean(axis=(1, 2, 3)), [0.2, 0.5], atol=0.02)
    # clustered: P(east neighbour invalid | invalid) from a bivariate normal with the
    # field's lag-1 correlation exp(-500 m / 2 km) (~0.62; independent holes: 0.2).
    rho = math.exp(-500.0 / noise.DECORRELATION_PATCH_M)
    t = stats.norm.ppf(0.8)
    both = stats.multivariate_normal([0, 0], [[1, rho], [rho, 1]]).cdf([-t, -t])
    cond = (invalid[0][:, :, 1:] & invalid[0][:, :, :-1]).sum() / invalid[0][:, :, :-1].sum()
    np.testing.assert_allclose(cond, both / 0.2, atol=0.03)


def test_decorrelation_mask_limits():
    assert noise.decorrelation_mask((3, 16, 16), 100.0, 0.0, generator=gen(15)).all()
    assert not noise.decorrelation_mask((3, 16, 16), 100.0, 1.0, generator=gen(15)).any()
    with pytest.raises(ValueError, match="fraction"):
        noise.decorrelation_mask((16, 16), 100.0, 1.5)


# ----------------------------------------------------------------------------------------
# GNSS
# ----------------------------------------------------------------------------------------

def _fit_white_rw(series, max_lag=30):
    """(white, rw) from Var(x[t + n] - x[t]) = 2 white^2 + rw^2 n."""
    lags, v = structure_function(series, max_lag)
    rw2, twice_white2 = np.polyfit(lags, v, 1)
    return math.sqrt(twice_white2 / 2.0), math.sqrt(rw2)


def test_gnss_white_and_random_walk_recovered():
    # random walk exaggerated (0.5 and 1 mm/sqrt(day)) so that 121 days resolve it
    x = noise.gnss_noise((1000, 121), 2.3e-3, 6.8e-3, 0.5e-3, 1.0e-3, generator=gen(16),
                         dtype=F64).numpy()
    assert x.shape == (1000, 121, 3)
    for comp, (white, rw) in enumerate([(2.3e-3, 0.5e-3), (2.3e-3, 0.5e-3), (6.8e-3, 1.0e-3)]):
        w_est, rw_est = _fit_white_rw(x[..., comp])
        # 1000 stations x ~100 differences per lag: ~1-2 % standard errors
        np.testing.assert_allclose(w_est, white, rtol=0.05)
        np.testing.assert_allclose(rw_est, rw, rtol=0.06)


def test_gnss_default_random_walk_and_white_noise():
    # the default random walk alone (white = 0): variance grows as rw^2 n from 0 on day 0
    x = noise.gnss_noise((2000, 121), 0.0, 0.0, noise.GNSS_RW_H_M_PER_SQRT_DAY,
                         noise.GNSS_RW_V_M_PER_SQRT_DAY, generator=gen(17), dtype=F64).numpy()
    assert (x[:, 0, :] == 0).all()
    np.testing.assert_allclose(noise.GNSS_RW_H_M_PER_SQRT_DAY * math.sqrt(365.25), 1e-3)
    for comp, rw in enumerate([noise.GNSS_RW_H_M_PER_SQRT_DAY] * 2 + [noise.GNSS_RW_V_M_PER_SQRT_DAY]):
        lags, v = structure_function(x[..., comp], 30)
        np.testing.assert_allclose(np.sqrt(np.polyfit(lags, v, 1)[0]), rw, rtol=0.05)
    # the default white noise alone
    y = noise.gnss_noise((500, 121), noise.GNSS_WHITE_H_M, noise.GNSS_WHITE_V_M, 0.0, 0.0,
                         generator=gen(18), dtype=F64).numpy()
    np.testing.assert_allclose(y.std(axis=(0, 1)), [2.3e-3, 2.3e-3, 6.8e-3], rtol=0.02)
    lags, v = structure_function(y[..., 2], 10)
    np.testing.assert_allclose(v, 2 * 6.8e-3 ** 2, rtol=0.03)               # flat: white


def test_gnss_common_mode_identical_across_stations():
    cm = noise.gnss_noise((200, 7, 121), 0.0, 0.0, 0.0, 0.0, common_mode_m=3e-3, generator=gen(19),
                          dtype=F64)
    assert torch.equal(cm, cm[:, :1].expand_as(cm))                         # same at every station
    c = cm[:, 0].numpy().reshape(-1, 3)
    np.testing.assert_allclose(c.std(axis=0), 3e-3, rtol=0.03)
    np.testing.assert_allclose(np.corrcoef(c.T) - np.eye(3), 0.0, atol=0.03)  # per component
    # with white noise as well, station differences do not contain the common mode
    x = noise.gnss_noise((200, 7, 121), 2.3e-3, 2.3e-3, 0.0, 0.0, common_mode_m=3e-3,
                         generator=gen(20), dtype=F64).numpy()
    np.testing.assert_allclose(x.std(), math.hypot(2.3e-3, 3e-3), rtol=0.03)
    np.testing.assert_allclose((x[:, 1:] - x[:, :1]).std(), math.sqrt(2) * 2.3e-3, rtol=0.03)


def test_gnss_amplitude_tensors_broadcast_to_leading_dims():
    white = torch.tensor([1e-3, 4e-3], dtype=F64)
    x = noise.gnss_noise((2, 300, 121), white, white, 0.0, 0.0, generator=gen(21), dtype=F64).numpy()
    np.testing.assert_allclose(x.std(axis=(1, 2, 3)), [1e-3, 4e-3], rtol=0.03)
    with pytest.raises(ValueError, match="broadcast"):
        noise.gnss_noise((3, 300, 121), white, white, 0.0, 0.0)


def test_gnss_gaps_fraction_and_gap_lengths():
    observed = noise.gnss_gaps((400, 30, 121), torch.tensor([0.15] * 400), generator=gen(22))
    assert observed.dtype == torch.bool and observed.shape == (400, 30, 121)
    missing = ~observed.numpy().reshape(-1, 121)
    np.testing.assert_allclose(missing.mean(), 0.15, atol=0.01)
    np.testing.assert_allclose(missing[:, [0, 60, 120]].mean(axis=0), 0.15, atol=0.02)  # stationary
    lengths = []
    for row in missing[:3000]:
        edges = np.diff(np.concatenate([[0], row.astype(int), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        inner = (starts > 0) & (ends < 121)                      # gaps seen from start to end
        lengths.extend(ends[inner] - starts[inner])
    lengths = np.array(lengths)
    np.testing.assert_allclose(lengths.mean(), noise.GNSS_MEAN_GAP_DAYS, rtol=0.08)
    np.testing.assert_allclose((lengths == 1).mean(), 1.0 / noise.GNSS_MEAN_GAP_DAYS, atol=0.04)
    assert (lengths >= 5).any()


def test_gnss_gaps_limits():
    assert noise.gnss_gaps((5, 121), 0.0, generator=gen(23)).all()
    with pytest.raises(ValueError, match="gap_fraction"):
        noise.gnss_gaps((5, 121), 0.9)


# ----------------------------------------------------------------------------------------
# fractal DEM
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("beta", [2.0, 2.6])
def test_fractal_dem_relief_and_spectrum(beta):
    relief = torch.linspace(100.0, 3000.0, 16, dtype=F64)
    dem = noise.fractal_dem((16, 256, 256), 500.0, relief, beta=beta, generator=gen(24),
                            dtype=F64).numpy()
    p1, p99 = np.percentile(dem.reshape(16, -1), [1, 99], axis=1)
    np.testing.assert_allclose(p99 - p1, relief.numpy(), rtol=1e-9)         # exact per map
    np.testing.assert_allclose(dem.min(axis=(1, 2)), 0.01 * relief.numpy(), rtol=1e-9)  # all land
    k, p = radial_psd(dem)
    np.testing.assert_allclose(loglog_slope(k, p, 4, 64), -(beta + 1.0), atol=0.15)
    k1, p1d = profile_psd(dem)
    np.testing.assert_allclose(loglog_slope(k1, p1d, 4, 32), -beta, atol=0.15)


def test_fractal_dem_sea():
    dem = noise.fractal_dem((4, 64, 64), 1000.0, 1000.0, generator=gen(25), dtype=F64,
                            sea_fraction=torch.tensor([0.0, 0.1, 0.3, 0.6], dtype=F64))
    assert (dem >= 0).all()
    sea = (dem <= 0).double().mean(dim=(1, 2)).numpy()
    np.testing.assert_allclose(sea, [0.0, 0.1, 0.3, 0.6], atol=2.0 / 64 ** 2)


# ----------------------------------------------------------------------------------------
# determinism, dtypes, devices
# ----------------------------------------------------------------------------------------

CALLS = {
    "turbulence": lambda g, dt: noise.turbulence((2, 3, 24, 20), 500.0, 0.01, 5e3, generator=g, dtype=dt),
    "exponential": lambda g, dt: noise.turbulence((2, 24, 20), 500.0, 0.01, 5e3, kind="exponential",
                                                  generator=g, dtype=dt),
    "ramp": lambda g, dt: noise.ramp((3, 8, 8), 500.0, 5e-7, generator=g, dtype=dt),
    "mask": lambda g, dt: noise.decorrelation_mask((3, 24, 24), 500.0, 0.3, generator=g),
    "gnss": lambda g, dt: noise.gnss_noise((5, 30), 2e-3, 6e-3, 1e-4, 2e-4, 1e-3, generator=g, dtype=dt),
    "gaps": lambda g, dt: noise.gnss_gaps((5, 60), 0.3, generator=g),
    "dem": lambda g, dt: noise.fractal_dem((2, 32, 32), 500.0, 800.0, generator=g, dtype=dt),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_seed_same_tensor_other_seed_differs(name, dtype):
    a, b, c = (CALLS[name](gen(seed), dtype) for seed in (42, 42, 43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    if a.is_floating_point():
        assert a.dtype == dtype and torch.isfinite(a).all()
    else:
        assert a.dtype == torch.bool


def test_without_generator_uses_the_global_rng():
    with torch.random.fork_rng():
        torch.manual_seed(5)
        a = noise.turbulence((8, 8), 100.0, 0.01, 1e3)
        torch.manual_seed(5)
        b = noise.turbulence((8, 8), 100.0, 0.01, 1e3)
    assert torch.equal(a, b) and a.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_and_device():
    g = torch.Generator(device="cuda").manual_seed(0)
    for name, call in CALLS.items():
        out = call(g, torch.float32)
        assert out.device.type == "cuda", name
    # a CPU generator with a CUDA result gives the CPU numbers, moved
    a = noise.turbulence((2, 16, 16), 500.0, 0.01, 5e3, generator=gen(0), device="cuda")
    b = noise.turbulence((2, 16, 16), 500.0, 0.01, 5e3, generator=gen(0))
    assert a.device.type == "cuda"
    torch.testing.assert_close(a.cpu(), b, rtol=1e-5, atol=1e-9)
