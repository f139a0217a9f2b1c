"""The CNN, its training loop (incl. DDP under torchrun) and its model files."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from insar_gnss_3d.core.features import high_nanquantile, resample_epochs
from insar_gnss_3d.core.model import DualBranchNet, ModelConfig
from insar_gnss_3d.core.modelfile import ModelFileError, load_model, read_model_file, save_model
from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler
from insar_gnss_3d.core.train import Trainer, TrainConfig, TrainingCancelled, batch_to_inputs, select_device

REPO = Path(__file__).resolve().parents[2]
TINY_SCENE = {"size_px": 32, "model_epochs": 4, "max_stations": 12}
TINY_MODEL = {"width": 8, "gnss_width": 8}


def tiny_config(tmp_path, **kw):
    base = dict(samples=8, epochs=2, batch_size=4, validation_samples=4, learning_rate=3e-3,
                checkpoint_dir=str(tmp_path / "ckpt"), scene=dict(TINY_SCENE), model=dict(TINY_MODEL))
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def tiny_batch():
    scene = SceneConfig.from_dict(TINY_SCENE)
    return scene, batch_to_inputs(SceneSampler(scene, seed=3).sample(4), scene)


def test_shapes_and_gradients_flow_through_both_branches(tiny_batch):
    scene, (inputs, target) = tiny_batch
    model = DualBranchNet(ModelConfig(epochs=scene.model_epochs, **TINY_MODEL))
    inputs.insar.requires_grad_(True)
    inputs.gnss.requires_grad_(True)
    out = model(inputs)
    assert out.shape == target.shape == (4, 3, 32, 32)
    out.abs().mean().backward()
    assert inputs.insar.grad.abs().sum() > 0
    assert inputs.gnss.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_layer_counts_follow_the_abstract():
    cfg = ModelConfig()
    model = DualBranchNet(cfg)

    def count(m):
        return sum(isinstance(x, (torch.nn.Conv1d, torch.nn.Conv2d)) for x in m.modules())

    assert (count(model.insar), count(model.gnss), count(model.fusion)) == (10, 11, 4)


def test_short_training_lowers_the_loss_on_a_fixed_batch(tiny_batch, tmp_path):
    scene, (inputs, target) = tiny_batch
    trainer = Trainer(tiny_config(tmp_path, epochs=40))   # 80 scheduled steps
    first = trainer.train_step(inputs, target)
    for _ in range(40):
        last = trainer.train_step(inputs, target)
    assert last < 0.7 * first


@pytest.mark.parametrize("native_bf16", [True, False])
def test_cpu_mixed_precision_only_where_the_cpu_has_bfloat16(tiny_batch, tmp_path, monkeypatch, native_bf16):
    from insar_gnss_3d.core import train

    monkeypatch.setattr(train, "cpu_native_bf16", lambda: native_bf16)
    scene, (inputs, target) = tiny_batch
    trainer = Trainer(tiny_config(tmp_path, epochs=40, device="cpu", cpu_bf16=True))
    assert trainer.use_amp is native_bf16
    assert not trainer.scaler.is_enabled()           # bfloat16 needs no loss scaling
    assert not Trainer(tiny_config(tmp_path / "default", device="cpu")).use_amp   # opt-in
    first = trainer.train_step(inputs, target)
    for _ in range(40):
        last = trainer.train_step(inputs, target)
    assert last < 0.7 * first                        # it learns in bfloat16 as in float32
    trainer.model.eval()
    with torch.no_grad():                            # the weights stay float32
        assert trainer.model(inputs).dtype == torch.float32


def test_checkpoint_resume_gives_the_same_state(tmp_path):
    full = Trainer(tiny_config(tmp_path / "a", epochs=2))
    full.fit()
    interrupted = Trainer(tiny_config(tmp_path / "b", epochs=2))
    interrupted.is_canceled = lambda: interrupted.epoch >= 1      # stop after the first epoch
    with pytest.raises(TrainingCancelled):
        interrupted.fit()
    resumed = Trainer(tiny_config(tmp_path / "b", epochs=2))
    resumed.fit()
    assert resumed.history["epoch"] == [1, 2]
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_mirror_twins_draw_half_the_batch_and_train_on_it_and_its_mirror_image(tmp_path):
    plain = Trainer(tiny_config(tmp_path / "plain"))
    twins = Trainer(tiny_config(tmp_path / "twins", mirror_twins=True))
    inputs, target = twins.next_batch()
    assert inputs.insar.shape[0] == target.shape[0] == 4
    # two drawn scenes, then their mirror images (two fresh scenes would differ from the first)
    assert torch.equal(target[2:, 0], -target[:2, 0].flip(-1)) and torch.equal(target[2:, 2], target[:2, 2].flip(-1))
    assert plain.next_batch()[0].insar.shape[0] == 4
    twins.fit()
    assert twins.scenes_seen == plain.cfg.samples * plain.cfg.epochs
    with pytest.raises(ValueError, match="even batch_size"):
        tiny_config(tmp_path, batch_size=3, mirror_twins=True)


def test_cancel_keeps_a_checkpoint_and_writes_no_model(tmp_path):
    calls = []
    trainer = Trainer(tiny_config(tmp_path), is_canceled=lambda: len(calls) > 2,
                      progress=lambda f, m: calls.append(f))
    out = tmp_path / "model.pt"
    with pytest.raises(TrainingCancelled):
        trainer.fit(str(out))
    assert not out.exists()
    assert (tmp_path / "ckpt" / "checkpoint_rank0.pt").exists()


def test_model_file_round_trip(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, epochs=1))
    path = tmp_path / "m.pt"
    trainer.fit(str(path))
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "insar_gnss_3d-model"
    model, scene, meta = load_model(str(path))
    assert scene.model_epochs == TINY_SCENE["model_epochs"]
    assert set(meta["validation"]) >= {"val_mssim_east", "val_mssim_north", "val_mssim_up"}
    for a, b in zip(model.state_dict().values(), trainer.model.state_dict().values()):
        torch.testing.assert_close(a, b.cpu())


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def test_a_pickle_carrying_code_is_refused_and_not_run(tmp_path):
    _Evil.marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    torch.save({"format": "insar_gnss_3d-model", "payload": _Evil()}, path)
    with pytest.raises(ModelFileError, match="carries code|not an InSAR"):
        read_model_file(str(path))
    assert not (tmp_path / "pwned").exists()


def test_foreign_and_truncated_files_are_refused(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelFileError, match="not an InSAR-GNSS 3D model"):
        read_model_file(str(foreign))
    model = DualBranchNet(ModelConfig(epochs=4, **TINY_MODEL))
    good = tmp_path / "good.pt"
    save_model(str(good), model, SceneConfig.from_dict(TINY_SCENE), {})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ModelFileError):
        read_model_file(str(truncated))
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(ModelFileError):
        read_model_file(str(text))


def test_cuda_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"


def test_resample_epochs_is_linear_in_time():
    days = torch.tensor([[[0.0, 12.0, 24.0, float("nan")]]], dtype=torch.float64)
    series = torch.zeros((1, 1, 4, 2, 2))
    series[0, 0, :3] = torch.tensor([0.0, 1.2, 2.4])[:, None, None]
    out = resample_epochs(series, days, np.array([0.0, 6.0, 18.0, 30.0]))
    np.testing.assert_allclose(out[0, 0, :, 0, 0].numpy(), [0.0, 0.6, 1.8, 2.4], rtol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 101, 20_000])
def test_high_nanquantile_equals_torch_nanquantile(n):
    gen = torch.Generator().manual_seed(n)
    values = torch.randn(6, n, generator=gen).abs()
    missing = torch.rand(6, n, generator=gen) < torch.tensor([0.0, 0.1, 0.5, 0.9, 0.99, 1.0])[:, None]
    values[missing] = float("nan")
    values[2, 0] = float("inf")
    for q in (0.99, 0.9):
        expected = torch.nanquantile(values, q, dim=1)
        assert torch.equal(high_nanquantile(values, q).nan_to_num(-1.0), expected.nan_to_num(-1.0))


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_and_rank0_weights_load(tmp_path):
    out = tmp_path / "ddp.pt"
    env = dict(os.environ, PYTHONPATH=str(REPO / "build" / "plugins"), OMP_NUM_THREADS="1")
    import json
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
           "-m", "insar_gnss_3d.core.train", "--output", str(out), "--samples", "16", "--epochs", "1",
           "--batch-size", "4", "--validation-samples", "4", "--device", "cpu",
           "--checkpoint-dir", str(tmp_path / "ckpt"),
           "--scene", json.dumps(TINY_SCENE), "--model", json.dumps(TINY_MODEL)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "world size 2" in proc.stdout
    payload = torch.load(out, weights_only=True)
    assert payload["training"]["world_size"] == 2
    load_model(str(out))
    # both ranks hold the same weights after DDP's gradient averaging
    r0 = torch.load(tmp_path / "ckpt" / "checkpoint_rank0.pt", weights_only=True)["model"]
    r1 = torch.load(tmp_path / "ckpt" / "checkpoint_rank1.pt", weights_only=True)["model"]
    for k in r0:
        torch.testing.assert_close(r0[k], r1[k])


def test_thin_plate_spline_is_exact_for_affine_fields_and_interpolates_stations():
    from insar_gnss_3d.core.model import thin_plate_spline
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand((2, 12, 2), generator=gen, dtype=torch.float64) * 64
    affine = 1.0 + 0.1 * xy[..., 0] - 0.05 * xy[..., 1]
    bumpy = torch.sin(xy[..., 0] / 9.0) * torch.cos(xy[..., 1] / 13.0)
    valid = torch.ones((2, 12), dtype=torch.bool)
    valid[1, :4] = False                                    # ignored stations carry garbage
    values = torch.stack([affine, bumpy], -1)
    values[1, :4] = 1e6
    out = thin_plate_spline(xy, values, valid, 64, 64, smoothing=0.0)
    gy, gx = torch.meshgrid(torch.arange(64.0) + 0.5, torch.arange(64.0) + 0.5, indexing="ij")
    expected = 1.0 + 0.1 * gx - 0.05 * gy
    torch.testing.assert_close(out[0, 0], expected.double(), rtol=0, atol=1e-5)
    torch.testing.assert_close(out[1, 0], expected.double(), rtol=0, atol=1e-5)
    # at a station that sits on a pixel centre, the spline passes through its value
    xy_c = torch.tensor([[[10.5, 20.5], [40.5, 30.5], [25.5, 50.5], [55.5, 8.5]]], dtype=torch.float64)
    vals = torch.tensor([[[0.3], [-0.2], [0.5], [0.1]]], dtype=torch.float64)
    grid = thin_plate_spline(xy_c, vals, torch.ones((1, 4), dtype=torch.bool), 64, 64, smoothing=0.0)
    for (x, y), v in zip(xy_c[0].tolist(), vals[0, :, 0].tolist()):
        assert abs(float(grid[0, 0, int(y), int(x)]) - v) < 1e-5


# -- training campaign: time budget, resume from the committed checkpoint -------------------
#: scenes where a tiny network keeps learning for the first minute (strong signal, weak noise)
LEARNABLE_SCENE = dict(TINY_SCENE, turbulence_sigma_m=(0.0, 2e-3), max_displacement_m=(0.05, 1.0),
                       decorrelated_fraction=(0.0, 0.0), epoch_offset_m=0.0)


def campaign_config(folder, **kw):
    base = dict(samples=64, batch_size=4, validation_samples=16, learning_rate=1e-3, threads=1,
                minutes=0.15, validate_every_minutes=0.1, model_dir=str(folder),
                scene=dict(LEARNABLE_SCENE), model=dict(TINY_MODEL))
    base.update(kw)
    return TrainConfig(**base)


def test_timed_sessions_resume_the_campaign_and_improve_validation(tmp_path):
    import json
    first = Trainer(campaign_config(tmp_path))
    first.fit()
    files = {name: tmp_path / name for name in ("insar_gnss_3d.pt", "insar_gnss_3d.ckpt", "history.json")}
    assert all(f.exists() for f in files.values())
    points1 = json.loads(files["history.json"].read_text())["points"]
    assert points1[0]["scenes_seen"] == 0 and points1[0]["train_loss"] is None   # start, untrained
    assert len(points1) >= 3 and points1[-1]["scenes_seen"] > 0
    state = torch.load(files["insar_gnss_3d.ckpt"], weights_only=True)
    assert state["scenes_seen"] == points1[-1]["scenes_seen"] == first.scenes_seen
    assert {"model", "optimizer", "scheduler", "generator", "torch_rng"} <= set(state)

    second = Trainer(campaign_config(tmp_path))
    assert second.resume_state is not None
    second.fit()
    points2 = json.loads(files["history.json"].read_text())["points"]
    assert points2[: len(points1)] == points1                     # the history goes on
    seen = [p["scenes_seen"] for p in points2]
    assert seen == sorted(seen) and seen[-1] > seen[len(points1) - 1]
    assert points2[-1]["minutes"] > points1[-1]["minutes"]
    assert points2[-1]["val_loss"] <= points1[-1]["val_loss"]
    assert points2[-1]["val_loss"] < 0.8 * points1[0]["val_loss"]
    _, _, payload = load_model(str(files["insar_gnss_3d.pt"]))
    assert payload["training"]["scenes_seen"] == seen[-1]
    assert payload["validation"]["val_loss"] == points2[-1]["val_loss"]


def test_sessions_of_other_seeds_validate_on_the_campaign_s_first_scenes(tmp_path):
    """Sessions resumed with another --seed (make train passes none) keep validating on the
    scenes of the campaign's first session, and every history point names its validation seed."""
    import json
    Trainer(campaign_config(tmp_path, seed=11, minutes=0.02)).fit()
    second = Trainer(campaign_config(tmp_path, seed=0, minutes=0.02))
    assert second.validation_seed == 11
    second.fit()
    third = Trainer(campaign_config(tmp_path, seed=5, minutes=0.02))
    assert third.validation_seed == 11
    reference = Trainer(campaign_config(tmp_path / "fresh", seed=11, minutes=0.02, resume=False))
    for (a, _), (b, _) in zip(third.validation, reference.validation):
        assert torch.equal(a.insar, b.insar) and torch.equal(a.gnss, b.gnss)
    points = json.loads((tmp_path / "history.json").read_text())["points"]
    assert {p["validation_seed"] for p in points} == {11} and len({p["session"] for p in points}) == 2


