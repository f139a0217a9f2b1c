"""Training throughput on this machine for the default recipe, and what it costs to ship.

``run()`` is called by ``bench/run_bench.py``; ``python bench/bench_training.py`` runs it
alone. Figures, all for the default configuration (``SceneConfig()``: 64 x 64 pixels of
1 km, 16 model epochs; ``ModelConfig()``: width 32; batch 16):

* training: scenes per second through forward + backward + AdamW step (``Trainer.train_step``)
  on one fixed batch, best of ``steps`` after a warm-up step, with mixed precision where it
  exists (``--cpu-bf16``: bfloat16 autocast on a CPU with bfloat16 in hardware; AMP on CUDA),
  the same step in float32 beside it (the default step on a CPU), and the peer: the float32
  step with the SSIM loss's Gaussian as two one-channel ``conv2d`` passes (:func:`conv2d_blur`,
  pytorch-msssim's way and this loss's until 2026-12-02);
* generation: scenes per second of ``SceneSampler.sample(16)`` plus ``batch_to_inputs``
  (everything between the seed and the network's inputs), best of ``repeats``; the two are
  timed alternately;
* their ratio generation / training: on-the-fly data must not be the bottleneck (goal >= 5);
* the same with mirror twins (``--mirror-twins``, :func:`.features.with_mirror_twins`): half a
  batch drawn and mirrored, i.e. training scenes per second of generation;
* inference: seconds for one model-sized tile (64 x 64, the training scene) and for one
  128 x 128 tile (``predict_scene``'s default tile), best of ``repeats``;
* the parameter count and the size of the model file.

Best-of timings, because the machine may be shared: the minimum is the least disturbed run.
The load average is printed with the figures. ``python bench/bench_training.py 1`` measures
with one torch thread.

``python bench/bench_training.py --variants`` compares ways to speed the training step up on
this CPU, by the process's CPU time per step (steadier than wall time on a shared machine),
one torch thread, the same fixed batch, interleaved with the plain step: channels-last
memory format, bfloat16 autocast, ``torch.compile`` of the model (its compile time printed).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time


def _best(fn, repeats, clock=time.perf_counter):
    """Shortest of ``repeats`` runs of ``fn`` by ``clock`` (wall by default, CPU with process_time)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def conv2d_blur(images):
    """The peer of :func:`.metrics.gaussian_blur_valid`: two one-channel ``conv2d`` passes.

    How pytorch-msssim (and this loss until 2026-12-02) filters the SSIM statistics; the
    same sums.
    """
    import torch
    import torch.nn.functional as F
    from insar_gnss_3d.core.metrics import gaussian_window_1d

    h, w = images.shape[-2:]
    taps = torch.as_tensor(gaussian_window_1d(), dtype=images.dtype, device=images.device)
    out = F.conv2d(F.conv2d(images.reshape(-1, 1, h, w), taps.view(1, 1, -1, 1)), taps.view(1, 1, 1, -1))
    return out.reshape(*images.shape[:-2], *out.shape[-2:])


