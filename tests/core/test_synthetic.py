"""The scene sampler: the physics it promises, determinism, user DEM and stations."""

import numpy as np
import pytest
import torch

from insar_gnss_3d.core.okada import surface_displacement
from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler, scene_arrays

NOISE_OFF = dict(size_px=32, turbulence_sigma_m=(0.0, 0.0), stratified_m_per_m=0.0, ramp_m_per_m=0.0,
                 epoch_offset_m=0.0, decorrelated_fraction=(0.0, 0.0), sea_probability=0.0,
                 frame_edge_probability=0.0, track_dropout_probability=0.0,
                 drop_acquisition_fraction=0.0, gnss_white_h_m=(0.0, 0.0), gnss_white_v_m=(0.0, 0.0),
                 gnss_rw_h_m_per_sqrt_day=(0.0, 0.0), gnss_rw_v_m_per_sqrt_day=(0.0, 0.0),
                 gnss_common_mode_m=(0.0, 0.0), gnss_gap_fraction=(0.0, 0.0))


def _okada_on(sampler, fault, x, y):
    ue, un, uu = surface_displacement(fault, torch.as_tensor(x, dtype=torch.float64),
                                      torch.as_tensor(y, dtype=torch.float64))
    return torch.stack([ue, un, uu]).numpy()


def test_without_noise_insar_is_okada_on_los_times_the_slip_history_and_gnss_is_okada():
    sampler = SceneSampler(SceneConfig(**NOISE_OFF), seed=11)
    batch = sampler.sample(3)
    n = 32
    for b in range(3):
        s = scene_arrays(batch, b)
        truth = _okada_on(sampler, s.fault, sampler.pixel_x.numpy(), sampler.pixel_y.numpy())
        np.testing.assert_allclose(s.truth_m, truth, rtol=1e-5, atol=1e-9)
        for t in range(2):
            los_disp = (s.truth_m * s.los[t]).sum(0)
            history = np.interp(s.acq_days[t], np.arange(121), s.slip_history)
            expected = (history - history[0])[:, None, None] * los_disp
            np.testing.assert_allclose(s.insar_m[t], expected, rtol=1e-4, atol=1e-7)
        at_stations = _okada_on(sampler, s.fault, s.gnss_xy_m[:, 0], s.gnss_xy_m[:, 1]).T   # (S, 3)
        relative = s.gnss_m - s.gnss_m[:, :1]
        expected = (s.slip_history - s.slip_history[0])[None, :, None] * at_stations[:, None, :]
        np.testing.assert_allclose(relative, expected, rtol=1e-4, atol=1e-6)
        # the truth is the displacement from the first to the last day
        assert s.slip_history[0] == 0.0 and s.slip_history[-1] == 1.0
        assert s.truth_m.shape == (3, n, n)


def test_los_vectors_are_sentinel1_like_unit_vectors():
    s = scene_arrays(SceneSampler(SceneConfig(size_px=32), seed=5).sample(1))
    norm = np.sqrt((s.los ** 2).sum(1))
    np.testing.assert_allclose(norm, 1.0, atol=1e-5)
    asc, desc = s.los[0].mean((1, 2)), s.los[1].mean((1, 2))
    assert -0.75 < asc[0] < -0.45 and 0.45 < desc[0] < 0.75       # east: asc looks east (towards -E)
    assert -0.2 < asc[1] < -0.03 and -0.2 < desc[1] < -0.03       # north
    assert 0.65 < asc[2] < 0.88 and 0.65 < desc[2] < 0.88         # up (incidence 30-46 deg)
    # incidence varies across the swath
    assert np.ptp(s.los[0, 2]) > 1e-3


def test_largest_displacement_spans_the_configured_range():
    sampler = SceneSampler(SceneConfig(size_px=32), seed=2)
    batch = sampler.sample(24)
    peaks = batch.truth_m.abs().amax((1, 2, 3)).numpy()
    assert peaks.min() >= 1e-3 * 0.999 and peaks.max() <= 1.0 * 1.001
    assert peaks.max() / peaks.min() > 30          # mm slow slips to decimetre-metre earthquakes


def test_same_seed_same_scene_different_seed_different_scene():
    cfg = SceneConfig(size_px=32)
    a, b = SceneSampler(cfg, seed=9).sample(2), SceneSampler(cfg, seed=9).sample(2)
    c = SceneSampler(cfg, seed=10).sample(2)
    for name in ("insar_m", "acq_days", "los", "dem_m", "gnss_m", "gnss_xy_m", "truth_m"):
        ta, tb = getattr(a, name), getattr(b, name)
        assert torch.equal(torch.nan_to_num(ta, nan=-999.0), torch.nan_to_num(tb, nan=-999.0)), name
    assert not torch.equal(a.truth_m, c.truth_m)


def test_user_dem_crops_and_user_stations_follow_the_crop():
    rng = np.random.default_rng(0)
    dem = rng.uniform(10, 900, size=(80, 70))
    stations = np.array([[5000.0, -5000.0], [40000.0, -60000.0], [65000.0, -20000.0]])
    cfg = SceneConfig(size_px=32, sea_probability=0.0)
    batch = SceneSampler(cfg, seed=4, dem_m=dem, stations_xy_m=stations).sample(4)
    for b in range(4):
        crop = batch.dem_m[b].numpy()
        # the crop is a window of the user DEM
        hits = [(r, c) for r in range(80 - 31) for c in range(70 - 31)
                if np.allclose(dem[r:r + 32, c:c + 32], crop, atol=1e-3)]
        assert len(hits) == 1
        r, c = hits[0]
        xy = batch.gnss_xy_m[b][batch.gnss_valid[b]].numpy()
        expected = stations - np.array([c * 1000.0, -r * 1000.0])
        np.testing.assert_allclose(np.sort(xy[:, 0]), np.sort(expected[:, 0]), atol=1e-2)


def test_sea_and_frame_edges_leave_nan_and_no_station_at_sea():
    cfg = SceneConfig(size_px=48, sea_probability=1.0, frame_edge_probability=1.0)
    batch = SceneSampler(cfg, seed=8).sample(4)
    for b in range(4):
        sea = (batch.dem_m[b] <= 0).numpy()
        assert sea.any()
        insar = batch.insar_m[b, :, 0].numpy()
        assert np.isnan(insar[:, sea]).all()
        xy = batch.gnss_xy_m[b][batch.gnss_valid[b]].numpy()
        col, row = np.floor(xy[:, 0] / 1000).astype(int), np.floor(-xy[:, 1] / 1000).astype(int)
        inside = (col >= 0) & (col < 48) & (row >= 0) & (row < 48)
        assert not sea[row[inside], col[inside]].any()


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid"):
        SceneConfig.from_dict({"size_pixels": 64})