def test_a_resumed_campaign_keeps_its_learning_rate_unless_told_otherwise(tmp_path):
    from insar_gnss_3d.core.train import campaign_learning_rate
    assert campaign_learning_rate(str(tmp_path)) == TrainConfig.learning_rate       # no campaign yet
    Trainer(campaign_config(tmp_path, learning_rate=7e-4, minutes=0.02)).fit()
    assert campaign_learning_rate(str(tmp_path)) == pytest.approx(7e-4)
    assert campaign_learning_rate(str(tmp_path), resume=False) == TrainConfig.learning_rate
    assert campaign_learning_rate("") == TrainConfig.learning_rate
    assert campaign_learning_rate(str(tmp_path), train_only="std_head") == TrainConfig.learning_rate
    # a session told another rate runs at it: the saved schedule does not bring the old one back
    resumed = Trainer(campaign_config(tmp_path, learning_rate=2e-4, minutes=0.02))
    assert resumed.load_checkpoint()
    resumed.time_fraction = 0.5
    resumed.session_peak = 1.0
    resumed.scheduler.step()
    lr = resumed.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(2e-4 * (0.02 + 0.98 * 0.5), rel=1e-6)
    # a session shorter than the campaign before it restarts lower, in proportion
    before = resumed.minutes_before
    assert before > 0
    decay = min(1.0, (64 / resumed.scenes_seen) ** 0.5)
    assert resumed.session_peak_factor() == pytest.approx(decay * min(1.0, 0.02 / before))
    short = Trainer(campaign_config(tmp_path, minutes=before / 4))
    short.load_checkpoint()
    assert short.session_peak_factor() == pytest.approx(decay / 4)
    # in scenes when the session knows how many it will add (a GPU adds in minutes what a CPU
    # campaign saw in hours: it restarts in full)
    seen = short.scenes_seen
    assert short.session_peak_factor(session_scenes=seen / 8) == pytest.approx(decay / 8)
    assert short.session_peak_factor(session_scenes=50 * seen) == pytest.approx(decay)
    # a session measures its rate on its first steps and sets its peak from it
    short.fit()
    assert short.session_scenes_estimate > 0
    assert short.session_peak == pytest.approx(short.session_peak_factor(short.session_scenes_estimate, seen))
    # a session from a model file (or on other parameters) has nothing annealed: it restarts in full
    fresh = Trainer(campaign_config(tmp_path / "other", init_model=str(tmp_path / "insar_gnss_3d.pt"), minutes=0.01))
    assert not fresh.optimizer_resumed and fresh.scenes_seen > 0
    assert fresh.session_peak_factor(session_scenes=1) == pytest.approx(min(1.0, (64 / fresh.scenes_seen) ** 0.5))


