"""Near-field gaps of coseismic interferograms: the pixels whose fringes are too dense to unwrap
(Itoh 1982: the phase must change by less than pi between neighbouring pixels)."""

import math

import numpy as np
import pytest
import torch

from insar_gnss_3d.core.conventions import WAVELENGTH_M
from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler, unwrappable


def plane(slope_m_per_m, pixel_m=1000.0, n=12, angle_deg=30.0):
    """A LOS field rising ``slope_m_per_m`` along the direction ``angle_deg`` (from x, towards y)."""
    y, x = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64),
                          indexing="ij")
    a = math.radians(angle_deg)
    return slope_m_per_m * pixel_m * (x * math.cos(a) + y * math.sin(a))


def test_a_plane_unwraps_below_a_quarter_wavelength_per_pixel_and_not_above():
    # lambda / 4 = 13.9 mm over a 100 m unwrapping pixel: a strain of 1.39e-4
    limit = WAVELENGTH_M / 4.0 / 100.0
    assert unwrappable(plane(0.95 * limit), 1000.0, 100.0).all()
    assert not unwrappable(plane(1.05 * limit), 1000.0, 100.0).any()
    # a coarser unwrapping grid aliases the same field
    assert not unwrappable(plane(0.95 * limit), 1000.0, 120.0).any()
    # one unwrapping pixel per leading field
    fields = torch.stack([plane(0.5 * limit), plane(0.5 * limit)])
    masks = unwrappable(fields, 1000.0, torch.tensor([100.0, 300.0]))
    assert masks[0].all() and not masks[1].any()


def strong_scenes(unwrapping_pixel_m):
    config = SceneConfig(size_px=32, model_epochs=4, max_stations=12, max_displacement_m=(2.0, 4.0),
                         slow_slip_fraction=0.0, decorrelated_fraction=(0.0, 0.0), sea_probability=0.0,
                         frame_edge_probability=0.0, track_dropout_probability=0.0,
                         unwrapping_pixel_m=unwrapping_pixel_m)
    return SceneSampler(config, seed=5).sample(6)


def test_scenes_lose_the_pixels_whose_fringes_alias_and_keep_the_far_field():
    batch = strong_scenes((100.0, 100.0))
    signal = (batch.truth_m[:, None] * batch.los).sum(2)                  # (B, 2, H, W) LOS of the truth
    gy, gx = np.gradient(signal.numpy(), batch.pixel_m, axis=(-2, -1))
    change_m = np.hypot(gx, gy) * 100.0                                  # over one 100 m pixel
    observed = np.isfinite(batch.insar_m.numpy()).any(2)                 # (B, 2, H, W)
    # steps inside the window: the largest displacement of each series is the truth's
    aliased = change_m >= WAVELENGTH_M / 4.0 * 1.001
    assert aliased.sum() > 50, "the scenes must have a near field for the test to mean anything"
    assert not observed[aliased].any()
    # the far field stays: no other mask is drawn
    assert observed[change_m < WAVELENGTH_M / 4.0 * 0.999].all()
    # off: the same scenes (the unwrapping pixels have a stream of their own), near field kept
    plain = strong_scenes((0.0, 0.0))
    assert torch.equal(plain.truth_m, batch.truth_m) and torch.equal(plain.los, batch.los)
    assert np.isfinite(plain.insar_m.numpy()).any(2)[aliased].all()
    kept = np.isfinite(batch.insar_m.numpy())
    assert np.array_equal(plain.insar_m.numpy()[kept], batch.insar_m.numpy()[kept])


def test_the_unwrapping_range_is_checked():
    with pytest.raises(ValueError, match="unwrapping_pixel_m"):
        SceneConfig(unwrapping_pixel_m=(200.0, 100.0))
