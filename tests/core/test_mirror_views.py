"""The east-west mirror: a symmetry of the physics, of the network's inputs, and of the two-view
prediction that inference runs."""

import numpy as np
import pytest
import torch

from insar_gnss_3d.core.features import (mirror_east_west, mirror_field, network_inputs, resample_epochs,
                                          with_mirror_twins)
from insar_gnss_3d.core.geometry import los_unit_vector
from insar_gnss_3d.core.infer import predict_views
from insar_gnss_3d.core.metrics import ssim_torch
from insar_gnss_3d.core.modelfile import load_model
from insar_gnss_3d.core.okada import Fault, surface_displacement
from insar_gnss_3d.core.runtime import BUNDLED_MODEL
from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler, model_epoch_days
from insar_gnss_3d.core.train import batch_to_inputs


@pytest.mark.parametrize("strike, dip, rake", [(10.0, 20.0, 90.0), (75.0, 60.0, 30.0), (200.0, 85.0, -150.0)])
def test_the_mirror_image_of_an_okada_fault_is_a_fault_of_strike_and_rake_180_minus_theirs(strike, dip, rake):
    rng = np.random.default_rng(0)
    east, north = rng.uniform(-60e3, 60e3, 500), rng.uniform(-60e3, 60e3, 500)
    fault = Fault(east=7e3, north=-4e3, depth=2e3, strike=strike, dip=dip, length=30e3, width=12e3,
                  rake=rake, slip=2.0)
    mirrored = Fault(east=-7e3, north=-4e3, depth=2e3, strike=180.0 - strike, dip=dip, length=30e3,
                     width=12e3, rake=180.0 - rake, slip=2.0)
    ue, un, uu = surface_displacement(fault, east, north)
    me, mn, mu = surface_displacement(mirrored, -east, north)
    peak = np.abs(np.stack([ue, un, uu])).max()
    assert peak > 0.05
    np.testing.assert_allclose(np.stack([me, mn, mu]), np.stack([-ue, un, uu]), atol=1e-9 * peak)


def test_mirroring_swaps_sentinel1_ascending_and_descending_geometry():
    e, n, u = los_unit_vector(-12.0, 39.0)
    assert np.allclose([-e, n, u], los_unit_vector(-168.0, 39.0))


def test_the_mirrored_inputs_are_the_inputs_of_the_mirrored_scene():
    scene = SceneConfig.from_dict({"size_px": 32, "model_epochs": 4, "max_stations": 12})
    batch = SceneSampler(scene, seed=3).sample(2)
    epochs = resample_epochs(batch.insar_m, batch.acq_days, model_epoch_days(scene))
    inputs = network_inputs(epochs, batch.los, batch.dem_m, batch.gnss_m, batch.gnss_xy_m, batch.gnss_valid,
                            batch.pixel_m)
    width_m = scene.size_px * float(batch.pixel_m)
    los = batch.los.flip(-1)[:, [1, 0]].clone()
    los[:, :, 0] *= -1
    gnss = batch.gnss_m.clone()
    gnss[..., 0] *= -1
    xy = batch.gnss_xy_m.clone()
    xy[..., 0] = width_m - xy[..., 0]
    mirrored_scene = network_inputs(epochs.flip(-1)[:, [1, 0]], los, batch.dem_m.flip(-1), gnss, xy,
                                    batch.gnss_valid, batch.pixel_m)
    mirrored = mirror_east_west(inputs)
    for name in ("insar", "dem", "gnss_xy", "scale_m"):
        assert torch.allclose(getattr(mirrored, name), getattr(mirrored_scene, name), atol=1e-5), name
    # GNSS: the same series up to each station's reference (torch.nanmedian of an even count is
    # the lower middle value, so -x is referenced to minus the upper one)
    observed = mirrored_scene.gnss[:, :, 3:] > 0
    assert torch.equal(mirrored.gnss[:, :, 3:], mirrored_scene.gnss[:, :, 3:])
    difference = (mirrored.gnss - mirrored_scene.gnss)[:, :, :3]
    reference = (difference * observed).sum(-1, keepdim=True) / observed.sum(-1, keepdim=True).clamp_min(1)
    assert float(((difference - reference) * observed).abs().max()) < 1e-5
    again = mirror_east_west(mirrored)
    assert torch.equal(again.insar, inputs.insar) and torch.allclose(again.gnss_xy, inputs.gnss_xy)
    field = torch.randn(2, 3, 8, 8)
    assert torch.equal(mirror_field(mirror_field(field)), field)


@pytest.fixture(scope="module")
def bundled():
    model, scene, _ = load_model(BUNDLED_MODEL)
    batch = SceneSampler(scene, seed=11).sample(8)
    return model.eval(), batch_to_inputs(batch, scene)


def test_the_mirrored_view_is_as_good_as_the_scene_and_the_two_view_mean_is_equivariant(bundled):
    model, (inputs, target) = bundled
    with torch.no_grad():
        plain = model(inputs)
        mirrored_view = mirror_field(model(mirror_east_west(inputs)))
        mean, std = predict_views(model, inputs, with_std=True)
        mean_m, std_m = predict_views(model, mirror_east_west(inputs), with_std=True)
    data_range = (target.amax((-2, -1)) - target.amin((-2, -1))).clamp_min(1e-2)
    plain_score = ssim_torch(plain, target, data_range).mean(0)
    mirrored_score = ssim_torch(mirrored_view, target, data_range).mean(0)
    # the network was never shown mirrored scenes as such: a wrong symmetry would score far lower
    assert bool((mirrored_score > plain_score - 0.1).all()), (plain_score, mirrored_score)
    assert torch.allclose(mean_m, mirror_field(mean), atol=1e-5)
    assert torch.allclose(std_m, std.flip(-1), atol=1e-5)
    # the mixture's std covers half the views' difference (in calibrated units) and is about
    # the single view's where they agree
    one = predict_views(model, inputs, with_std=True, views=1)[1]
    scale = model.std_scale[None, :, None, None]
    assert bool((std >= scale * 0.5 * (mirrored_view - plain).abs() - 1e-6).all())
    assert float(std.mean()) >= 0.9 * float(one.detach().mean())
    with pytest.raises(ValueError, match="views"):
        predict_views(model, inputs, views=3)


def test_mirror_twins_follow_their_scenes_and_are_the_mirrored_scenes():
    scene = SceneConfig.from_dict({"size_px": 32, "model_epochs": 4, "max_stations": 12})
    inputs, target = batch_to_inputs(SceneSampler(scene, seed=5).sample(3), scene)
    doubled, doubled_target = with_mirror_twins(inputs, target)
    twin = mirror_east_west(inputs)
    assert doubled.insar.shape[0] == doubled_target.shape[0] == 6
    assert torch.equal(doubled.insar[:3], inputs.insar) and torch.equal(doubled.insar[3:], twin.insar)
    assert torch.equal(doubled.gnss_xy[3:], twin.gnss_xy) and torch.equal(doubled.scale_m[3:], inputs.scale_m)
    assert torch.equal(doubled_target[:3], target)
    # the twin's truth: east negated, columns reversed (an Okada solution, test above)
    assert torch.equal(doubled_target[3:, 0], -target[:, 0].flip(-1))
    assert torch.equal(doubled_target[3:, 1:], target[:, 1:].flip(-1))