def test_a_stop_request_ends_a_session_at_a_step_with_validation_and_files(tmp_path):
    steps = []
    trainer = Trainer(campaign_config(tmp_path, minutes=5.0, validate_every_minutes=5.0))

    def progress(fraction, message):          # what SIGINT/SIGTERM do under the command line
        steps.extend(message.split()[:1] if message.startswith("step ") else [])
        trainer.stop_requested = len(steps) >= 3
    trainer.progress = progress
    trainer.fit()
    assert trainer.step == 3 and trainer.scenes_seen == 12
    points = __import__("json").loads((tmp_path / "history.json").read_text())["points"]
    assert [p["scenes_seen"] for p in points] == [0, 12]
    assert torch.load(tmp_path / "insar_gnss_3d.ckpt", weights_only=True)["step"] == 3


def test_a_campaign_starts_from_the_model_in_its_folder(tmp_path):
    model = DualBranchNet(ModelConfig(epochs=TINY_SCENE["model_epochs"], **TINY_MODEL))
    save_model(str(tmp_path / "insar_gnss_3d.pt"), model, SceneConfig.from_dict(TINY_SCENE),
               {"samples": 100, "epochs": 3})
    trainer = Trainer(campaign_config(tmp_path, scene={}, model={}))
    assert trainer.init_model == str(tmp_path / "insar_gnss_3d.pt")
    assert trainer.scenes_seen == 300              # the model's life goes on
    for a, b in zip(model.state_dict().values(), trainer.model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_the_default_network_with_its_checkpoint_stays_under_15_mb(tmp_path):
    # what a campaign commits: model file + checkpoint (weights + AdamW's two moments + history)
    trainer = Trainer(TrainConfig(minutes=1.0, model_dir=str(tmp_path), validation_samples=1, batch_size=1,
                                  scene={"size_px": 16}))         # parameters do not depend on the size
    trainer.train_step(*trainer.validation[0])                     # AdamW's state exists after a step
    trainer._record([trainer.last_step_terms], 1.0, 0.0)
    trainer._write_campaign(str(tmp_path / "insar_gnss_3d.pt"))
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    assert sizes["insar_gnss_3d.ckpt"] > 2.5 * sizes["insar_gnss_3d.pt"]      # the moments are in it
    assert sizes["insar_gnss_3d.pt"] + sizes["insar_gnss_3d.ckpt"] < 15e6


def _train_gpu_sh(out, source, nproc, minutes="0.05", model=None):
    import json
    env = dict(os.environ, SOURCE_DIR=str(source), MINUTES=minutes, DEVICE="cpu", NPROC=str(nproc),
               PYTHON=sys.executable, OMP_NUM_THREADS="1",
               TRAIN_ARGS=f"--scene '{json.dumps(TINY_SCENE)}' --model '{json.dumps(model or TINY_MODEL)}' "
                          "--validation-samples 4 --samples 64 --batch-size 4")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "train_gpu.sh"), str(out)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_train_gpu_script_runs_on_the_cpu_and_leaves_the_campaign_in_out(tmp_path):
    import json
    source = tmp_path / "models"
    source.mkdir()
    stdout = _train_gpu_sh(tmp_path / "out", source, nproc=1, model={**TINY_MODEL, "std_head": True})
    assert "starting from scratch" in stdout and "world size 1" in stdout
    # the std head is calibrated at the end, in the model and the checkpoint
    assert "std_scale:" in stdout
    scale = load_model(str(tmp_path / "out" / "insar_gnss_3d.pt"))[0].std_scale
    assert not torch.equal(scale, torch.ones(3))
    assert torch.equal(torch.load(tmp_path / "out" / "insar_gnss_3d.ckpt", weights_only=True)["model"]["std_scale"],
                       scale)
    for name in ("insar_gnss_3d.pt", "insar_gnss_3d.ckpt", "history.json", "model_card.md", "train.log"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    points = json.loads((tmp_path / "out" / "history.json").read_text())["points"]
    assert points[-1]["scenes_seen"] > 0
    load_model(str(tmp_path / "out" / "insar_gnss_3d.pt"))
    assert not list(source.iterdir())                  # the source campaign is left as it was


@pytest.mark.slow
def test_train_gpu_script_resumes_under_torchrun_with_two_cpu_processes(tmp_path):
    import json
    _train_gpu_sh(tmp_path / "first", tmp_path / "none", nproc=1)
    before = json.loads((tmp_path / "first" / "history.json").read_text())["points"]
    stdout = _train_gpu_sh(tmp_path / "second", tmp_path / "first", nproc=2, minutes="0.1")
    assert "world size 2" in stdout and "resuming" in stdout
    after = json.loads((tmp_path / "second" / "history.json").read_text())["points"]
    assert after[: len(before)] == before and after[-1]["scenes_seen"] > before[-1]["scenes_seen"]
    assert load_model(str(tmp_path / "second" / "insar_gnss_3d.pt"))[2]["training"]["world_size"] == 2
