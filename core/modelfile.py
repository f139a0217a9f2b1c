"""Model files: one ``.pt`` of tensors and plain metadata, read with ``weights_only=True``.

A file that carries code (a pickle with ``__reduce__`` of arbitrary objects) is refused by
``torch.load(weights_only=True)`` before anything runs; a foreign or truncated file gets a
``ModelFileError`` that says what is wrong.

Layout (format ``insar_gnss_3d-model``, version 1)::

    {"format": str, "version": int, "model_config": dict, "scene_config": dict,
     "training": dict (recipe, epochs, samples, seed, command), "history": dict of lists,
     "validation": dict, "state_dict": {name: tensor}}
"""

from __future__ import annotations

import os
import pickle
import re
from typing import Optional

import torch

from .configs import ModelConfig, SceneConfig
from .model import DualBranchNet, with_calibration_defaults
from .runtime import AtomicPath

FORMAT = "insar_gnss_3d-model"
VERSION = 1


class ModelFileError(ValueError):
    """The file is not a usable InSAR-GNSS 3D model file."""


def save_model(path: str, model: DualBranchNet, scene_config: SceneConfig, training: dict,
               history: Optional[dict] = None, validation: Optional[dict] = None):
    """Write the model atomically (``path.part`` then rename)."""
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "model_config": model.config.to_dict(),
               "scene_config": scene_config.to_dict(), "training": dict(training),
               "history": dict(history or {}), "validation": dict(validation or {}),
               "state_dict": state}
    with AtomicPath(path) as part:
        torch.save(payload, part)


def read_model_file(path: str) -> dict:
    """The checked payload of a model file (no code is ever executed)."""
    if not os.path.isfile(path):
        raise ModelFileError(f"Model file {path} does not exist.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:   # objects that could run code (or an unknown pickle)
        with open(path, "rb") as f:
            magic = f.read(2)
        if magic[:2] != b"PK" and magic[:1] != b"\x80":   # neither torch's zip nor a pickle
            raise ModelFileError(
                f"{os.path.basename(path)} is not an InSAR-GNSS 3D model: it is cut short, damaged or a "
                "file of another kind. Copy it again, or train a model with trainmodel.") from exc
        raise ModelFileError(_refusal_message(path, exc)) from exc
    except Exception as exc:  # RuntimeError (zip), EOFError, KeyError...: cut short, damaged or foreign
        raise ModelFileError(
            f"{os.path.basename(path)} is not a complete PyTorch model file: it is cut short, damaged "
            f"or a file of another kind ({type(exc).__name__}). Copy it again, or train a model with "
            "trainmodel.") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{os.path.basename(path)} is a PyTorch file but not an InSAR-GNSS 3D model.")
    if payload.get("version") != VERSION:
        raise ModelFileError(f"{os.path.basename(path)} has model-file version {payload.get('version')}; "
                             f"this plugin reads version {VERSION}.")
    for key in ("model_config", "scene_config", "state_dict"):
        if not isinstance(payload.get(key), dict):
            raise ModelFileError(f"{os.path.basename(path)} lacks '{key}'.")
    return payload


def _refusal_message(path: str, exc: Exception) -> str:
    """Whole sentence for a file torch's safe loader refused (torch's own advice left out).

    torch's message suggests ``weights_only=False``, which would run whatever code the file
    carries: the plugin never does that, so the message says what was found and what to do.
    """
    found = re.search(r"(unsupported GLOBAL [^\n]*?)(?: whose|\.?\n|$)", str(exc))
    what = f" ({found.group(1).rstrip('.')})" if found else ""
    return (f"{os.path.basename(path)} carries code or Python objects other than tensors and plain "
            f"data{what}, which could run code when loaded; it was refused without running anything. "
            "This plugin reads only model files written by trainmodel or python -m "
            "insar_gnss_3d.core.train: use such a file, or the bundled model.")


def load_model(path: str, device="cpu"):
    """(model in eval mode on ``device``, scene config, payload) from a model file."""
    payload = read_model_file(path)
    try:
        config = ModelConfig.from_dict(payload["model_config"])
        scene = SceneConfig.from_dict(payload["scene_config"])
        model = DualBranchNet(config)
        model.load_state_dict(with_calibration_defaults(model, payload["state_dict"]), strict=True)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise ModelFileError(f"{os.path.basename(path)} does not match this plugin's network: {exc}") from exc
    return model.to(device).eval(), scene, payload
