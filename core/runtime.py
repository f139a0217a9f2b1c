"""What every long core call shares: device choice, cancellation, progress, atomic files.

The lowest layer of ``core`` next to :mod:`.conventions`: it imports no other module of
the package, and torch only inside :func:`select_device`.

Progress callbacks take ``(fraction in [0, 1], message)``; cancel callbacks take nothing
and return True to stop, after which the call raises :class:`Cancelled` having written
nothing (files are written to ``<name>.part`` and renamed by :class:`AtomicPath`).
"""

from __future__ import annotations

import os
from typing import Callable, Optional

#: The model shipped with the plugin (``resources/models/insar_gnss_3d.pt``).
BUNDLED_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "resources", "models", "insar_gnss_3d.pt")

#: Device words the algorithms and command lines accept (:func:`select_device`).
DEVICES = ("auto", "cpu", "cuda")

#: ``progress(fraction, message)``: fraction of the call done in [0, 1] and what it does.
ProgressFn = Optional[Callable[[float, str], None]]
#: ``is_canceled()``: True once the user asked to stop.
CancelFn = Optional[Callable[[], bool]]


class Cancelled(Exception):
    """The ``is_canceled`` callback returned True; the call stopped and wrote nothing."""


def check_canceled(is_canceled: CancelFn, message: str = "Cancelled by the user; no output was written."):
    """Raise :class:`Cancelled` with ``message`` when ``is_canceled()`` is True."""
    if is_canceled is not None and is_canceled():
        raise Cancelled(message)


def report(progress: ProgressFn, fraction: float, message: str = ""):
    """Call ``progress(fraction, message)`` when there is a callback."""
    if progress is not None:
        progress(float(fraction), message)


def select_device(name: str):
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is an error.

    Returns a ``torch.device``; ``RuntimeError`` for CUDA without a GPU, ``ValueError`` for
    an unknown word.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("DEVICE=cuda was asked for, but PyTorch sees no CUDA GPU "
                           f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}).")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"Unknown device {name!r}; use auto, cpu or cuda.")
    return torch.device(name)


#: /proc/cpuinfo flags of x86 CPUs with bfloat16 arithmetic in hardware (AVX512-BF16: AMD
#: Zen 4, Intel Cooper Lake; AMX-BF16: Intel Sapphire Rapids and later).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_native_bf16(cpuinfo_path: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes in bfloat16 in hardware (Linux x86; False elsewhere).

    Why it matters: oneDNN runs bfloat16 convolutions at ~1.4-1.6x the float32 speed where
    the instructions exist, and emulates them ~10x slower where they do not (README, bench).
    """
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return any(flag in line.split() for flag in NATIVE_BF16_FLAGS)
    except OSError:
        pass
    return False


class AtomicPath:
    """Write a file all at once through ``<path>.part``: the one write-then-rename of ``core``.

    As a context manager it gives the part path to write to; when the block ends normally
    the part file is renamed to ``path`` (``os.replace``, atomic on one file system), when it
    raises (a failure, :class:`Cancelled`) the part file is removed with ``remove`` (default
    ``os.remove``; GDAL's ``Delete`` for rasters with side files) and ``path`` is left as it
    was. Writers that outlive one block call :meth:`commit` or :meth:`discard` themselves.
    """

    def __init__(self, path: str, remove: Optional[Callable[[str], None]] = None):
        self.path = path
        self.part = path + ".part"
        self.remove = remove or os.remove

    def commit(self):
        """Move the finished part file into place."""
        os.replace(self.part, self.path)

    def discard(self):
        """Remove the part file, if any."""
        if os.path.exists(self.part):
            self.remove(self.part)

    def __enter__(self) -> str:
        return self.part

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False
