"""Opt-in generator realism: heterogeneous slip, several faults, all mechanisms, sigmoid slow
slips, partial track coverage, dense to sparse networks (synthetic.REALISM)."""

import math

import numpy as np
import torch

from insar_gnss_3d.core.okada import Fault, surface_displacement
from insar_gnss_3d.core.synthetic import (REALISM, SceneConfig, SceneSampler, cosine_taper, sample_slip_field,
                                          scene_arrays, slip_history, subdivide_fault)

FAULT = Fault(east=30e3, north=-30e3, depth=3e3, strike=35.0, dip=25.0, length=40e3, width=20e3, rake=95.0,
              slip=2.0)


def _field(fault, x, y):
    return np.stack(surface_displacement(fault, np.asarray(x, float), np.asarray(y, float)))


def test_uniform_sub_faults_add_up_to_the_whole_fault():
    # Okada is linear in slip: the sub-faults tile the fault exactly when their sum matches it
    x, y = np.meshgrid(np.linspace(-20e3, 80e3, 23), np.linspace(-80e3, 20e3, 21))
    whole = _field(FAULT, x, y)
    parts = _field(subdivide_fault(FAULT, 10, 5), x, y)
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-6 * np.abs(whole).max())


def test_heterogeneous_slip_has_the_uniform_moment_and_its_far_field():
    gen = torch.Generator().manual_seed(3)
    cfg = SceneConfig()
    weights = sample_slip_field(gen, cfg, FAULT)
    assert weights.shape == (cfg.subfaults_down, cfg.subfaults_along)
    subs = subdivide_fault(FAULT, cfg.subfaults_along, cfg.subfaults_down, weights)
    moment = sum(f.length * f.width * f.slip for f in subs)
    assert abs(moment / (FAULT.length * FAULT.width * FAULT.slip) - 1) < 1e-9
    assert weights.max() > 1.5 and weights.std() > 0.3                         # not uniform
    # 300-400 km away the source is a point: same moment, nearly the same displacement
    angle = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    x, y = 30e3 + 350e3 * np.cos(angle), -30e3 + 350e3 * np.sin(angle)
    far_uniform, far_hetero = _field(FAULT, x, y), _field(subs, x, y)
    rel = np.linalg.norm(far_hetero - far_uniform) / np.linalg.norm(far_uniform)
    near = _field(FAULT, [30e3], [-35e3])
    assert rel < 0.2
    assert np.linalg.norm(_field(subs, [30e3], [-35e3]) - near) / np.linalg.norm(near) > 0.02   # near: differs


def test_taper_takes_the_slip_to_zero_at_every_edge():
    taper = cosine_taper(10, 0.25)
    assert taper[0] == taper[-1] == 0.0 and taper[4] == taper[5] == 1.0
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        w = sample_slip_field(gen, SceneConfig(), FAULT)
        edges = np.concatenate([w[0], w[-1], w[:, 0], w[:, -1]])
        assert np.all(edges == 0.0) and abs(w.mean() - 1) < 1e-12


def test_sigmoid_slow_slip_is_smooth_and_spans_the_window():
    days = np.arange(121.0)
    h = slip_history(days, 30.0, 40.0, "sigmoid")
    ramp = slip_history(days, 30.0, 40.0)
    assert h[0] == 0.0 and h[-1] == 1.0 and np.all(np.diff(h) >= 0)
    assert abs(h[50] - 0.5) < 0.01                                  # centred in the interval
    assert np.diff(h).max() > 1.5 * np.diff(ramp).max()             # faster in the middle
    assert h[35] < 0.5 * ramp[35] and h[65] > ramp[65]              # slower start and end