def run(batch_size=16, steps=5, repeats=5, device="cpu", threads=None):
    """Measure; print and return a dict of the figures.

    ``threads``: torch CPU threads (None = torch's default, all cores). On a shared machine
    ``threads=1`` gives steadier figures: two threads on two busy cores oversubscribe them.
    """
    import numpy as np
    import torch

    if threads is not None:
        torch.set_num_threads(int(threads))

    from insar_gnss_3d.core.infer import predict_scene
    from insar_gnss_3d.core.model import parameter_count
    from insar_gnss_3d.core.modelfile import save_model
    from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler
    from insar_gnss_3d.core.train import TrainConfig, Trainer

    scene = SceneConfig()
    # the shipped model's recipe (2048 scenes x 32 epochs: the trainer compiles the Okada
    # kernel for a run that long); only single steps are timed
    cfg = TrainConfig(samples=2048, epochs=32, batch_size=batch_size, validation_samples=1,
                      device=device, checkpoint_dir="", resume=False, cpu_bf16=True)
    trainer = Trainer(cfg)
    sampler = SceneSampler(scene, seed=123, device=trainer.device)

    plain_cfg, twins_cfg = cfg, dataclasses.replace(cfg, mirror_twins=True)

    def generate(config=plain_cfg):                 # what a training step draws (Trainer.next_batch)
        trainer.cfg = config
        try:
            return trainer.next_batch()
        finally:
            trainer.cfg = plain_cfg

    def generate_twins():
        return generate(twins_cfg)

    generate_twins()
    inputs, target = generate()                     # warm-up (FFT plans, allocations)
    mixed, precision = trainer.use_amp, trainer.precision     # --cpu-bf16 (or AMP on CUDA) here
    step = lambda: trainer.train_step(inputs, target)  # noqa: E731
    step()                                          # warm-up (autograd graph, allocator)

    def float32_step():
        trainer.use_amp = False
        try:
            step()
        finally:
            trainer.use_amp = mixed

    from insar_gnss_3d.core import metrics
    ours = metrics.gaussian_blur_valid

    def conv2d_ssim_step():
        metrics.gaussian_blur_valid = conv2d_blur
        try:
            float32_step()
        finally:
            metrics.gaussian_blur_valid = ours

    float32_step()
    conv2d_ssim_step()
    # alternate, so that all see the same machine state (other work on a shared machine)
    gen_s = twins_s = train_s = float32_s = conv2d_s = float("inf")
    for _ in range(max(steps, repeats)):
        gen_s = min(gen_s, _best(generate, 1))
        twins_s = min(twins_s, _best(generate_twins, 1))
        train_s = min(train_s, _best(step, 1))
        float32_s = min(float32_s, _best(float32_step, 1))
        conv2d_s = min(conv2d_s, _best(conv2d_ssim_step, 1))
    train_rate = batch_size / train_s
    gen_rate = batch_size / gen_s
    twins_rate = batch_size / twins_s

    model = trainer.model.eval()
    batch = sampler.sample(1)
    from insar_gnss_3d.core.features import resample_epochs
    from insar_gnss_3d.core.synthetic import model_epoch_days
    epochs = resample_epochs(batch.insar_m, batch.acq_days, model_epoch_days(scene))[0].numpy()
    valid = batch.gnss_valid[0].numpy()
    gnss, xy = batch.gnss_m[0, valid].numpy(), batch.gnss_xy_m[0, valid].numpy()
    los, dem = batch.los[0].numpy(), batch.dem_m[0].numpy()

    def infer(tile):
        reps = -(-tile // scene.size_px)
        e = np.tile(epochs, (1, 1, reps, reps))[..., :tile, :tile]
        lo = np.tile(los, (1, 1, reps, reps))[..., :tile, :tile]
        de = np.tile(dem, (reps, reps))[:tile, :tile]
        return lambda: predict_scene(model, e, lo, de, gnss, xy, scene.pixel_m, tile_px=tile,
                                     device=trainer.device)

    infer(scene.size_px)()
    infer_64 = _best(infer(scene.size_px), repeats)
    infer_128 = _best(infer(128), repeats)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.pt")
        save_model(path, model, scene, {})
        file_bytes = os.path.getsize(path)

    result = {"device": str(trainer.device), "threads": torch.get_num_threads(),
              "load_average": os.getloadavg()[0], "batch_size": batch_size,
              "train_scenes_per_s": train_rate, "train_precision": precision,
              "float32_train_scenes_per_s": batch_size / float32_s,
              "conv2d_ssim_train_scenes_per_s": batch_size / conv2d_s, "generate_scenes_per_s": gen_rate,
              "generation_over_training": gen_rate / train_rate,
              "mirror_twins_scenes_per_s": twins_rate, "mirror_twins_over_training": twins_rate / train_rate,
              "infer_64px_s": infer_64, "infer_128px_s": infer_128,
              "parameters": parameter_count(model), "model_file_bytes": file_bytes}
    print(f"Training, default recipe ({scene.size_px} px scenes, width {model.config.width}, batch "
          f"{batch_size}) on {result['device']} with {result['threads']} threads, load average "
          f"{result['load_average']:.1f}:")
    print(f"  training   {train_rate:7.2f} scenes/s  ({train_s:.2f} s per step, best of {max(steps, repeats)}; "
          f"{precision})")
    if mixed:
        print(f"  float32    {batch_size / float32_s:7.2f} scenes/s  (the same step without mixed precision): "
              f"mixed precision x{float32_s / train_s:.2f}")
    print(f"  peer       {batch_size / conv2d_s:7.2f} scenes/s  (the float32 step with the SSIM loss's Gaussian as "
          f"two conv2d passes, pytorch-msssim's way, as up to 2026-12-02): float32 x{conv2d_s / float32_s:.2f}, "
          f"{precision} x{conv2d_s / train_s:.2f}")
    print(f"  generation {gen_rate:7.2f} scenes/s  ({gen_s:.2f} s per batch, best of {max(steps, repeats)})")
    print(f"  generation / training = {result['generation_over_training']:.1f}x (goal >= 5x)")
    print(f"  twins      {twins_rate:7.2f} scenes/s  ({batch_size // 2} drawn + their mirror images, "
          f"--mirror-twins): {result['mirror_twins_over_training']:.1f}x training")
    print(f"  inference  {1e3 * infer_64:.0f} ms per {scene.size_px} x {scene.size_px} tile, "
          f"{1e3 * infer_128:.0f} ms per 128 x 128 tile")
    print(f"  model      {result['parameters']:,} parameters, file {file_bytes / 1e6:.2f} MB")
    return result


def variants(batch_size=16, repeats=3, names=("plain", "channels_last", "bf16_autocast", "compile")):
    """CPU seconds per training step of each variant (one thread); prints and returns a dict."""
    import torch

    torch.set_num_threads(1)
    from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler
    from insar_gnss_3d.core.train import TrainConfig, Trainer, batch_to_inputs

    scene = SceneConfig()
    trainer = Trainer(TrainConfig(samples=2048, epochs=1, batch_size=batch_size, validation_samples=1,
                                  device="cpu", checkpoint_dir="", resume=False))
    inputs, target = batch_to_inputs(SceneSampler(scene, seed=123).sample(batch_size), scene)
    step = lambda: trainer.train_step(inputs, target)  # noqa: E731
    step()
    result = {}
    for name in names:
        if name == "channels_last":
            trainer.model.to(memory_format=torch.channels_last)
        elif name == "bf16_autocast":
            trainer.use_amp, trainer.amp_dtype = True, torch.bfloat16
        elif name == "compile":
            t0 = time.time()
            trainer.net = torch.compile(trainer.model)
            step()
            print(f"  torch.compile: {time.time() - t0:.0f} s to compile (wall)", flush=True)
        step()
        result[name] = _best(step, 1 if name == "bf16_autocast" else repeats, clock=time.process_time)
        trainer.model.to(memory_format=torch.contiguous_format)
        trainer.use_amp, trainer.net = False, trainer.model
        plain = _best(step, repeats, clock=time.process_time)   # the plain step again, same load
        print(f"  {name:14s} {result[name]:6.2f} CPU s/step ({batch_size / result[name]:5.2f} scenes/s per "
              f"core), plain {plain:6.2f} s beside it: x{plain / result[name]:.2f}", flush=True)
    return result


if __name__ == "__main__":
    import sys
    if "--variants" in sys.argv:
        variants()
    else:
        run(threads=int(sys.argv[1]) if len(sys.argv) > 1 else None)
