"""Multi-scale scenes: the pixel size drawn per batch, the geometry scaled with it (Okada's
scale invariance), the network told the pixel size, inference choosing its working pixel."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from insar_gnss_3d.core import prepare
from insar_gnss_3d.core.model import DualBranchNet, ModelConfig, adapted_model
from insar_gnss_3d.core.okada import Fault, surface_displacement
from insar_gnss_3d.core.synthetic import MULTI_SCALE, REALISM, SceneConfig, SceneSampler
from insar_gnss_3d.core.train import batch_to_inputs

_spec = importlib.util.spec_from_file_location("helpers_scenes",
                                               Path(__file__).resolve().parents[1] / "helpers_scenes.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

TINY = {"size_px": 32, "model_epochs": 4, "max_stations": 12}


def test_okada_surface_displacement_is_unchanged_when_every_length_scales():
    """The premise of at_pixel: a half-space has no length of its own (Okada 1985, eqs. 25-30)."""
    fault = Fault(east=3e3, north=-2e3, depth=4e3, strike=35.0, dip=28.0, length=30e3, width=12e3,
                  rake=95.0, slip=2.0)
    east = torch.linspace(-40e3, 50e3, 37, dtype=torch.float64)
    north = torch.linspace(-45e3, 30e3, 37, dtype=torch.float64)
    before = torch.stack(surface_displacement([fault], east, north))
    for k in (0.25, 7.0):
        scaled = Fault(east=k * fault.east, north=k * fault.north, depth=k * fault.depth, strike=fault.strike,
                       dip=fault.dip, length=k * fault.length, width=k * fault.width, rake=fault.rake,
                       slip=fault.slip)
        after = torch.stack(surface_displacement([scaled], k * east, k * north))
        assert float(before.abs().max()) > 0.3
        assert torch.allclose(after, before, rtol=1e-9, atol=1e-12)


def test_at_pixel_scales_the_fault_and_margin_and_nothing_physical():
    cfg = SceneConfig(**MULTI_SCALE)
    coarse = cfg.at_pixel(4000.0)
    assert coarse.pixel_m == 4000.0 and coarse.length_m == (40e3, 320e3) and coarse.width_m == (32e3, 200e3)
    assert coarse.top_depth_m == (0.0, 120e3) and coarse.station_margin_m == 120e3
    # in metres, as in the world: atmosphere, networks, relief
    for name in ("correlation_length_m", "station_spacing_m", "relief_m", "turbulence_sigma_m"):
        assert getattr(coarse, name) == getattr(cfg, name)


def test_a_pixel_range_must_hold_the_reference_pixel():
    with pytest.raises(ValueError, match="pixel_m_range"):
        SceneConfig(pixel_m_range=(2000.0, 4000.0))
    assert not SceneConfig().multi_scale and SceneConfig(pixel_m_range=(500.0, 4000.0)).multi_scale


def test_multi_scale_batches_draw_their_pixel_and_scale_their_faults():
    cfg = SceneConfig.from_dict({**SceneConfig(**MULTI_SCALE).to_dict(), **TINY})
    sampler = SceneSampler(cfg, seed=11)
    pixels, rupture_px = [], []
    for _ in range(12):
        batch = sampler.sample(2)
        pixels.append(batch.pixel_m)
        rupture_px += [f.length / batch.pixel_m for f in batch.faults]
        assert batch.truth_m.shape[-1] == 32 and bool(torch.isfinite(batch.truth_m).all())
    assert all(500.0 <= p <= 4000.0 for p in pixels)
    assert max(pixels) / min(pixels) > 2.5                   # log-uniform over 3 octaves
    # lengths drawn for 1 km pixels, scaled: 10-80 px whatever the pixel
    assert all(10.0 - 1e-9 <= r <= 80.0 + 1e-9 for r in rupture_px)
    again = SceneSampler(cfg, seed=11)
    assert [again.sample(2).pixel_m for _ in range(3)] == pixels[:3]


def test_multi_size_batches_draw_their_tile_size():
    with pytest.raises(ValueError, match="size_px_range"):
        SceneConfig(size_px_range=(72, 128))                      # not a multiple of 16
    with pytest.raises(ValueError, match="size_px_range"):
        SceneConfig(size_px_range=(80, 128))                      # does not hold size_px = 64
    cfg = SceneConfig.from_dict({**SceneConfig(**MULTI_SCALE).to_dict(), **TINY, "size_px_range": (16, 64)})
    assert cfg.multi_size and not SceneConfig().multi_size
    sampler = SceneSampler(cfg, seed=11)
    sizes, rupture_px = set(), []
    for _ in range(12):
        batch = sampler.sample(2)
        n = batch.truth_m.shape[-1]
        sizes.add(n)
        assert batch.insar_m.shape[-2:] == batch.dem_m.shape[-2:] == batch.los.shape[-2:] == (n, n)
        assert bool(torch.isfinite(batch.truth_m).all()) and n % 16 == 0 and 16 <= n <= 64
        rupture_px += [f.length / batch.pixel_m for f in batch.faults]
        inputs, target = batch_to_inputs(batch, cfg)                # the network takes any tile
        assert target.shape == (2, 3, n, n)
    assert len(sizes) >= 3                                          # 16, 32, 48, 64 drawn
    assert all(10.0 - 1e-9 <= r <= 80.0 + 1e-9 for r in rupture_px)   # ruptures keep their size in pixels


def test_multi_scale_scenes_refuse_a_dem_of_one_pixel_size():
    cfg = SceneConfig.from_dict({**SceneConfig(**MULTI_SCALE).to_dict(), **TINY})
    with pytest.raises(ValueError, match="multi-scale"):
        SceneSampler(cfg, dem_m=np.zeros((64, 64)))


def test_the_recipes_set_the_pixel_range_themselves():
    """realism and classic stay at one pixel whatever the model was trained on; multiscale varies it."""
    from insar_gnss_3d.core.benchmark import recipe_options
    overrides, dem = recipe_options("multiscale")
    assert SceneConfig.from_dict(overrides) == SceneConfig(**MULTI_SCALE) and dem is None
    for name in ("classic", "stress", "realism"):
        assert recipe_options(name)[0]["pixel_m_range"] == (0.0, 0.0)
    assert REALISM["max_displacement_m"] == (1e-3, 1.0) and MULTI_SCALE["max_displacement_m"] == (1e-3, 10.0)


def test_a_pixel_size_input_added_to_a_trained_network_changes_nothing_until_trained():
    scene = SceneConfig.from_dict({**SceneConfig(**MULTI_SCALE).to_dict(), **TINY})
    torch.manual_seed(0)
    model = DualBranchNet(ModelConfig(epochs=4, width=8, gnss_width=8, std_head=True)).eval()
    inputs, _ = batch_to_inputs(SceneSampler(scene, seed=2).sample(3), scene)
    assert inputs.pixel_m is not None and float(inputs.pixel_m[0]) != 1000.0
    told = adapted_model(model, {"pixel_size_input": True}).eval()
    with torch.no_grad():
        before, after = model(inputs, with_std=True), told(inputs, with_std=True)
        assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
        # once its weights move, the output depends on the pixel size
        told.pixel_bias.weight.fill_(0.5)
        at_1km = told(inputs.__class__(**{**vars(inputs), "pixel_m": torch.full((3,), 1000.0)}))
        at_4km = told(inputs.__class__(**{**vars(inputs), "pixel_m": torch.full((3,), 4000.0)}))
        assert not torch.allclose(at_1km, at_4km)
        with pytest.raises(ValueError, match="pixel size"):
            told(inputs.__class__(**{**vars(inputs), "pixel_m": None}))
    # and it can be dropped again, giving back the trained network
    dropped = adapted_model(told, {"pixel_size_input": False})
    assert dropped.pixel_bias is None


def test_working_pixel_follows_the_scene_extent_within_the_trained_range(tmp_path):
    arrays = helpers.sample_scene(seed=3, size_px=64, max_displacement_m=(0.3, 0.3))
    paths = helpers.write_scene(arrays, tmp_path / "scene")        # 64 km square at 1 km
    single = SceneConfig()
    assert prepare.working_pixel_m(single, paths["INSAR_ASC"]) == 1000.0
    multi = SceneConfig(pixel_m_range=(250.0, 4000.0))
    # 64 km over 2 training scenes of 64 px: 0.5 km
    assert math.isclose(prepare.working_pixel_m(multi, paths["INSAR_ASC"]), 500.0, rel_tol=1e-9)
    narrow = SceneConfig(pixel_m_range=(800.0, 4000.0))
    assert prepare.working_pixel_m(narrow, paths["INSAR_ASC"]) == 800.0
    # the span is in pixels: ruptures are 10-80 px in training scenes of any size, so a model
    # trained on 128 px scenes works at the same pixel as one trained on 64 px scenes
    larger = SceneConfig(pixel_m_range=(250.0, 4000.0), size_px=128)
    assert math.isclose(prepare.working_pixel_m(larger, paths["INSAR_ASC"]), 500.0, rel_tol=1e-9)


def test_a_multi_scale_model_is_calibrated_on_multi_scale_scenes_too():
    from insar_gnss_3d.core.calibrate import default_recipes
    assert default_recipes(SceneConfig()) == ("classic", "realism")
    assert default_recipes(SceneConfig(**MULTI_SCALE)) == ("classic", "realism", "multiscale")


def test_a_campaign_resumed_with_the_pixel_size_input_gains_it_and_trains_on_several_pixels(tmp_path):
    """``make train`` with ``--recipe multiscale`` and the ``pixel_size_input`` option on a
    committed checkpoint of a network without the input: it is added at zero, the weights load,
    a fresh optimiser trains it, and the history goes on."""
    import json

    from insar_gnss_3d.core.modelfile import load_model, save_model
    from insar_gnss_3d.core.train import Trainer, TrainConfig

    scene = SceneConfig.from_dict(TINY)
    torch.manual_seed(0)
    model = DualBranchNet(ModelConfig(epochs=4, width=8, gnss_width=8))
    save_model(str(tmp_path / "insar_gnss_3d.pt"), model, scene, {"samples": 8, "epochs": 1})
    common = dict(samples=8, batch_size=4, validation_samples=4, learning_rate=1e-2, threads=1,
                  minutes=0.05, validate_every_minutes=1.0, model_dir=str(tmp_path))
    Trainer(TrainConfig(**common)).fit()                                  # session 1: one pixel size
    multi = {**MULTI_SCALE, "max_stations": 12}
    resumed = Trainer(TrainConfig(**common, model={"pixel_size_input": True}, scene=multi))
    assert resumed.resume_state is not None and resumed.resume_adapts
    resumed.fit()
    trained, trained_scene, _ = load_model(str(tmp_path / "insar_gnss_3d.pt"))
    assert trained.config.pixel_size_input and trained_scene.multi_scale
    assert float(trained.pixel_bias.weight.detach().abs().sum()) > 0                # it learnt from the pixel size
    points = json.loads((tmp_path / "history.json").read_text())["points"]
    assert [p["session"] for p in points][-1] == 2
    with pytest.raises(ValueError, match="change trained layers"):
        Trainer(TrainConfig(**common, model={"width": 16})).fit()