def test_realism_scenes_are_reproducible_and_their_truth_is_the_sum_of_their_sources():
    cfg = SceneConfig(size_px=24, **REALISM)
    a, b = SceneSampler(cfg, seed=5).sample(4), SceneSampler(cfg, seed=5).sample(4)
    for name in ("insar_m", "gnss_m", "gnss_xy_m", "truth_m", "slip_history"):
        assert torch.equal(getattr(a, name).nan_to_num(-9.0), getattr(b, name).nan_to_num(-9.0)), name
    assert a.sources == b.sources
    sampler = SceneSampler(cfg, seed=5)
    for i in range(4):
        s = scene_arrays(a, i)
        truth = _field(s.sources, sampler.pixel_x.numpy(), sampler.pixel_y.numpy())
        np.testing.assert_allclose(s.truth_m, truth, rtol=1e-4, atol=1e-6 * np.abs(truth).max())


def test_a_realism_batch_has_the_advertised_variety():
    cfg = SceneConfig(size_px=24, **REALISM)
    batch = SceneSampler(cfg, seed=1).sample(24)
    counts = [len(s) for s in batch.sources]
    main = [f for f in batch.faults]
    sub_faulted = sum(c >= (cfg.subfaults_along - 2) * (cfg.subfaults_down - 2) for c in counts)
    several = sum(len({(round(f.strike, 6), round(f.dip, 6)) for f in s}) > 1 for s in batch.sources)
    assert sub_faulted >= 4 and counts.count(1) >= 4 and several >= 2
    assert sum(not (60 <= f.rake <= 120 and f.dip <= 30) for f in main) >= 4      # other mechanisms
    assert sum(60 <= f.rake <= 120 and f.dip <= 30 for f in main) >= 8            # megathrust still the main case
    # one track covers part of the scene where the other has data (land, not sea)
    land = batch.dem_m > 0
    seen = torch.isfinite(batch.insar_m[:, :, 0])                                 # (B, 2, H, W)
    only_one = ((seen[:, 0] ^ seen[:, 1]) & land).float().mean((1, 2))
    assert int((only_one > 0.15).sum()) >= 3
    # networks from dense to sparse
    stations = batch.gnss_valid.sum(1)
    assert int(stations.min()) <= 8 and int(stations.max()) >= 30
    # a dense network keeps stations over the whole scene (a random subset, not the first rows)
    dense = int(stations.argmax())
    x = batch.gnss_xy_m[dense][batch.gnss_valid[dense]][:, 0]
    assert float(x.max()) > 0.8 * 24e3 and float(x.min()) < 0.2 * 24e3
    # sigmoid slow slips beside ramps and steps: smooth curves have no constant daily increment
    h = batch.slip_history.numpy()
    steps = [(np.diff(r) > 0).sum() == 1 for r in h]
    increments = [np.unique(np.round(np.diff(r)[np.diff(r) > 1e-9], 9)) for r in h]
    ramps = [len(u) <= 3 and not st for u, st in zip(increments, steps)]     # partial first/last day
    sigmoids = [len(u) > 5 for u in increments]
    assert sum(steps) >= 3 and sum(ramps) >= 1 and sum(sigmoids) >= 1
    assert math.isfinite(float(batch.truth_m.abs().max()))


def test_the_benchmark_recipe_is_the_generator_realism():
    from insar_gnss_3d.core.benchmark import recipe_options
    overrides, dem = recipe_options("realism")
    assert SceneConfig.from_dict(overrides) == SceneConfig(**REALISM) and dem is None


def test_the_classic_recipe_turns_every_realism_option_off():
    """The fixed old recipe: the realism fields at SceneConfig's defaults (model v1's generator),
    so a model trained on realism scenes is still judged on the scenes v1 was judged on."""
    from insar_gnss_3d.core.benchmark import RECIPES, recipe_options
    overrides, dem = recipe_options("classic")
    assert dem is None
    defaults = SceneConfig()
    assert all(overrides[k] == getattr(defaults, k) for k in overrides)
    assert SceneConfig.from_dict({**SceneConfig(**REALISM).to_dict(), **overrides}) == defaults
    assert {k: RECIPES["stress"]["scene"][k] for k in REALISM} == {k: overrides[k] for k in REALISM}


