"""The bounded GNSS prior (simple kriging): it honours the stations, reverts to zero far
from them, and stays bounded for degenerate networks where a thin-plate spline does not."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from insar_gnss_3d.core.baselines import interpolate_gnss
from insar_gnss_3d.core.gnss_prior import kriging_prior, matern32
from insar_gnss_3d.core.model import kriging_tile, station_net_displacement

PIXEL_M = 2000.0
GX = (np.arange(200) + 0.5) * PIXEL_M              # 400 x 360 km scene
GY = -(np.arange(180) + 0.5) * PIXEL_M


def test_matern32_is_one_at_zero_and_decays():
    r = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    assert_allclose(matern32(r).numpy(), [1.0, (1 + 3 ** 0.5) * np.exp(-(3 ** 0.5)),
                                          (1 + 3 * 3 ** 0.5) * np.exp(-3 * 3 ** 0.5)], rtol=1e-12)


def test_interpolates_the_stations_within_their_noise_and_reverts_to_zero_far_away():
    rng = np.random.default_rng(0)
    xy = np.stack([rng.uniform(150e3, 250e3, 12), rng.uniform(-230e3, -130e3, 12)], 1)
    values = np.stack([np.exp(-((xy[:, 0] - 200e3) ** 2 + (xy[:, 1] + 180e3) ** 2) / (2 * 40e3 ** 2))] * 3, 1)
    values *= [1.0, -0.5, 0.3]
    mean, std = kriging_prior(xy, values, 1e-3, GX, GY)
    cols, rows = (xy[:, 0] / PIXEL_M).astype(int), (-xy[:, 1] / PIXEL_M).astype(int)
    at = mean[:, rows, cols].T
    # a station lies inside its pixel, up to 1.4 km from the centre: compare loosely there
    assert_allclose(at, values, atol=0.05)
    # the corner is > 150 km from every station: back to zero, std at the sill
    assert np.abs(mean[:, 0, 0]).max() < 0.02
    sill = np.sqrt((values ** 2).mean(0))
    assert_allclose(std[:, 0, 0], sill, rtol=0.02)
    assert (std[:, rows, cols] < 0.2 * sill[:, None]).all()


@pytest.mark.parametrize("count", [1, 2, 3])
def test_degenerate_networks_give_a_bounded_prior(count):
    """Two or three stations almost on one line (condition number of the spline ~1e8), or one."""
    xy = np.array([[180e3, -180e3], [200e3, -180.5e3], [220e3, -180.7e3]])[:count]
    values = np.array([[1.0, 0.5, 0.2], [1.5, -0.6, 0.3], [0.8, 0.2, -0.1]])[:count]
    mean, std = kriging_prior(xy, values, 0.005, GX, GY)
    largest = np.abs(values).max(0)
    # kriging may overshoot between stations of opposite sign, but stays of their size
    assert (np.abs(mean).max(axis=(1, 2)) <= 1.5 * largest).all()
    assert np.abs(mean[:, 0, 0]).max() < 0.1 * largest.max()         # 250 km away: ~0
    assert np.isfinite(std).all() and (std > 0).all()
    if count == 3:
        # the thin-plate spline through the same points: a plane across the scene
        gx, gy = np.meshgrid(GX, GY)
        spline = interpolate_gnss(xy[:, 0], xy[:, 1], values, gx, gy, method="thin_plate")
        assert np.abs(spline[0]).max() > 5 * largest[0]


def test_no_station_gives_zero_mean_and_infinite_std():
    mean, std = kriging_prior(np.zeros((0, 2)), np.zeros((0, 3)), 0.01, GX, GY)
    assert not mean.any() and np.isinf(std).all()


def test_network_prior_from_series_matches_the_scene_function():
    """The prior inside the network (pixels, series) is the scene-wide prior (metres, nets)."""
    rng = np.random.default_rng(1)
    s, d = 9, 121
    xy_px = rng.uniform(0, 64, (1, s, 2))
    step = rng.normal(0, 1, (1, s, 3))
    series = np.zeros((1, s, 4, d))
    series[:, :, :3, 60:] = step[..., None]
    series[:, :, :3] += rng.normal(0, 0.01, series[:, :, :3].shape)
    series[:, :, 3] = 1.0
    g = torch.as_tensor(series)
    valid = torch.ones((1, s), dtype=torch.bool)
    net, net_var, has_net = station_net_displacement(g, valid)
    assert_allclose(net.numpy(), step, atol=0.02)
    assert_allclose(net_var.numpy(), 2 * 0.01 ** 2 / 10, rtol=0.8)
    tile = kriging_tile(torch.as_tensor(xy_px), net, net_var, has_net, 64, 64)[0].numpy()
    xy_m = np.stack([xy_px[0, :, 0], -xy_px[0, :, 1]], 1) * 1000.0
    grid = (np.arange(64) + 0.5) * 1000.0
    mean, _ = kriging_prior(xy_m, net[0].numpy(), np.sqrt(net_var[0].numpy()), grid, -grid,
                            fallback_length_m=16e3)
    assert_allclose(tile, mean, atol=1e-4)   # the correlations are float32


def test_large_networks_are_kriged_tile_by_tile_with_the_same_mean(monkeypatch):
    """Stations beyond CUTOFF_LENGTHS correlation lengths of a tile are left out: same field."""
    import insar_gnss_3d.core.gnss_prior as prior

    rng = np.random.default_rng(3)
    xy = np.stack([rng.uniform(0, 3e5, 600), -rng.uniform(0, 3e5, 600)], 1)
    values = rng.normal(0, 0.01, (600, 3))
    grid = (np.arange(300) + 0.5) * 1000.0
    local, _ = prior.kriging_prior(xy, values, 0.002, grid, -grid)
    monkeypatch.setattr(prior, "CUTOFF_LENGTHS", 1e9)         # every station for every tile
    full, _ = prior.kriging_prior(xy, values, 0.002, grid, -grid)
    assert_allclose(local, full, rtol=0, atol=1e-4 * np.abs(full).max())
