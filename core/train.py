"""Training of the dual-branch CNN on synthetic scenes generated on the fly.

No data set on disk: each step draws a batch from :class:`.synthetic.SceneSampler` on the
training device. One code path for one CPU, one GPU and several GPUs:

* device ``auto`` picks CUDA when present; mixed precision (bfloat16 autocast when the GPU
  supports it, else float16 with a gradient scaler) on CUDA only;
* under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel
  (NCCL on GPUs, gloo on CPUs); every rank draws its own scenes from ``seed + rank``;
  rank 0 validates, checkpoints and writes the model file;
* a checkpoint after every epoch (and on cancel); ``--resume`` (default on) continues
  from it with the same optimiser, schedule and generator states;
* a time budget (``--minutes``, ``make train MINUTES=N``): train until the wall-clock budget
  is spent, stopping at a step boundary, validating every ``--validate-every-minutes`` and at
  the end. With ``--model-dir`` (a training *campaign*) the folder holds the model
  (``insar_gnss_3d.pt``), the checkpoint (``insar_gnss_3d.ckpt``) and the history
  (``history.json``); every session resumes from the checkpoint (or starts from the model
  there when there is none yet) and rewrites all three, atomically, at each validation point.
  SIGINT/SIGTERM end a session like a spent budget (validate, write, exit).

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
from dataclasses import asdict
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed as dist

from . import okada
from .configs import TrainConfig  # noqa: F401 (importers find it here too)
from .features import network_inputs, resample_epochs, with_mirror_twins
from .metrics import ssim, ssim_torch, within_sigma
from .configs import ModelConfig, SceneConfig
from .model import (IDENTITY_STD_EXPONENTS, OPTIONAL_PARTS, STD_PARTS, DualBranchNet, adapted_model, gaussian_nll,
                    load_trained_state, parameter_count, with_calibration_defaults)
from .modelfile import load_model, save_model
from .runtime import AtomicPath, Cancelled, cpu_native_bf16, select_device  # noqa: F401 (select_device: importers use it from here too)
from .synthetic import MULTI_SCALE, REALISM, SceneSampler, model_epoch_days


#: Raised after the checkpoint is saved when the cancel callback returns True: the one
#: :class:`.runtime.Cancelled`.
TrainingCancelled = Cancelled


#: Scenes a CPU run must generate before the compiled Okada kernel pays for its compile
#: (~15 s cold, ~4 s from inductor's cache; it saves ~10 ms per 16 scenes of 64 px).
COMPILE_OKADA_MIN_SCENES = 10_000

#: Scene recipes of the command line (``--recipe``): overrides of the model's own scenes.
SCENE_RECIPES = {"model": {}, "realism": REALISM, "multiscale": MULTI_SCALE}

#: Fraction of a timed session's budget over which it measures how many scenes it will add
#: (after its first step), to set its warm restart's height (:meth:`Trainer.session_peak_factor`).
SHARE_MEASURE_FRACTION = 0.01

#: File names inside a campaign folder (``--model-dir``).
MODEL_FILE, CHECKPOINT_FILE, HISTORY_FILE = "insar_gnss_3d.pt", "insar_gnss_3d.ckpt", "history.json"
#: Columns of the training history (one entry per validation point). ``train_loss`` is the
#: mean's L1 + SSIM loss, the same terms as ``val_loss``; ``train_nll`` the std head's
#: Gaussian NLL on the same steps (unweighted, as ``val_nll``). ``train_total_legacy``: a
#: point written before the two were recorded apart, whose training loss summed both (then
#: ``train_loss`` is None there).
HISTORY_KEYS = ("session", "epoch", "scenes_seen", "minutes", "train_loss", "train_nll", "val_loss",
                "val_mssim_east", "val_mssim_north", "val_mssim_up", "val_nll", "val_within_1sigma",
                "val_within_2sigma", "seconds", "validation_seed", "train_total_legacy")


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


def migrated_history(history: dict) -> dict:
    """A checkpoint's history in today's columns (one list per ``HISTORY_KEYS`` entry).

    Older files lack some columns (None there). A point written before ``train_nll`` existed
    by a network with a std head (``val_nll`` set) summed L1 + SSIM and the weighted NLL in
    ``train_loss``: that sum moves to ``train_total_legacy``, so that ``train_loss`` only
    ever holds the terms ``val_loss`` holds.
    """
    points = len(history.get("val_loss", []))
    migrated = {k: list(history.get(k, [None] * points)) for k in HISTORY_KEYS}
    if "train_nll" not in history:
        for i in range(points):
            if migrated["val_nll"][i] is not None:
                migrated["train_total_legacy"][i] = migrated["train_loss"][i]
                migrated["train_loss"][i] = None
    return migrated


def _distributed():
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def reset_std_calibration(model) -> None:
    """Set a std head's calibration to the identity: ``std_scale`` 1, exponents (1, 0), no relative term.

    Training fits the head's raw sigma (the forward pass) by the Gaussian likelihood
    (:func:`.model.gaussian_nll`); a calibration fitted to the head before training
    (:mod:`.calibrate`) no longer holds after it, so a trained model says it is uncalibrated
    until :mod:`.calibrate` refits it (``make train`` and ``scripts/train_gpu.sh`` do).
    """
    if getattr(model, "std_head", None) is None:
        return
    with torch.no_grad():
        model.std_scale.fill_(1.0)
        model.std_exponents.copy_(IDENTITY_STD_EXPONENTS.to(model.std_exponents))
        model.std_relative.zero_()


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
        if cfg.model_dir and cfg.minutes <= 0:
            raise ValueError("A campaign folder (model_dir) needs a time budget (minutes > 0).")
        # a campaign's checkpoint says which network and scenes it trains; read it first
        self.resume_state = self._read_checkpoint() if cfg.resume else None
        init_model = cfg.init_model
        if cfg.model_dir and self.resume_state is None and not init_model:
            candidate = os.path.join(cfg.model_dir, MODEL_FILE)
            init_model = candidate if os.path.exists(candidate) else ""
        self.init_model = init_model
        state = self.resume_state or {}
        #: architecture options given on resuming that add an optional part (adapted_model):
        #: the checkpoint's weights load into the larger network, with a fresh optimiser
        self.resume_adapts = False
        if "model_config" in state:
            trained = ModelConfig.from_dict(state["model_config"])
            wanted = ModelConfig.from_dict({**trained.to_dict(), **cfg.model})
            self.resume_adapts = wanted != trained
            self.model = DualBranchNet(wanted).to(self.device)
            self.scene = SceneConfig.from_dict({**state["scene_config"], **cfg.scene})
            mean_scene = SceneConfig.from_dict(state.get("mean_scene_config", state["scene_config"]))
        elif init_model:
            self.model, self.scene, _ = load_model(init_model, device=self.device)
            mean_scene = self.scene
            if cfg.model:
                self.model = adapted_model(self.model, cfg.model)
            self.model.train()
            if cfg.scene:
                self.scene = SceneConfig.from_dict({**self.scene.to_dict(), **cfg.scene})
        else:
            self.scene = SceneConfig.from_dict(cfg.scene) if cfg.scene else SceneConfig()
            model_cfg = ModelConfig.from_dict({"epochs": self.scene.model_epochs,
                                               "gnss_days": self.scene.gnss_days, **cfg.model})
            self.model = DualBranchNet(model_cfg).to(self.device)
            mean_scene = self.scene
        #: the scenes the mean network learnt from: the model file's scene configuration (a
        #: session that trains the std head only keeps it; the head's scenes go in the recipe)
        self.mean_scene = mean_scene if cfg.train_only == "std_head" else self.scene
        if self.model.config.epochs != self.scene.model_epochs:
            raise ValueError("The model's epoch count differs from the scene configuration's.")
        if cfg.train_only == "std_head":
            if self.model.std_head is None:
                raise ValueError("train_only='std_head' needs a network with a std head "
                                 "(--model '{\"std_head\": true}').")
            std_prefixes = tuple(prefix for part in STD_PARTS for prefix in OPTIONAL_PARTS[part])
            for name, parameter in self.model.named_parameters():
                parameter.requires_grad_(name.startswith(std_prefixes))
        self.net = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile_model:
            self.net = torch.compile(self.net)       # parameters shared: checkpoints unchanged
        self.steps_per_epoch = max(1, math.ceil(cfg.samples / (cfg.batch_size * self.world)))
        total = self.steps_per_epoch * cfg.epochs
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                           lr=cfg.learning_rate,
                                           weight_decay=cfg.weight_decay)
        warmup = max(1, int(cfg.warmup_fraction * total))
        #: fraction of the session's time budget spent (rank 0's clock, shared under DDP)
        self.time_fraction = 0.0
        #: a timed session's peak learning rate relative to ``learning_rate`` (set per session)
        self.session_peak = 1.0
        self.session_scenes_estimate = None
        #: whether this session continues a campaign's optimiser (moments and schedule): only
        #: such a session restarts lower when it is short (:meth:`session_peak_factor`)
        self.optimizer_resumed = False

        def lr_factor(step):
            # linear warm-up, then cosine decay to 2 % (Loshchilov & Hutter 2017, SGDR); with
            # a time budget every session is one such cycle over its wall-clock time (a warm
            # restart per session)
            if cfg.minutes > 0:
                progress = min(1.0, self.time_fraction)
                ramp = self.session_peak * min(1.0, (progress + 1e-3) / max(cfg.warmup_fraction, 1e-3))
            else:
                progress = min(step, total) / total
                ramp = min(1.0, (step + 1) / warmup)
            return ramp * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor)
        # mixed precision: float16/bfloat16 on a GPU; bfloat16 on a CPU when asked and only
        # where it has bfloat16 arithmetic in hardware (emulated, it is ~10x slower)
        cuda = self.device.type == "cuda"
        self.use_amp = (cfg.amp and cuda) or (cfg.cpu_bf16 and not cuda and cpu_native_bf16())
        self.amp_dtype = (torch.float16 if cuda and not torch.cuda.is_bf16_supported() else torch.bfloat16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        long_run = (cfg.minutes >= 10.0 if cfg.minutes > 0
                    else cfg.samples * cfg.epochs >= COMPILE_OKADA_MIN_SCENES)
        if self.device.type == "cuda" or long_run:
            # on a GPU the eager Okada kernel is hundreds of small launches per scene, the
            # compiled one a few; on a CPU it makes a 64 px batch ~10 % faster to generate.
            # It falls back to the eager kernel, with a warning, where it cannot compile.
            okada.use_compiled_kernel(True)
        self.sampler = SceneSampler(self.scene, seed=cfg.seed + 1 + self.rank, device=self.device,
                                    dem_m=dem_m, stations_xy_m=stations_xy_m)
        self.validation = None
        # a resumed campaign keeps its first session's validation scenes (comparable history):
        # every checkpoint carries their seed. Older checkpoints carry only the seed of the
        # session that wrote them, which is the campaign's only until a session of another
        # --seed resumes it (that session's validation points are labelled with their seed)
        self.validation_seed = int(state["validation_seed"]) if "validation_seed" in state else (
            int(json.loads(state["config"]).get("seed", cfg.seed)) if "config" in state else cfg.seed)
        if self.rank == 0:
            val = SceneSampler(self.scene, seed=10_000_019 + self.validation_seed, device=self.device,
                               dem_m=dem_m, stations_xy_m=stations_xy_m)
            self.validation = [batch_to_inputs(val.sample(min(16, cfg.validation_samples - i)), self.scene)
                               for i in range(0, cfg.validation_samples, 16)]
        self.epoch = 0
        self.step = 0                  # optimiser steps over all sessions
        self.scenes_seen = 0           # training scenes over all ranks and sessions
        self.minutes_before = 0.0      # wall minutes of the earlier sessions
        self.session = 0
        self.stop_requested = False    # set (e.g. by a signal handler) to end a timed session
        self.history = {k: [] for k in HISTORY_KEYS}
        if init_model and "model_config" not in state:
            # a model's life goes on: count the scenes its file says it was trained on
            recipe = load_model(init_model)[2].get("training", {})
            planned = int(recipe.get("samples", 0)) * int(recipe.get("epochs", 0))
            self.scenes_seen = int(recipe.get("scenes_seen", planned))

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint_path(self):
        """Path of the rolling checkpoint (None without a checkpoint folder).

        In a campaign (``model_dir``) all ranks resume from rank 0's checkpoint, which only
        rank 0 writes; otherwise each rank has its own file in ``checkpoint_dir``.
        """
        if self.cfg.model_dir:
            return os.path.join(self.cfg.model_dir, CHECKPOINT_FILE)
        if not self.cfg.checkpoint_dir:
            return None
        return os.path.join(self.cfg.checkpoint_dir, f"checkpoint_rank{self.rank}.pt")

    def _read_checkpoint(self):
        path = self.checkpoint_path()
        if path is None or not os.path.exists(path):
            return None
        try:
            return torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise RuntimeError(f"The checkpoint {path} cannot be read ({str(exc).splitlines()[0][:200]}); "
                               "move it away or train with --no-resume.") from exc

    def checkpoint_state(self):
        """Everything a later session needs: tensors and plain data (``weights_only``-safe)."""
        return {"epoch": self.epoch, "step": self.step, "scenes_seen": self.scenes_seen,
                "minutes": self.elapsed_minutes(), "session": self.session,
                "model": self.model.state_dict(), "model_config": self.model.config.to_dict(),
                "scene_config": self.scene.to_dict(), "mean_scene_config": self.mean_scene.to_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "generator": self.sampler.generator.get_state(),
                "torch_rng": torch.get_rng_state(), "history": self.history,
                "validation_seed": self.validation_seed, "config": json.dumps(asdict(self.cfg))}

    def save_checkpoint(self):
        """Model, optimiser, schedule, scaler, generator state and history, atomically."""
        path = self.checkpoint_path()
        if path is None or (self.cfg.model_dir and self.rank != 0):
            return
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with AtomicPath(path) as part:
            torch.save(self.checkpoint_state(), part)

    def load_checkpoint(self) -> bool:
        """Resume from the checkpoint when it exists; returns whether it did."""
        state = self.resume_state if self.resume_state is not None else self._read_checkpoint()
        if state is None:
            return False
        try:
            if self.resume_adapts:
                load_trained_state(self.model, state["model"], f"The options {json.dumps(self.cfg.model)}")
            else:
                self.model.load_state_dict(with_calibration_defaults(self.model, state["model"]))
        except RuntimeError as exc:
            raise RuntimeError(f"The checkpoint {self.checkpoint_path()} was written for another network "
                               f"({str(exc).splitlines()[0][:200]}); move it away or train with "
                               "--no-resume.") from exc
        earlier = json.loads(state["config"]).get("train_only", "") if "config" in state else ""
        if earlier == self.cfg.train_only and not self.resume_adapts:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            self.optimizer_resumed = True
            # the saved schedule carries the earlier session's base rate: this session's is cfg's
            self.scheduler.base_lrs = [self.cfg.learning_rate] * len(self.optimizer.param_groups)
            for group in self.optimizer.param_groups:
                group["initial_lr"] = self.cfg.learning_rate
        # else the optimiser held other parameters: it starts afresh on these weights
        if self.cfg.model_dir and self.rank != 0:
            # only rank 0's generator is saved: the other ranks reseed, per session
            session = int(state.get("session", 0)) + 1
            self.sampler.generator.manual_seed(self.cfg.seed + 1 + self.rank + 1_000_003 * session)
        else:
            self.sampler.generator.set_state(state["generator"].cpu())
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"].cpu())
        self.history = migrated_history(state["history"])
        self.epoch = int(state["epoch"])
        self.step = int(state.get("step", 0))
        self.scenes_seen = int(state.get("scenes_seen", 0))
        self.minutes_before = float(state.get("minutes", 0.0))
        self.session = int(state.get("session", 0))
        self.resume_state = None            # free the copy
        return True

    def elapsed_minutes(self):
        """Wall-clock minutes of training over all sessions so far."""
        start = getattr(self, "_session_start", None)
        return self.minutes_before + (0.0 if start is None else (time.time() - start) / 60.0)

    def history_records(self):
        """The history as one dict per validation point (what ``history.json`` holds)."""
        h = self.history
        def plain(value):
            return None if isinstance(value, float) and not math.isfinite(value) else value
        return [{k: plain(h[k][i]) for k in HISTORY_KEYS if i < len(h[k])} for i in range(len(h["val_loss"]))]

    def write_history(self, path):
        """``history.json``: the recipe and one record per validation point, atomically."""
        payload = {"format": "insar_gnss_3d-history", "model_config": self.model.config.to_dict(),
                   "scene_config": self.scene.to_dict(), "parameters": parameter_count(self.model),
                   "all_parameters": sum(p.numel() for p in self.model.parameters()),
                   "recipe": {k: v for k, v in asdict(self.cfg).items() if k not in ("model", "scene")},
                   "world_size": self.world, "points": self.history_records()}
        with AtomicPath(path) as part, open(part, "w") as f:
            json.dump(payload, f, indent=1)

    @property
    def precision(self) -> str:
        """The training step's arithmetic, in words: ``bfloat16 autocast``, ``float16 autocast`` or ``float32``."""
        return f"{str(self.amp_dtype).replace('torch.', '')} autocast" if self.use_amp else "float32"

    # -- steps -------------------------------------------------------------------------------
    def next_batch(self):
        """``(inputs, scaled truth)`` of the next ``batch_size`` training scenes of this rank.

        Freshly drawn; with ``mirror_twins`` half of them, each followed by its mirror image.
        """
        cfg = self.cfg
        with torch.no_grad():
            if not cfg.mirror_twins:
                return batch_to_inputs(self.sampler.sample(cfg.batch_size), self.scene)
            return with_mirror_twins(*batch_to_inputs(self.sampler.sample(cfg.batch_size // 2), self.scene))

    def train_step(self, inputs, target):
        """One optimiser step; returns the loss it minimised.

        Its terms are kept in ``last_step_terms``: ``(L1 + SSIM loss, NLL or None)``, the
        same terms as the validation's (the first computed without gradient when only the
        std head trains).
        """
        self.net.train()
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            pred, std = self.net(inputs, with_std=True)
        loss, self.last_step_terms = self.loss(pred.float(), None if std is None else std.float(), target)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.detach())

    def loss(self, pred, std, target):
        """(The mean's L1 + SSIM loss plus the std head's weighted Gaussian NLL, (L1 + SSIM, NLL)).

        The first term is not minimised when training the std head only; the second needs a
        std head and takes the mean detached. The pair holds both as floats (NLL None
        without a std head), for the history.
        """
        cfg = self.cfg
        if cfg.train_only != "std_head":
            loss = data_loss = loss_fn(pred, target, cfg.ssim_weight)
        else:
            with torch.no_grad():
                data_loss = loss_fn(pred, target, cfg.ssim_weight)
            loss = 0.0
        nll = None
        if std is not None:
            nll = gaussian_nll(pred.detach(), std, target)
            if cfg.nll_weight > 0:
                loss = loss + cfg.nll_weight * nll
        return loss, (float(data_loss.detach()), None if nll is None else float(nll.detach()))

    @torch.no_grad()
    def validate(self):
        """Validation loss, mean SSIM per component, and the std head's NLL and coverage.

        SSIM by :func:`.metrics.ssim` in metres; for a std head the fractions of errors
        within 1 and 2 sigma, pooled over pixels and components (0.683 and 0.954 when
        calibrated).
        """
        self.model.eval()
        losses, scores = [], {"east": [], "north": [], "up": []}
        nll, errors, sigmas = [], [], []
        for inputs, target in self.validation:
            pred, std = self.model(inputs, with_std=True)
            losses.append(float(loss_fn(pred, target, self.cfg.ssim_weight)))
            if std is not None:
                nll.append(float(gaussian_nll(pred, std, target)))
                errors.append((pred - target).cpu().numpy().ravel())
                sigmas.append(std.cpu().numpy().ravel())
            scale = inputs.scale_m[:, None, None, None]
            p, t = (pred * scale).cpu().numpy(), (target * scale).cpu().numpy()
            for b in range(p.shape[0]):
                for c, name in enumerate(("east", "north", "up")):
                    if np.ptp(t[b, c]) > 0:
                        scores[name].append(ssim(p[b, c], t[b, c]))
        out = {k: float(np.mean(v)) for k, v in scores.items()}
        if nll:
            within = within_sigma(np.concatenate(errors), np.concatenate(sigmas))
            out.update(nll=float(np.mean(nll)), within_1sigma=within[0], within_2sigma=within[1])
        return float(np.mean(losses)), out

    def fit(self, output_path: Optional[str] = None):
        """Train for the configured epochs or time budget (resuming when a checkpoint exists)."""
        cfg = self.cfg
        if cfg.resume:
            self.load_checkpoint()
        reset_std_calibration(self.model)
        if cfg.minutes > 0:
            return self._fit_for_time(output_path)
        total_steps = cfg.epochs * self.steps_per_epoch
        while self.epoch < cfg.epochs:
            start, losses = time.time(), []
            for step in range(self.steps_per_epoch):
                if self.is_canceled():
                    self.save_checkpoint()
                    raise TrainingCancelled(f"Training cancelled in epoch {self.epoch + 1}; "
                                            f"checkpoint kept in {cfg.checkpoint_dir or '(none)'}.")
                inputs, target = self.next_batch()
                step_loss = self.train_step(inputs, target)
                losses.append(self.last_step_terms)
                self.step += 1
                self.scenes_seen += cfg.batch_size * self.world
                done = self.epoch * self.steps_per_epoch + step + 1
                self.progress(done / total_steps, f"epoch {self.epoch + 1}/{cfg.epochs} "
                                                  f"step {step + 1}/{self.steps_per_epoch} loss {step_loss:.4f}")
            self.epoch += 1
            if self.rank == 0:
                self._record(losses, time.time() - start, self.epoch)
                h = self.history
                self.progress(self.epoch * self.steps_per_epoch / total_steps,
                              f"epoch {self.epoch}: train {h['train_loss'][-1]:.4f} val {h['val_loss'][-1]:.4f} "
                              f"mSSIM E {h['val_mssim_east'][-1]:.3f} N {h['val_mssim_north'][-1]:.3f} "
                              f"U {h['val_mssim_up'][-1]:.3f} ({h['seconds'][-1]:.0f} s)")
            self.save_checkpoint()
        if self.rank == 0 and output_path:
            self.save(output_path)
        if self.world > 1:
            dist.barrier()
        return self.history

    def _record(self, losses, seconds, epoch):
        """Validate (rank 0) and append a history point."""
        val_loss, mssim = self.validate()
        h = self.history
        h["session"].append(self.session)
        h["epoch"].append(epoch)
        h["scenes_seen"].append(self.scenes_seen)
        h["minutes"].append(round(self.elapsed_minutes(), 3))
        # losses: train_step's ``last_step_terms`` of each step since the last point
        data_losses = [d for d, _ in losses]
        nlls = [n for _, n in losses if n is not None]
        h["train_loss"].append(float(np.mean(data_losses)) if data_losses else float("nan"))
        h["train_nll"].append(float(np.mean(nlls)) if nlls else None)
        h["train_total_legacy"].append(None)
        h["val_loss"].append(val_loss)
        for k in ("east", "north", "up"):
            h[f"val_mssim_{k}"].append(mssim[k])
        for k in ("nll", "within_1sigma", "within_2sigma"):
            h[f"val_{k}"].append(mssim.get(k))
        h["seconds"].append(seconds)
        h["validation_seed"].append(self.validation_seed)

    def _shared_clock(self, start, budget_s):
        """(time fraction spent, stop?) by rank 0's clock and stop flag, the same on every rank."""
        fraction = (time.time() - start) / budget_s
        stop = fraction >= 1.0 or self.stop_requested
        if self.world > 1:
            flags = torch.tensor([fraction, float(stop)] if self.rank == 0 else [0.0, 0.0],
                                 dtype=torch.float64, device=self.device)
            dist.all_reduce(flags)                       # only rank 0 adds non-zeros
            fraction, stop = float(flags[0]), bool(flags[1] > 0)
        return fraction, stop

    def _write_campaign(self, output_path):
        """Model, history and checkpoint (rank 0), each atomically; the checkpoint last."""
        if self.rank != 0:
            return
        if output_path:
            self.save(output_path)
        if self.cfg.model_dir:
            self.write_history(os.path.join(self.cfg.model_dir, HISTORY_FILE))
        self.save_checkpoint()

    def _fit_for_time(self, output_path):
        """One session of ``cfg.minutes`` of wall clock: steps until the budget is spent.

        Validation (and writing model, history and checkpoint) every
        ``validate_every_minutes`` and at the end; a session that starts from a model
        without a history validates first, so its history starts from where it began.
        """
        cfg = self.cfg
        if cfg.model_dir:
            os.makedirs(cfg.model_dir, exist_ok=True)
            output_path = output_path or os.path.join(cfg.model_dir, MODEL_FILE)
        budget_s = 60.0 * cfg.minutes
        self.session += 1
        self.session_peak = self.session_peak_factor()
        # the restart's share is set by the scenes this session will add, measured on its
        # first steps (a GPU adds in minutes what a CPU campaign saw in hours); the clock is
        # rank 0's, so every rank sets the same rate
        measure_from, scenes_before = None, self.scenes_seen
        self.session_scenes_estimate = None
        if self.rank == 0 and not self.history["val_loss"]:
            self._record([], 0.0, self.scenes_seen / cfg.samples)
            self._report_point()
        start = self._session_start = time.time()
        last_validation, losses = start, []
        while True:
            if self.is_canceled():
                self.save_checkpoint()
                raise TrainingCancelled(f"Training cancelled after {self.scenes_seen} scenes; "
                                        f"checkpoint kept in {self.checkpoint_path() or '(none)'}.")
            self.time_fraction, stop = self._shared_clock(start, budget_s)
            if stop:
                break
            inputs, target = self.next_batch()
            step_loss = self.train_step(inputs, target)
            losses.append(self.last_step_terms)
            self.step += 1
            self.scenes_seen += cfg.batch_size * self.world
            self.epoch = self.scenes_seen // max(1, cfg.samples)
            # the clock was read before this step: the scenes done by then
            clock_scenes = self.scenes_seen - cfg.batch_size * self.world
            if measure_from is None and clock_scenes > scenes_before:   # the first step (compiling) done
                measure_from = (self.time_fraction, clock_scenes)
            elif (measure_from is not None and self.session_scenes_estimate is None and self.optimizer_resumed
                  and self.time_fraction >= measure_from[0] + SHARE_MEASURE_FRACTION):
                # the scenes this session is expected to add (its rate times its budget)
                self.session_scenes_estimate = ((clock_scenes - measure_from[1])
                                                / (self.time_fraction - measure_from[0]))
                self.session_peak = self.session_peak_factor(self.session_scenes_estimate, scenes_before)
                self.progress(self.time_fraction,
                              f"session {self.session}: ~{self.session_scenes_estimate:,.0f} scenes expected after "
                              f"{scenes_before:,}: peak learning rate {cfg.learning_rate * self.session_peak:.2g}")
            now = time.time()
            self.progress(min(1.0, (now - start) / budget_s),
                          f"step {self.step} ({self.scenes_seen} scenes) loss {step_loss:.4f}")
            if self.rank == 0 and now - last_validation >= 60.0 * cfg.validate_every_minutes:
                self._record(losses, now - last_validation, self.scenes_seen / cfg.samples)
                self._report_point()
                self._write_campaign(output_path)
                last_validation, losses = time.time(), []
        if self.rank == 0 and (losses or self.history["scenes_seen"][-1] != self.scenes_seen):
            self._record(losses, time.time() - last_validation, self.scenes_seen / cfg.samples)
            self._report_point()
            self._write_campaign(output_path)
        if self.world > 1:
            dist.barrier()
        return self.history

    def session_peak_factor(self, session_scenes: Optional[float] = None,
                            scenes_before: Optional[int] = None) -> float:
        """A timed session's peak learning rate relative to ``learning_rate``.

        The sessions' peaks decay as 1/sqrt(scenes seen) (the inverse-square-root schedule,
        Vaswani et al. 2017, over sessions): a resumed session refines instead of undoing.
        A session that adds fewer scenes than the campaign saw before restarts lower, in
        proportion (``min(1, session_scenes / scenes seen)``): it must anneal within its
        budget what its warm restart stirs up. Measured on model v3's plateau (91k scenes):
        a 5-minute CPU session (~2.8k scenes) restarting at the full peak raised the
        validation loss by 0.001, at 1/12 of it lowered it. ``session_scenes`` is the
        session's expected scene count (:meth:`_fit_for_time` measures it on its first
        steps); without it, the share of wall-clock minutes stands in. ``scenes_before``:
        the scenes seen before the session (default: all seen so far). The share applies only
        to a session that continues the campaign's optimiser (:attr:`optimizer_resumed`); one
        that starts from a model file, or trains other parameters, restarts in full.
        """
        before = self.scenes_seen if scenes_before is None else scenes_before
        decay = min(1.0, math.sqrt(max(1, self.cfg.samples) / max(1, before)))
        if not self.optimizer_resumed:
            share = 1.0            # new parameters or a fresh optimiser: nothing annealed to keep
        elif session_scenes is not None:
            share = min(1.0, session_scenes / before) if before > 0 else 1.0
        else:
            share = min(1.0, self.cfg.minutes / self.minutes_before) if self.minutes_before > 0 else 1.0
        return decay * share

    def _report_point(self):
        h = self.history
        self.progress(min(1.0, self.time_fraction),
                      f"validation at {h['scenes_seen'][-1]} scenes, {h['minutes'][-1]:.1f} min: "
                      f"train {h['train_loss'][-1]:.4f} val {h['val_loss'][-1]:.4f} "
                      f"mSSIM E {h['val_mssim_east'][-1]:.3f} N {h['val_mssim_north'][-1]:.3f} "
                      f"U {h['val_mssim_up'][-1]:.3f}" + ("" if h["val_nll"][-1] is None else
                      f"; std head NLL {h['val_nll'][-1]:.3f}, within 1/2 sigma "
                      f"{h['val_within_1sigma'][-1]:.3f}/{h['val_within_2sigma'][-1]:.3f}"))

    def save(self, path: str):
        """Write the model file with the recipe and the last validation scores."""
        h = self.history
        validation = {k: h[k][-1] for k in ("val_loss", "val_mssim_east", "val_mssim_north", "val_mssim_up")
                      if h[k]}
        recipe = {k: v for k, v in asdict(self.cfg).items() if k not in ("model", "scene")}
        recipe["world_size"] = self.world
        recipe["parameters"] = parameter_count(self.model)
        recipe["command"] = " ".join(sys.argv)
        recipe.update(scenes_seen=self.scenes_seen, minutes=round(self.elapsed_minutes(), 3),
                      init_model=self.init_model)
        if self.mean_scene != self.scene:
            recipe["std_head_scene_config"] = self.scene.to_dict()
        save_model(path, self.model, self.mean_scene, recipe, history=h, validation=validation)


def build_parser():
    """The command line (every option documented)."""
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m insar_gnss_3d.core.train",
        description="Train the InSAR-GNSS 3D dual-branch CNN on synthetic scenes generated on the fly. "
                    "Several GPUs: torchrun --nproc_per_node=N -m insar_gnss_3d.core.train ...")
    p.add_argument("--output", default="", help="model file to write (.pt); required without --model-dir")
    p.add_argument("--minutes", type=float, default=d.minutes,
                   help="wall-clock budget of this session [min]: train until it is spent, then validate and "
                        "write (--epochs is then ignored; the learning rate makes one warm-up + cosine cycle "
                        "over the budget)")
    p.add_argument("--validate-every-minutes", type=float, default=d.validate_every_minutes,
                   help="with --minutes: validate and write model, history and checkpoint this often")
    p.add_argument("--model-dir", default="",
                   help="campaign folder (with --minutes): resume from its insar_gnss_3d.ckpt, or start "
                        "from its insar_gnss_3d.pt when there is no checkpoint; write model, checkpoint "
                        "and history.json there")
    p.add_argument("--samples", type=int, default=d.samples, help="scenes per epoch, all ranks together")
    p.add_argument("--epochs", type=int, default=d.epochs, help="number of epochs (the final epoch's weights are kept)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="scenes per step and rank")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="peak AdamW learning rate (warm-up, then cosine decay); with --minutes, session peaks "
                        "are this times min(1, sqrt(samples / scenes seen)) x min(1, scenes the session adds / "
                        "scenes seen), the session measuring its rate on its first 1 %% of budget. Default: "
                        f"the campaign's own when --model-dir holds a checkpoint, else {d.learning_rate:g}")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay")
    p.add_argument("--ssim-weight", type=float, default=d.ssim_weight, help="weight of (1 - SSIM) in the loss")
    p.add_argument("--validation-samples", type=int, default=d.validation_samples, help="fixed-seed validation scenes")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of everything random")
    p.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--cpu-bf16", action="store_true",
                   help="bfloat16 autocast on a CPU with bfloat16 in hardware (AVX512-BF16, AMX-BF16; "
                        "float32 on others): a 1.5x faster step, the same validation loss at equal scenes")
    p.add_argument("--threads", type=int, default=d.threads, help="CPU threads per process (0 = torch default)")
    p.add_argument("--compile-model", action="store_true",
                   help="torch.compile the network for training steps (minutes to compile; ~1.1-1.35x faster "
                        "steps on a CPU)")
    p.add_argument("--checkpoint-dir", default="", help="folder for per-epoch checkpoints (resume from there)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--init-model", default="", help="model file to fine-tune from")
    p.add_argument("--model", default="{}", help='architecture overrides as JSON, e.g. \'{"width": 48}\'')
    p.add_argument("--scene", default="{}", help='scene-sampler overrides as JSON, e.g. \'{"size_px": 96}\'')
    p.add_argument("--nll-weight", type=float, default=d.nll_weight,
                   help="weight of the std head's Gaussian negative log-likelihood (networks with a std head)")
    p.add_argument("--train-only", default=d.train_only, choices=("", "std_head"),
                   help="'std_head': train only the std head, the mean network stays as it is (add one "
                        "to a trained model with --init-model M --model '{\"std_head\": true}')")
    p.add_argument("--mirror-twins", action="store_true",
                   help="draw half of each batch and add the east-west mirror images of those scenes (exact "
                        "solutions too): half the scene generation per trained scene; --batch-size must be even")
    p.add_argument("--recipe", default="model", choices=sorted(SCENE_RECIPES),
                   help="scene recipe under the --scene overrides: the model's own; 'realism' "
                        "(synthetic.REALISM: heterogeneous slip, several faults, all mechanisms, sigmoid "
                        "slow slips, partial track coverage, dense to sparse networks); 'multiscale' "
                        "(synthetic.MULTI_SCALE: realism at 0.5-4 km pixels, up to 10 m; give the network "
                        "its pixel size with --model '{\"pixel_size_input\": true}')")
    p.add_argument("--dem", default="", help="GeoTIFF DEM in a metric CRS: scenes use crops of it")
    return p


