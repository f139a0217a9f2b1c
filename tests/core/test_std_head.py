"""The std head: a trained model gains it without changing its mean, it learns, it calibrates,
and the data-consistency step and the benchmark use it."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from insar_gnss_3d.core import calibrate
from insar_gnss_3d.core.benchmark import calibration, score_rows
from insar_gnss_3d.core.infer import STATION_DISTANCE_CAP_PX, calibrated_std, predict_scene, std_log_terms
from insar_gnss_3d.core.model import (IDENTITY_STD_EXPONENTS, DualBranchNet, ModelConfig, adapted_model, gaussian_nll,
                                      with_calibration_defaults)
from insar_gnss_3d.core.modelfile import load_model, save_model
from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler
from insar_gnss_3d.core.features import NetworkInputs
from insar_gnss_3d.core.train import Trainer, TrainConfig, batch_to_inputs

TINY_SCENE = {"size_px": 32, "model_epochs": 4, "max_stations": 12}
TINY_MODEL = {"width": 8, "gnss_width": 8}


@pytest.fixture(scope="module")
def tiny():
    scene = SceneConfig.from_dict(TINY_SCENE)
    torch.manual_seed(0)
    model = DualBranchNet(ModelConfig(epochs=scene.model_epochs, **TINY_MODEL)).eval()
    return scene, model, batch_to_inputs(SceneSampler(scene, seed=5).sample(4), scene)


def test_gaussian_nll_is_minimal_at_the_true_sigma():
    torch.manual_seed(1)
    target = 0.3 * torch.randn(200_000)
    sigmas = torch.tensor([0.1, 0.2, 0.3, 0.45, 0.9])
    nll = [float(gaussian_nll(torch.zeros_like(target), s.expand_as(target), target)) for s in sigmas]
    assert int(np.argmin(nll)) == 2
    # the closed form at sigma = 0.3: 0.5 + log 0.3
    assert abs(nll[2] - (0.5 + math.log(0.3))) < 5e-3


def test_adding_a_std_head_keeps_the_mean_bit_for_bit(tiny):
    scene, model, (inputs, _) = tiny
    with_head = adapted_model(model, {"std_head": True}).eval()
    with torch.no_grad():
        before = model(inputs)
        mean, std = with_head(inputs, with_std=True)
        plain_mean, none = model(inputs, with_std=True)
    assert torch.equal(before, mean) and torch.equal(before, plain_mean) and none is None
    assert std.shape == mean.shape and bool((std > 0).all())
    # untrained: sigma ~ INITIAL_STD everywhere
    assert abs(float(std.median()) - 0.1) < 0.02
    with pytest.raises(ValueError, match="only std_head"):
        adapted_model(model, {"width": 16})


def test_a_std_context_added_to_a_trained_head_changes_nothing_until_trained_then_scales_each_scene(tiny):
    scene, model, (inputs, target) = tiny
    head = adapted_model(model, {"std_head": True}).eval()
    context = adapted_model(head, {"std_context": True}).eval()
    with torch.no_grad():
        mean, std = head(inputs, with_std=True)
        mean_c, std_c = context(inputs, with_std=True)
    assert torch.equal(mean, mean_c) and torch.equal(std, std_c)
    with pytest.raises(ValueError, match="std_context needs std_head"):
        adapted_model(model, {"std_context": True})
    # trained on errors whose size differs between scenes (Gaussian, sigma 10x larger in the
    # first), the context alone gives each scene its own factor
    trained_model = adapted_model(head, {"std_context": True}).train()
    params = [p for n, p in trained_model.named_parameters() if n.startswith("std_context.")]
    optimiser = torch.optim.Adam(params, lr=3e-2)
    torch.manual_seed(3)
    scene_sigma = torch.tensor([1.0, 0.1, 0.1, 0.1])[:, None, None, None]
    errors_target = mean + scene_sigma * torch.randn_like(mean)
    for _ in range(300):
        m, s = trained_model(inputs, with_std=True)
        loss = gaussian_nll(m.detach(), s, errors_target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        _, trained = trained_model.eval()(inputs, with_std=True)
    ratio_before = float(std[0].median() / std[1:].median())
    ratio_after = float(trained[0].median() / trained[1:].median())
    assert ratio_after > 3.0 * ratio_before


def test_training_the_std_head_only_leaves_the_mean_network_unchanged_and_learns(tiny, tmp_path):
    scene, model, (inputs, target) = tiny
    path = tmp_path / "base.pt"
    save_model(str(path), model, scene, {"samples": 8, "epochs": 1})
    cfg = TrainConfig(samples=8, epochs=1, batch_size=4, validation_samples=4, learning_rate=2e-2,
                      init_model=str(path), model={"std_head": True, "std_context": True}, train_only="std_head",
                      checkpoint_dir=str(tmp_path / "ckpt"), scene={"max_stations": 10})
    trainer = Trainer(cfg)
    trunk = {k: v.clone() for k, v in trainer.model.state_dict().items() if not k.startswith("std_")}
    assert {n for n, p in trainer.model.named_parameters() if p.requires_grad} == \
        {n for n, _ in trainer.model.named_parameters() if n.startswith(("std_head.", "std_context."))}
    first = trainer.train_step(inputs, target)
    for _ in range(60):
        last = trainer.train_step(inputs, target)
    assert last < first - 0.5          # the NLL of a sigma fitted to the errors, not 0.1 everywhere
    for k, v in trainer.model.state_dict().items():
        if k in trunk:
            assert torch.equal(v, trunk[k]), k
    _, within = trainer.validate()
    assert 0.0 <= within["within_1sigma"] <= within["within_2sigma"] <= 1.0 and math.isfinite(within["nll"])
    # the file says what the mean network learnt from; the head's scenes are in its recipe
    trainer.save(str(tmp_path / "head.pt"))
    _, saved_scene, payload = load_model(str(tmp_path / "head.pt"))
    assert saved_scene == scene and trainer.scene.max_stations == 10
    assert payload["training"]["std_head_scene_config"]["max_stations"] == 10


def test_calibration_meets_the_coverage_targets_as_nearly_as_the_errors_allow(tiny, tmp_path):
    scene, model, _ = tiny
    path = str(tmp_path / "head.pt")
    head = adapted_model(model, {"std_head": True})
    save_model(path, head, scene, {"samples": 8, "epochs": 1})
    checkpoint = tmp_path / "insar_gnss_3d.ckpt"
    torch.save({"model": head.state_dict(), "step": 3}, checkpoint)
    result = calibrate.calibrate_model_file(path, ["model"], scenes=8, seed=11, checkpoint=str(checkpoint))
    calibrated, _, payload = load_model(path)
    # the campaign resumes calibrated
    resumed = torch.load(checkpoint, weights_only=True)
    assert resumed["step"] == 3 and resumed["model"]["std_scale"].tolist() == pytest.approx(result["std_scale"])
    assert resumed["model"]["std_exponents"].numpy() == pytest.approx(np.array(result["std_exponents"]))
    assert calibrated.std_exponents.numpy() == pytest.approx(np.array(result["std_exponents"]), rel=1e-6)
    assert resumed["model"]["std_relative"].tolist() == pytest.approx(result["std_relative"])
    assert calibrated.std_relative.tolist() == pytest.approx(result["std_relative"], rel=1e-6)
    assert payload["training"]["std_calibration"]["std_scale"] == pytest.approx(result["std_scale"])
    assert calibrated.std_scale.tolist() == pytest.approx(result["std_scale"], rel=1e-6)
    # on the same scenes the calibrated sigma meets both targets as nearly as the tails allow:
    # no factor would miss the worse of the two by less
    z = calibrate.normalised_errors(calibrated, scene, 8, seed=11)

    def worst_miss(row, k):
        return max(abs(float((row <= k).mean()) - calibrate.ONE_SIGMA) / 0.05,
                   abs(float((row <= 2 * k).mean()) - calibrate.TWO_SIGMA) / 0.03)
    for c in range(3):
        best = worst_miss(z[c], 1.0)
        assert all(best <= worst_miss(z[c], k) + 0.05 for k in (0.8, 0.9, 1.1, 1.25))
        assert payload["training"]["std_calibration"]["within_after"][("east", "north", "up")[c]][0] == \
            pytest.approx(float((z[c] <= 1).mean()), abs=1e-6)
    # and the mean is untouched by calibration
    with torch.no_grad():
        inputs, _ = batch_to_inputs(SceneSampler(scene, seed=2).sample(2), scene)
        assert torch.equal(calibrated(inputs), head.eval()(inputs))


def test_std_scale_factors_of_gaussian_errors_are_their_sigma():
    rng = np.random.default_rng(0)
    z = np.abs(rng.normal(0.0, [[0.5], [1.0], [2.0]], size=(3, 200_000)))
    assert calibrate.std_scale_factors(z) == pytest.approx([0.5, 1.0, 2.0], rel=0.02)
    cov = calibrate.coverage(z / np.array([[0.5], [1.0], [2.0]]))
    assert cov["up"][0] == pytest.approx(0.683, abs=0.005) and cov["up"][1] == pytest.approx(0.954, abs=0.005)


def test_predict_scene_returns_the_heads_std_in_metres(tiny):
    scene, model, _ = tiny
    head = adapted_model(model, {"std_head": True}).eval()
    batch = SceneSampler(scene, seed=9).sample(1)
    from insar_gnss_3d.core.benchmark import cnn_inputs
    a = cnn_inputs(batch, scene)
    args = (a["insar_epochs_m"], a["los"], a["dem_m"], a["gnss_m"], a["gnss_xy_m"], a["pixel_m"])
    mean, std = predict_scene(head, *args, tile_px=32, with_std=True)
    plain = predict_scene(model, *args, tile_px=32)
    assert np.array_equal(mean, plain)
    assert std.shape == mean.shape and np.all(std[np.isfinite(std)] > 0)
    # sigma in metres = sigma in scale units (0.1 untrained) x the scene's displacement scale
    ratio = np.nanmedian(std) / 0.1
    assert 1e-3 <= ratio <= 10.0
    assert predict_scene(model, *args, tile_px=32, with_std=True)[1] is None


def test_benchmark_rows_carry_the_coverage_of_each_given_std():
    truth = np.zeros((3, 8, 8))
    err = np.random.default_rng(3).normal(0.0, 0.01, size=(3, 8, 8))
    preds = {m: truth + err for m in ("cnn", "network", "decomposition", "interpolation", "joint")}
    truth[0, 0, 0] = 0.05                                           # a > 10 mm scene
    rows = score_rows(0, truth, preds, {"cnn": np.full((3, 8, 8), 1e-9), "network": np.full((3, 8, 8), 1.0)})
    cnn, net = calibration(rows, 0.0), calibration(rows, 0.0, method="network")
    assert all(v[1] < 0.05 for v in cnn.values())                   # far too sure: nothing within
    assert all(v == (1.0, 1.0) for v in net.values())               # far too unsure: everything within
    assert all(math.isnan(v[0]) for v in calibration(rows, 0.0, method="joint").values())


def test_a_campaign_trained_on_the_std_head_resumes_with_everything_trainable(tiny, tmp_path):
    """The committed campaign's checkpoint holds an optimiser of the head only: a full session
    resumes from it with a fresh optimiser, trains the mean and the head, and keeps the history."""
    scene, model, _ = tiny
    save_model(str(tmp_path / "insar_gnss_3d.pt"), model, scene, {"samples": 8, "epochs": 1})
    common = dict(samples=8, batch_size=4, validation_samples=4, learning_rate=1e-2, threads=1,
                  minutes=0.05, validate_every_minutes=1.0, model_dir=str(tmp_path))
    head_only = Trainer(TrainConfig(**common, model={"std_head": True}, train_only="std_head"))
    head_only.fit()
    before = {k: v.clone() for k, v in head_only.model.state_dict().items()}
    full = Trainer(TrainConfig(**common))
    assert full.resume_state is not None
    full.fit()
    after = full.model.state_dict()
    assert not torch.equal(before["fusion.3.weight"], after["fusion.3.weight"])         # the mean trains
    assert not torch.equal(before["std_head.1.weight"], after["std_head.1.weight"])     # and the head
    points = __import__("json").loads((tmp_path / "history.json").read_text())["points"]
    assert [p["session"] for p in points][-1] == 2 and all(p["val_nll"] is not None for p in points[1:])


def test_targets_met_counts_each_fraction_inside_its_band():
    assert calibrate.targets_met({"east": (0.683, 0.954), "north": (0.70, 0.99), "up": (0.86, 0.93)}) == 4
    # the band edges belong to the band; NaN meets nothing
    assert calibrate.targets_met({"east": (0.6827 + 0.0499, 0.9545 - 0.0299), "north": (math.nan, math.nan)}) == 2
    gaussian = np.abs(np.random.default_rng(0).normal(size=(3, 200_000)))
    assert calibrate.targets_met(calibrate.coverage(gaussian)) == 6
    assert calibrate.targets_met(calibrate.coverage(gaussian / 1.3)) == 0


def test_the_power_law_fit_recovers_how_the_errors_spread_with_sigma_and_station_distance():
    """Gaussian errors whose sigma is a known power law of the head's sigma and the distance to
    the nearest station: the fit returns its exponents and its level."""
    rng = np.random.default_rng(4)
    n = 200_000
    log_terms = np.stack([np.log(rng.uniform(0.05, 0.5, n)), np.log1p(rng.uniform(0.0, 64.0, n))], -1)
    exponents = np.array([[0.8, 0.5], [1.0, 0.0], [0.6, 0.3]])
    level = np.array([0.3, 1.5, 0.1])
    sigma = level[:, None] * np.exp(log_terms[None] @ exponents[:, :, None])[..., 0]
    errors = np.abs(rng.normal(size=(3, n))) * sigma
    terms = np.broadcast_to(log_terms, (3, n, 2))
    scale, fitted, relative = calibrate.fit_std_calibration(errors, terms)
    assert fitted == pytest.approx(exponents, abs=0.02) and np.array_equal(relative, np.zeros(3))
    assert scale == pytest.approx(level, rel=0.05)
    # one factor alone keeps the identity exponents and, on the middle component, finds the level
    scale_only, identity, _ = calibrate.fit_std_calibration(errors, terms, scale_only=True)
    assert np.array_equal(identity, IDENTITY_STD_EXPONENTS.numpy()) and scale_only[1] == pytest.approx(1.5, rel=0.02)
    z = errors / (scale[:, None] * np.exp((terms * fitted[:, None, :]).sum(-1)))
    assert calibrate.targets_met(calibrate.coverage(z)) == 6
    # the factor alone may meet the pooled targets too, but not far from the stations, where
    # the errors are larger than it says
    far = log_terms[:, 1] > np.log1p(40.0)
    plain = errors[0] / (scale_only[0] * np.exp(log_terms[:, 0]))
    assert float((plain[far] <= 1).mean()) < 0.6 and float((z[0, far] <= 1).mean()) == pytest.approx(0.683, abs=0.02)


def test_the_fit_recovers_errors_that_grow_with_the_displacement():
    """Errors of a power law plus a known fraction of |mean| (in quadrature), as near a fault:
    the fit returns that fraction beside the power law, and sigma then holds the targets
    where the displacement is large, which the power law alone does not."""
    rng = np.random.default_rng(5)
    n = 200_000
    log_terms = np.stack([np.log(rng.uniform(0.05, 0.5, n)), np.log1p(rng.uniform(0.0, 64.0, n))], -1)
    magnitude = np.abs(rng.standard_cauchy(n)).clip(max=3.0)            # mostly small, some large
    exponents = np.array([[0.8, 0.5], [1.0, 0.0], [0.6, 0.3]])
    level, fraction = np.array([0.3, 1.5, 0.1]), np.array([0.2, 0.0, 0.5])
    power = level[:, None] * np.exp(log_terms[None] @ exponents[:, :, None])[..., 0]
    sigma = np.sqrt(power ** 2 + (fraction[:, None] * magnitude) ** 2)
    errors = np.abs(rng.normal(size=(3, n))) * sigma
    terms = np.broadcast_to(log_terms, (3, n, 2))
    magnitudes = np.broadcast_to(magnitude, (3, n))
    scale, fitted, relative = calibrate.fit_std_calibration(errors, terms, magnitudes=magnitudes)
    assert relative == pytest.approx(fraction, abs=0.02)
    assert fitted[[0, 2]] == pytest.approx(exponents[[0, 2]], abs=0.03)
    assert scale == pytest.approx(level, rel=0.08)
    z = errors / calibrate.sigma_of_terms(terms, scale, fitted, relative, magnitudes)
    assert calibrate.targets_met(calibrate.coverage(z)) == 6
    large = magnitude > 1.0
    assert float((z[2, large] <= 2).mean()) == pytest.approx(0.954, abs=0.02)
    plain_scale, plain_exponents, _ = calibrate.fit_std_calibration(errors, terms)
    plain = errors / calibrate.sigma_of_terms(terms, plain_scale, plain_exponents)
    assert float((plain[2, large] <= 2).mean()) < 0.85


def test_the_calibrated_sigma_grows_with_the_distance_to_the_nearest_station(tiny):
    head = adapted_model(tiny[1], {"std_head": True}).eval()
    # two stations in a 4 x 6 tile (x right, y down, pixels); the second one is not valid
    inputs = NetworkInputs(insar=torch.zeros(1, 1, 4, 6), dem=torch.zeros(1, 1, 4, 6), gnss=torch.zeros(1, 2, 4, 1),
                           gnss_xy=torch.tensor([[[1.5, 0.5], [5.5, 3.5]]]), gnss_valid=torch.tensor([[True, False]]),
                           scale_m=torch.ones(1), pixel_m=torch.tensor([2000.0]))
    raw = torch.full((1, 3, 4, 6), 0.2)
    terms = std_log_terms(inputs, raw)
    distance = torch.expm1(terms[0, 0, :, :, 1])
    assert distance[0, 1] == 0.0 and distance[3, 5] == pytest.approx(float(np.hypot(4, 3)))
    assert terms.shape == (1, 3, 4, 6, 2) and torch.allclose(terms[..., 0], torch.log(raw))
    inputs.gnss_valid[:] = False                     # no station: every pixel at the cap
    capped = torch.expm1(std_log_terms(inputs, raw)[..., 1])
    assert torch.allclose(capped, torch.full_like(capped, STATION_DISTANCE_CAP_PX))
    inputs.gnss_valid[:] = torch.tensor([[True, False]])
    head.std_scale.copy_(torch.tensor([0.5, 1.0, 2.0]))
    # identity exponents: exactly the factor, as models calibrated before the power law
    assert torch.equal(calibrated_std(head, inputs, raw), head.std_scale[None, :, None, None] * raw)
    head.std_exponents.copy_(torch.tensor([[1.0, 0.5]] * 3))
    sigma = calibrated_std(head, inputs, raw)
    assert sigma[0, 0, 0, 1] == pytest.approx(0.5 * 0.2) and sigma[0, 2, 3, 5] == pytest.approx(2.0 * 0.2 * 6.0 ** 0.5)
    # the term in the network's departure from its GNSS interpolation adds in quadrature, only
    # where the mean is given, and not where the network keeps to the interpolation
    prior = torch.zeros(1, 3, 4, 6)
    prior[0, 2, 3, 5], prior[0, 2, 0, 0] = 0.1, 0.25
    inputs = dataclasses.replace(inputs, prior=prior)
    mean = prior.clone()
    mean[0, 2, 3, 5] = -0.3
    head.std_relative.copy_(torch.tensor([0.0, 0.0, 0.4]))
    assert torch.equal(calibrated_std(head, inputs, raw), sigma)
    widened = calibrated_std(head, inputs, raw, mean)
    assert widened[0, 2, 3, 5] == pytest.approx(((2.0 * 0.2 * 6.0 ** 0.5) ** 2 + (0.4 * 0.4) ** 2) ** 0.5)
    assert torch.allclose(widened[0, :2], sigma[0, :2]) and torch.allclose(widened[0, 2, :3], sigma[0, 2, :3])


def test_a_model_file_from_before_the_power_law_loads_with_the_plain_factor(tiny, tmp_path):
    scene, model, _ = tiny
    head = adapted_model(model, {"std_head": True})
    state = {k: v for k, v in head.state_dict().items() if k not in ("std_exponents", "std_relative")}
    fresh = adapted_model(model, {"std_head": True})
    fresh.load_state_dict(with_calibration_defaults(fresh, state), strict=True)
    assert torch.equal(fresh.std_exponents, IDENTITY_STD_EXPONENTS) and torch.equal(fresh.std_relative, torch.zeros(3))
    # a file with the power law but from before the term in |mean|: its exponents stay
    head.std_exponents.copy_(torch.tensor([[0.7, 0.4]] * 3))
    state = {k: v for k, v in head.state_dict().items() if k != "std_relative"}
    fresh.load_state_dict(with_calibration_defaults(fresh, state), strict=True)
    assert fresh.std_exponents[0].tolist() == pytest.approx([0.7, 0.4]) and not fresh.std_relative.any()
    # and a file saved with them keeps them
    head.std_exponents.copy_(torch.tensor([[0.8, 0.5]] * 3))
    save_model(str(tmp_path / "m.pt"), head, scene, {"samples": 8, "epochs": 1})
    assert load_model(str(tmp_path / "m.pt"))[0].std_exponents[0].tolist() == pytest.approx([0.8, 0.5])


def test_training_a_calibrated_model_starts_its_head_from_the_identity_calibration(tiny, tmp_path):
    """A power-law calibration maps the head's raw sigma; training refits that raw sigma, so
    it starts from std_scale 1 and identity exponents (calibrate refits after training)."""
    scene, model, _ = tiny
    head = adapted_model(model, {"std_head": True})
    head.std_scale.copy_(torch.tensor([0.08, 0.07, 0.1]))
    head.std_exponents.copy_(torch.tensor([[0.8, 0.6]] * 3))
    path = tmp_path / "calibrated.pt"
    save_model(str(path), head, scene, {"samples": 8, "epochs": 1})
    cfg = TrainConfig(samples=8, epochs=1, batch_size=4, validation_samples=4, init_model=str(path),
                      checkpoint_dir=str(tmp_path / "ckpt"))
    trainer = Trainer(cfg)
    assert trainer.model.std_scale.tolist() == pytest.approx([0.08, 0.07, 0.1])
    trainer.fit(str(tmp_path / "out.pt"))
    trained = load_model(str(tmp_path / "out.pt"))[0]
    assert torch.equal(trained.std_scale, torch.ones(3)) and torch.equal(trained.std_exponents, IDENTITY_STD_EXPONENTS)


def test_history_keeps_the_training_loss_terms_apart_like_the_validation(tiny, tmp_path):
    """train_loss holds the L1 + SSIM terms val_loss holds; the std head's NLL is its own column."""
    scene, model, (inputs, target) = tiny
    path = tmp_path / "base.pt"
    save_model(str(path), adapted_model(model, {"std_head": True}), scene, {"samples": 8, "epochs": 1})
    cfg = TrainConfig(samples=8, epochs=1, batch_size=4, validation_samples=4, learning_rate=1e-3, nll_weight=0.5,
                      init_model=str(path), scene=TINY_SCENE)
    trainer = Trainer(cfg)
    terms, totals = [], []
    for _ in range(3):
        totals.append(trainer.train_step(inputs, target))
        terms.append(trainer.last_step_terms)
    for total, (data, nll) in zip(totals, terms):
        assert total == pytest.approx(data + 0.5 * nll, rel=1e-5)
        assert data > 0 and math.isfinite(nll)
    trainer._record(terms, 1.0, 1)
    point = trainer.history_records()[-1]
    assert point["train_loss"] == pytest.approx(np.mean([d for d, _ in terms]))
    assert point["train_nll"] == pytest.approx(np.mean([n for _, n in terms]))
    assert point["val_nll"] is not None and point["train_total_legacy"] is None
    # same terms: the training and validation losses are within a factor of each other, not of opposite sign
    assert 0.3 < point["train_loss"] / point["val_loss"] < 3.0


def test_an_older_history_moves_its_summed_training_loss_aside():
    from insar_gnss_3d.core.train import migrated_history
    old = {"val_loss": [0.46, 0.44, 0.43], "train_loss": [None, 0.47, -0.57], "val_nll": [None, None, -1.56]}
    h = migrated_history(old)
    assert h["train_loss"] == [None, 0.47, None]            # a point without a std head summed nothing
    assert h["train_total_legacy"] == [None, None, -0.57]
    assert h["train_nll"] == [None, None, None] and len(h["validation_seed"]) == 3
    new = migrated_history({**h, "train_loss": [None, 0.47, 0.45]})   # today's columns: untouched
    assert new["train_loss"] == [None, 0.47, 0.45] and new["train_total_legacy"] == [None, None, -0.57]
