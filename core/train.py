"""Training of the dual-branch CNN on synthetic scenes generated on the fly.

No data set on disk: each step draws a batch from :class:`.synthetic.SceneSampler` on the
training device. One code path for one CPU, one GPU and several GPUs:

* device ``auto`` picks CUDA when present; mixed precision (bfloat16 autocast when the GPU
  supports it, else float16 with a gradient scaler) on CUDA only;
* under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel
  (NCCL on GPUs, gloo on CPUs); every rank draws its own scenes from ``seed + rank``;
  rank 0 validates, checkpoints and writes the model file;
* a checkpoint after every epoch (and on cancel); ``--resume`` (default on) continues
  from it with the same optimiser, schedule and generator states.

Loss = L1 (scaled units) + ``ssim_weight`` * (1 - mean SSIM per component), so training
serves the mSSIM evaluation (Wang et al. 2004; :func:`.metrics.ssim_torch`).

Command line: ``python -m insar_gnss_3d.core.train --help``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed as dist

from . import okada
from .features import network_inputs, resample_epochs
from .metrics import ssim, ssim_torch
from .model import DualBranchNet, ModelConfig, parameter_count
from .modelfile import load_model, save_model
from .runtime import Cancelled, select_device  # noqa: F401 (select_device: importers use it from here too)
from .synthetic import SceneConfig, SceneSampler, model_epoch_days


#: Raised after the checkpoint is saved when the cancel callback returns True: the one
#: :class:`.runtime.Cancelled`.
TrainingCancelled = Cancelled


@dataclass
class TrainConfig:
    """Training recipe (saved in the model file). Units: learning rate per step."""

    samples: int = 2048          # scenes per epoch (over all ranks)
    epochs: int = 100
    batch_size: int = 16         # per rank
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    ssim_weight: float = 0.5
    validation_samples: int = 64
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    threads: int = 0             # CPU threads (0: torch's default)
    checkpoint_dir: str = ""
    init_model: str = ""
    resume: bool = True
    model: dict = field(default_factory=dict)
    scene: dict = field(default_factory=dict)


#: Scenes a CPU run must generate before the compiled Okada kernel pays for its compile
#: (~15 s cold, ~4 s from inductor's cache; it saves ~10 ms per 16 scenes of 64 px).
COMPILE_OKADA_MIN_SCENES = 10_000


def batch_to_inputs(batch, scene: SceneConfig):
    """(NetworkInputs, scaled truth) of a :class:`.synthetic.SceneBatch`."""
    epochs = resample_epochs(batch.insar_m, batch.acq_days, model_epoch_days(scene))
    inputs = network_inputs(epochs, batch.los, batch.dem_m, batch.gnss_m, batch.gnss_xy_m,
                            batch.gnss_valid, batch.pixel_m)
    target = batch.truth_m / inputs.scale_m[:, None, None, None]
    return inputs, target


def loss_fn(pred, target, ssim_weight):
    """L1 + ssim_weight * (1 - SSIM), per-component data range of the target (floored)."""
    l1 = (pred - target).abs().mean()
    if ssim_weight <= 0:
        return l1
    data_range = (target.amax((-2, -1)) - target.amin((-2, -1))).detach().clamp_min(1e-2)
    s = ssim_torch(pred.float(), target.float(), data_range)
    return l1 + ssim_weight * (1.0 - s.mean())


def _distributed():
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


class Trainer:
    """Owns model, optimiser, schedule, sampler, checkpoints and metrics."""

    def __init__(self, cfg: TrainConfig, dem_m=None, stations_xy_m=None,
                 progress: Optional[Callable[[float, str], None]] = None,
                 is_canceled: Optional[Callable[[], bool]] = None):
        self.cfg = cfg
        self.progress = progress or (lambda fraction, message: None)
        self.is_canceled = is_canceled or (lambda: False)
        self.rank, self.world = 0, 1
        if _distributed():
            backend = "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
            if not dist.is_initialized():
                dist.init_process_group(backend)
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = select_device(cfg.device)
        if self.device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            self.device = torch.device("cuda", local % torch.cuda.device_count())
            torch.cuda.set_device(self.device)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        if cfg.init_model:
            self.model, self.scene, _ = load_model(cfg.init_model, device=self.device)
            self.model.train()
            if cfg.scene:
                self.scene = SceneConfig.from_dict({**self.scene.to_dict(), **cfg.scene})
        else:
            self.scene = SceneConfig.from_dict(cfg.scene) if cfg.scene else SceneConfig()
            model_cfg = ModelConfig.from_dict({"epochs": self.scene.model_epochs,
                                               "gnss_days": self.scene.gnss_days, **cfg.model})
            self.model = DualBranchNet(model_cfg).to(self.device)
        if self.model.config.epochs != self.scene.model_epochs:
            raise ValueError("The model's epoch count differs from the scene configuration's.")
        self.net = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.steps_per_epoch = max(1, math.ceil(cfg.samples / (cfg.batch_size * self.world)))
        total = self.steps_per_epoch * cfg.epochs
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.learning_rate,
                                           weight_decay=cfg.weight_decay)
        warmup = max(1, int(cfg.warmup_fraction * total))

        def lr_factor(step):
            # linear warm-up, then cosine decay to 2 % (Loshchilov & Hutter 2017, SGDR)
            progress = min(step, total) / total
            return min(1.0, (step + 1) / warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor)
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.amp_dtype = (torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported()
                          else torch.float16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        if self.device.type == "cuda" or cfg.samples * cfg.epochs >= COMPILE_OKADA_MIN_SCENES:
            # on a GPU the eager Okada kernel is hundreds of small launches per scene, the
            # compiled one a few; on a CPU it makes a 64 px batch ~10 % faster to generate.
            # It falls back to the eager kernel, with a warning, where it cannot compile.
            okada.use_compiled_kernel(True)
        self.sampler = SceneSampler(self.scene, seed=cfg.seed + 1 + self.rank, device=self.device,
                                    dem_m=dem_m, stations_xy_m=stations_xy_m)
        self.validation = None
        if self.rank == 0:
            val = SceneSampler(self.scene, seed=10_000_019 + cfg.seed, device=self.device,
                               dem_m=dem_m, stations_xy_m=stations_xy_m)
            self.validation = [batch_to_inputs(val.sample(min(16, cfg.validation_samples - i)), self.scene)
                               for i in range(0, cfg.validation_samples, 16)]
        self.epoch = 0
        self.history = {"epoch": [], "train_loss": [], "val_loss": [], "val_mssim_east": [],
                        "val_mssim_north": [], "val_mssim_up": [], "seconds": []}

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint_path(self):
        """Path of the rolling checkpoint (None without a checkpoint folder)."""
        if not self.cfg.checkpoint_dir:
            return None
        return os.path.join(self.cfg.checkpoint_dir, f"checkpoint_rank{self.rank}.pt")

    def save_checkpoint(self):
        """Model, optimiser, schedule, scaler, generator state and history after ``self.epoch``."""
        path = self.checkpoint_path()
        if path is None:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        state = {"epoch": self.epoch, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "scaler": self.scaler.state_dict(), "generator": self.sampler.generator.get_state(),
                 "history": self.history, "config": json.dumps(asdict(self.cfg))}
        torch.save(state, path + ".part")
        os.replace(path + ".part", path)

    def load_checkpoint(self) -> bool:
        """Resume from the checkpoint when it exists; returns whether it did."""
        path = self.checkpoint_path()
        if path is None or not os.path.exists(path):
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.generator.set_state(state["generator"].cpu())
        self.history = state["history"]
        self.epoch = int(state["epoch"])
        return True

    # -- steps -------------------------------------------------------------------------------
    def train_step(self, inputs, target):
        """One optimiser step; returns the loss."""
        self.net.train()
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            pred = self.net(inputs)
        loss = loss_fn(pred.float(), target, self.cfg.ssim_weight)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.detach())

    @torch.no_grad()
    def validate(self):
        """Validation loss and mean SSIM per component (numpy :func:`.metrics.ssim`, in metres)."""
        self.model.eval()
        losses, scores = [], {"east": [], "north": [], "up": []}
        for inputs, target in self.validation:
            pred = self.model(inputs)
            losses.append(float(loss_fn(pred, target, self.cfg.ssim_weight)))
            scale = inputs.scale_m[:, None, None, None]
            p, t = (pred * scale).cpu().numpy(), (target * scale).cpu().numpy()
            for b in range(p.shape[0]):
                for c, name in enumerate(("east", "north", "up")):
                    if np.ptp(t[b, c]) > 0:
                        scores[name].append(ssim(p[b, c], t[b, c]))
        return float(np.mean(losses)), {k: float(np.mean(v)) for k, v in scores.items()}

    def fit(self, output_path: Optional[str] = None):
        """Train for the configured epochs (resuming when a checkpoint exists)."""
        cfg = self.cfg
        if cfg.resume:
            self.load_checkpoint()
        total_steps = cfg.epochs * self.steps_per_epoch
        while self.epoch < cfg.epochs:
            start, losses = time.time(), []
            for step in range(self.steps_per_epoch):
                if self.is_canceled():
                    self.save_checkpoint()
                    raise TrainingCancelled(f"Training cancelled in epoch {self.epoch + 1}; "
                                            f"checkpoint kept in {cfg.checkpoint_dir or '(none)'}.")
                inputs, target = batch_to_inputs(self.sampler.sample(cfg.batch_size), self.scene)
                losses.append(self.train_step(inputs, target))
                done = self.epoch * self.steps_per_epoch + step + 1
                self.progress(done / total_steps, f"epoch {self.epoch + 1}/{cfg.epochs} "
                                                  f"step {step + 1}/{self.steps_per_epoch} loss {losses[-1]:.4f}")
            self.epoch += 1
            if self.rank == 0:
                val_loss, mssim = self.validate()
                h = self.history
                h["epoch"].append(self.epoch)
                h["train_loss"].append(float(np.mean(losses)))
                h["val_loss"].append(val_loss)
                for k, v in mssim.items():
                    h[f"val_mssim_{k}"].append(v)
                h["seconds"].append(time.time() - start)
                self.progress(self.epoch * self.steps_per_epoch / total_steps,
                              f"epoch {self.epoch}: train {h['train_loss'][-1]:.4f} val {val_loss:.4f} "
                              f"mSSIM E {mssim['east']:.3f} N {mssim['north']:.3f} U {mssim['up']:.3f} "
                              f"({h['seconds'][-1]:.0f} s)")
            self.save_checkpoint()
        if self.rank == 0 and output_path:
            self.save(output_path)
        if self.world > 1:
            dist.barrier()
        return self.history

    def save(self, path: str):
        """Write the model file with the recipe and the last validation scores."""
        h = self.history
        validation = {k: h[k][-1] for k in ("val_loss", "val_mssim_east", "val_mssim_north", "val_mssim_up")
                      if h[k]}
        recipe = {k: v for k, v in asdict(self.cfg).items() if k not in ("model", "scene")}
        recipe["world_size"] = self.world
        recipe["parameters"] = parameter_count(self.model)
        recipe["command"] = " ".join(sys.argv)
        save_model(path, self.model, self.scene, recipe, history=h, validation=validation)


def build_parser():
    """The command line (every option documented)."""
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m insar_gnss_3d.core.train",
        description="Train the InSAR-GNSS 3D dual-branch CNN on synthetic scenes generated on the fly. "
                    "Several GPUs: torchrun --nproc_per_node=N -m insar_gnss_3d.core.train ...")
    p.add_argument("--output", required=True, help="model file to write (.pt)")
    p.add_argument("--samples", type=int, default=d.samples, help="scenes per epoch, all ranks together")
    p.add_argument("--epochs", type=int, default=d.epochs, help="number of epochs (the final epoch's weights are kept)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="scenes per step and rank")
    p.add_argument("--learning-rate", type=float, default=d.learning_rate, help="peak AdamW learning rate (warm-up, then cosine decay)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay")
    p.add_argument("--ssim-weight", type=float, default=d.ssim_weight, help="weight of (1 - SSIM) in the loss")
    p.add_argument("--validation-samples", type=int, default=d.validation_samples, help="fixed-seed validation scenes")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of everything random")
    p.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--threads", type=int, default=d.threads, help="CPU threads per process (0 = torch default)")
    p.add_argument("--checkpoint-dir", default="", help="folder for per-epoch checkpoints (resume from there)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--init-model", default="", help="model file to fine-tune from")
    p.add_argument("--model", default="{}", help='architecture overrides as JSON, e.g. \'{"width": 48}\'')
    p.add_argument("--scene", default="{}", help='scene-sampler overrides as JSON, e.g. \'{"size_px": 96}\'')
    p.add_argument("--dem", default="", help="GeoTIFF DEM in a metric CRS: scenes use crops of it")
    return p


def main(argv=None):
    """Entry point of the command line."""
    args = build_parser().parse_args(argv)
    cfg = TrainConfig(samples=args.samples, epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, weight_decay=args.weight_decay,
                      ssim_weight=args.ssim_weight, validation_samples=args.validation_samples,
                      seed=args.seed, device=args.device, amp=not args.no_amp, threads=args.threads,
                      checkpoint_dir=args.checkpoint_dir, init_model=args.init_model,
                      resume=not args.no_resume, model=json.loads(args.model), scene=json.loads(args.scene))
    dem = None
    if args.dem:
        from .raster import read_raster
        data, grid, _ = read_raster(args.dem, bands=[1])
        dem = data[0]
        scene = SceneConfig.from_dict(cfg.scene) if cfg.scene else SceneConfig()
        if abs(grid.pixel_size - scene.pixel_m) > 1e-6 * scene.pixel_m:
            raise SystemExit(f"--dem pixel size {grid.pixel_size} differs from the scene pixel {scene.pixel_m} m.")

    def report(fraction, message):
        if int(os.environ.get("RANK", "0")) == 0 and (message.startswith("epoch ") and ":" in message):
            print(f"[{100 * fraction:5.1f} %] {message}", flush=True)

    trainer = Trainer(cfg, dem_m=dem, progress=report)
    if trainer.rank == 0:
        print(f"device {trainer.device}, world size {trainer.world}, "
              f"{parameter_count(trainer.model):,} parameters, {trainer.steps_per_epoch} steps/epoch", flush=True)
    trainer.fit(args.output)
    if trainer.rank == 0:
        print(f"wrote {args.output}", flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