def campaign_learning_rate(model_dir: str, resume: bool = True, train_only: str = "") -> float:
    """The learning rate of the campaign in ``model_dir`` (its checkpoint's), else the default.

    A resumed session keeps the campaign's schedule instead of jumping to another peak.
    :class:`TrainConfig`'s default applies when there is no checkpoint, without ``resume``,
    or when the checkpoint trained other parameters (``train_only``: a std head's session
    says nothing about the mean network's rate).
    """
    path = os.path.join(model_dir, CHECKPOINT_FILE) if model_dir else ""
    if resume and path and os.path.exists(path):
        config = json.loads(torch.load(path, map_location="cpu", weights_only=True).get("config") or "{}")
        if "learning_rate" in config and config.get("train_only", "") == train_only:
            return float(config["learning_rate"])
    return TrainConfig.learning_rate


def main(argv=None):
    """Entry point of the command line."""
    args = build_parser().parse_args(argv)
    learning_rate = (args.learning_rate if args.learning_rate is not None
                     else campaign_learning_rate(args.model_dir, not args.no_resume, args.train_only))
    cfg = TrainConfig(samples=args.samples, epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=learning_rate, weight_decay=args.weight_decay,
                      ssim_weight=args.ssim_weight, validation_samples=args.validation_samples,
                      seed=args.seed, device=args.device, amp=not args.no_amp, threads=args.threads,
                      cpu_bf16=args.cpu_bf16, compile_model=args.compile_model,
                      checkpoint_dir=args.checkpoint_dir, init_model=args.init_model,
                      resume=not args.no_resume, model=json.loads(args.model),
                      scene={**SCENE_RECIPES[args.recipe], **json.loads(args.scene)},
                      minutes=args.minutes, validate_every_minutes=args.validate_every_minutes,
                      model_dir=args.model_dir, nll_weight=args.nll_weight, train_only=args.train_only,
                      mirror_twins=args.mirror_twins)
    if not args.output and not args.model_dir:
        raise SystemExit("Give --output (a model file) or --model-dir (a campaign folder).")
    if args.model_dir and args.minutes <= 0:
        raise SystemExit("--model-dir needs a time budget: --minutes N.")
    dem = None
    if args.dem:
        from .raster import read_raster
        data, grid, _ = read_raster(args.dem, bands=[1])
        dem = data[0]
        scene = SceneConfig.from_dict(cfg.scene) if cfg.scene else SceneConfig()
        if abs(grid.pixel_size - scene.pixel_m) > 1e-6 * scene.pixel_m:
            raise SystemExit(f"--dem pixel size {grid.pixel_size} differs from the scene pixel {scene.pixel_m} m.")

    def report(fraction, message):
        shown = message.startswith(("epoch ", "validation ", "session ")) and ":" in message
        if int(os.environ.get("RANK", "0")) == 0 and shown:
            print(f"[{100 * fraction:5.1f} %] {message}", flush=True)

    trainer = Trainer(cfg, dem_m=dem, progress=report)
    if cfg.minutes > 0:
        # Ctrl-C / kill: end the session at the next step boundary, validate and write
        import signal

        def stop(signum, frame):
            trainer.stop_requested = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)
    if trainer.rank == 0:
        start = (f"resuming {trainer.checkpoint_path()}" if trainer.resume_state is not None
                 else f"starting from {trainer.init_model}" if trainer.init_model else "starting from scratch")
        budget = f"{cfg.minutes:g} min budget" if cfg.minutes > 0 else f"{trainer.steps_per_epoch} steps/epoch"
        budget += f", learning rate {cfg.learning_rate:g}"
        print(f"device {trainer.device} ({trainer.precision}), world size {trainer.world}, "
              f"{parameter_count(trainer.model):,} parameters, {budget}, {start}", flush=True)
    trainer.fit(args.output or None)
    if trainer.rank == 0:
        written = args.output or os.path.join(args.model_dir, MODEL_FILE)
        extra = (f", {os.path.join(args.model_dir, CHECKPOINT_FILE)}, {os.path.join(args.model_dir, HISTORY_FILE)}"
                 if args.model_dir else "")
        print(f"wrote {written}{extra} ({trainer.scenes_seen} scenes seen in all)", flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