def test_tensile_scenes_are_sills_and_dykes_that_open_and_the_others_draw_nothing_more():
    from insar_gnss_3d.core.synthetic import sample_fault

    cfg = SceneConfig(size_px=24, tensile_fraction=1.0)
    batch = SceneSampler(cfg, seed=2).sample(16)
    faults = batch.faults
    assert all(f.slip == 0.0 and f.opening > 0.0 for f in faults)
    sills = [f for f in faults if cfg.sill_dip_deg[0] <= f.dip <= cfg.sill_dip_deg[1]]
    dykes = [f for f in faults if cfg.dyke_dip_deg[0] <= f.dip <= cfg.dyke_dip_deg[1]]
    assert len(sills) + len(dykes) == len(faults) and len(sills) >= 3 and len(dykes) >= 3
    # the truth is the opening's own field (Okada's tensile solution), scaled like every source
    sampler = SceneSampler(cfg, seed=2)
    for i in range(4):
        s = scene_arrays(batch, i)
        truth = _field(s.sources, sampler.pixel_x.numpy(), sampler.pixel_y.numpy())
        np.testing.assert_allclose(s.truth_m, truth, rtol=1e-4, atol=1e-6 * np.abs(truth).max())
    # an opening sill lifts the ground above it: up dominates over its centre
    sill = Fault(east=12e3, north=-12e3, depth=4e3, strike=0.0, dip=0.0, length=6e3, width=6e3, rake=0.0,
                 slip=0.0, opening=1.0)
    above = _field(sill, [15e3], [-12e3])[:, 0]       # its centre: half the width east (down-dip) of the top edge
    assert above[2] > 0.1 and above[2] > 5 * np.abs(above[:2]).max()
    # tensile_fraction 0 (every training recipe) draws exactly what it drew before the option
    gen_a, gen_b = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    plain = SceneConfig(**REALISM)
    sample_fault(gen_a, plain)
    sample_fault(gen_b, SceneConfig(**{**REALISM, "tensile_fraction": 1e-12}))
    assert not torch.equal(gen_a.get_state(), gen_b.get_state())   # a fraction > 0 draws one number more
    gen_c = torch.Generator().manual_seed(9)
    sample_fault(gen_c, plain)
    assert torch.equal(gen_a.get_state(), gen_c.get_state())


def test_the_robustness_cases_are_valid_scene_configurations_outside_training():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from robustness_sweep import CASES, case_overrides

    from insar_gnss_3d.core.benchmark import recipe_options

    classic, _ = recipe_options("classic")
    for name in CASES:
        overrides, _ = case_overrides(name)
        config = SceneConfig.from_dict({**SceneConfig().to_dict(), **overrides})     # validates every range
        changed = {k for k in overrides if overrides[k] != classic.get(k, getattr(SceneConfig(), k))}
        assert bool(changed) == (name != "classic (reference)"), name
        assert config.pixel_m == 1000.0


def test_the_ceiling_cases_give_perfect_data_where_they_say_so():
    """``robustness_sweep --ceiling``'s perfect data: every track on every pixel and acquisition,
    every station every day, and a step's LOS change that is exactly the truth seen along the LOS."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from robustness_sweep import CEILING_CASES, case_overrides

    for name in CEILING_CASES:
        SceneConfig.from_dict({**SceneConfig().to_dict(), **case_overrides(name, CEILING_CASES)[0]})
    overrides, _ = case_overrides("realism: perfect data", CEILING_CASES)
    config = SceneConfig.from_dict({**SceneConfig().to_dict(), **overrides, "slow_slip_fraction": 0.0,
                                    "sigmoid_slow_slip_fraction": 0.0})
    batch = SceneSampler(config, seed=4).sample(4)
    acquired = torch.isfinite(batch.acq_days)
    assert bool(torch.isfinite(batch.insar_m[acquired]).all())
    assert bool(torch.isfinite(batch.gnss_m[batch.gnss_valid]).all())
    count = acquired.sum(-1)
    for b in range(4):
        for k in range(2):
            change = batch.insar_m[b, k, count[b, k] - 1] - batch.insar_m[b, k, 0]
            along_los = (batch.los[b, k] * batch.truth_m[b]).sum(0)
            assert float((change - along_los).abs().max()) <= 1e-6 * float(along_los.abs().max()) + 1e-9
