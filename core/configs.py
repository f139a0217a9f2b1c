"""The configurations saved in model files: plain-dict round trip and allowed values.

:class:`DictConfig` gives the frozen configuration dataclasses ``to_dict`` / ``from_dict``;
``SCENE_LIMITS``, ``MODEL_LIMITS`` and ``TRAIN_LIMITS`` hold the allowed values of every
field of :class:`.synthetic.SceneConfig`, :class:`.model.ModelConfig` and
:class:`.train.TrainConfig`, which :func:`check_fields` enforces when one is made.
"""

import math
import numbers
import re
from dataclasses import asdict, fields
from typing import Optional

from .runtime import DEVICES


class DictConfig:
    """Mixin for frozen dataclasses: ``to_dict`` / ``from_dict`` (lists back to tuples).

    ``from_dict`` refuses unknown keys with an error that lists the valid ones; the class
    attribute ``options_name`` names them in that message.
    """

    options_name = "configuration"

    def to_dict(self):
        """Plain dict (JSON- and ``weights_only``-safe)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Inverse of :meth:`to_dict`."""
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown {cls.options_name} options {sorted(unknown)}; valid: {sorted(known)}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# --------------------------------------------------------------------------- allowed values


class Allowed:
    """What one configuration field may hold; :meth:`problem` says why a value does not fit."""

    def problem(self, value) -> Optional[str]:
        """None when ``value`` is allowed, else what is wrong (completes "<field> = <value> ...")."""
        raise NotImplementedError


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


class Number(Allowed):
    """A finite number in ``[low, high]`` (``integer``: a whole number)."""

    def __init__(self, low, high, unit: str = "", integer: bool = False):
        self.low, self.high, self.unit, self.integer = low, high, unit, integer

    def range_text(self) -> str:
        """``[low, high] unit`` as written in messages."""
        return f"[{self.low:g}, {self.high:g}]" + (f" {self.unit}" if self.unit else "")

    def problem(self, value):
        """None when allowed, else why not."""
        kind = "a whole number" if self.integer else "a number"
        if self.integer:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        else:
            ok = _is_number(value)
        if not ok or not self.low <= value <= self.high:
            return f"must be {kind} in {self.range_text()}"
        return None


def Integer(low, high, unit: str = "") -> Number:  # noqa: N802 (reads as a type in the tables)
    """A whole number in ``[low, high]``."""
    return Number(low, high, unit, integer=True)


class Interval(Allowed):
    """A sampling range ``(lo, hi)`` with ``lo <= hi``, both in ``[low, high]``."""

    def __init__(self, low, high, unit: str = ""):
        self.bounds = Number(low, high, unit)

    def problem(self, value):
        """None when allowed, else why not."""
        if (not isinstance(value, (tuple, list)) or len(value) != 2 or not all(_is_number(v) for v in value)
                or value[0] > value[1] or any(self.bounds.problem(v) for v in value)):
            return f"must be a range (low, high) with low <= high, both in {self.bounds.range_text()}"
        return None


class Members(Allowed):
    """A non-empty tuple whose every member is allowed by ``member``."""

    def __init__(self, member: Number):
        self.member = member

    def problem(self, value):
        """None when allowed, else why not."""
        if (not isinstance(value, (tuple, list)) or not value
                or any(self.member.problem(v) for v in value)):
            kind = "whole numbers" if self.member.integer else "numbers"
            return f"must be one or more {kind} in {self.member.range_text()}"
        return None


class OfType(Allowed):
    """A value of one type (a flag, a path, a dict of options)."""

    def __init__(self, kind, name: str):
        self.kind, self.name = kind, name

    def problem(self, value):
        """None when allowed, else why not."""
        return None if isinstance(value, self.kind) else f"must be {self.name}"


class Device(Allowed):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:<index>`` (:func:`.runtime.select_device`)."""

    def problem(self, value):
        """None when allowed, else why not."""
        if isinstance(value, str) and (value in DEVICES or re.fullmatch(r"cuda:\d+", value)):
            return None
        return f"must be one of {', '.join(DEVICES)} (or cuda:<index>)"


FLAG = OfType((bool, int), "True or False")
TEXT = OfType(str, "a text (a path, or empty)")
OPTIONS = OfType(dict, "a dict of options")

#: Allowed values of every :class:`.synthetic.SceneConfig` field. Generous: what the
#: generator can draw from without failing, not what is typical (METHOD.md).
SCENE_LIMITS = {
    "size_px": Integer(8, 8192, "px"),
    "pixel_m": Number(1.0, 100e3, "m"),
    "model_epochs": Integer(2, 1000),
    "gnss_days": Integer(2, 10_000, "days"),
    "dip_deg": Interval(0.0, 90.0, "deg"),
    "rake_deg": Interval(-180.0, 180.0, "deg"),
    "top_depth_m": Interval(0.0, 700e3, "m"),
    "length_m": Interval(1.0, 2000e3, "m"),
    "width_m": Interval(1.0, 1000e3, "m"),
    "max_displacement_m": Interval(1e-6, 100.0, "m"),
    "slow_slip_fraction": Number(0.0, 1.0),
    "slow_slip_duration_days": Interval(0.0, 10_000.0, "days"),
    "revisit_days": Members(Integer(1, 366, "days")),
    "drop_acquisition_fraction": Number(0.0, 0.95),
    "heading_asc_deg": Interval(-360.0, 360.0, "deg"),
    "heading_desc_deg": Interval(-360.0, 360.0, "deg"),
    "incidence_deg": Interval(1.0, 89.0, "deg"),
    "turbulence_sigma_m": Interval(0.0, 1.0, "m"),
    "correlation_length_m": Interval(1.0, 1e6, "m"),
    "stratified_m_per_m": Number(0.0, 1e-2, "m/m"),
    "ramp_m_per_m": Number(0.0, 1e-3, "m/m"),
    "epoch_offset_m": Number(0.0, 10.0, "m"),
    "decorrelated_fraction": Interval(0.0, 1.0),
    "sea_probability": Number(0.0, 1.0),
    "frame_edge_probability": Number(0.0, 1.0),
    "track_dropout_probability": Number(0.0, 1.0),
    "relief_m": Interval(0.0, 9000.0, "m"),
    "station_spacing_m": Interval(100.0, 1e6, "m"),
    "station_margin_m": Number(0.0, 1e6, "m"),
    "max_stations": Integer(1, 10_000),
    "gnss_white_h_m": Interval(0.0, 1.0, "m"),
    "gnss_white_v_m": Interval(0.0, 1.0, "m"),
    "gnss_rw_h_m_per_sqrt_day": Interval(0.0, 0.1, "m/sqrt(day)"),
    "gnss_rw_v_m_per_sqrt_day": Interval(0.0, 0.1, "m/sqrt(day)"),
    "gnss_common_mode_m": Interval(0.0, 1.0, "m"),
    "gnss_gap_fraction": Interval(0.0, 1.0),
    # opt-in realism (synthetic.py)
    "heterogeneous_slip_fraction": Number(0.0, 1.0),
    "subfaults_along": Integer(1, 200),
    "subfaults_down": Integer(1, 200),
    "slip_hurst": Interval(0.0, 3.0),
    "slip_correlation_fraction": Interval(1e-3, 10.0),
    "slip_variation": Interval(0.0, 10.0),
    "slip_taper_fraction": Number(0.0, 0.5),
    "multi_fault_fraction": Number(0.0, 1.0),
    "max_faults": Integer(1, 20),
    "other_mechanism_fraction": Number(0.0, 1.0),
    "other_dip_deg": Interval(0.0, 90.0, "deg"),
    "other_rake_deg": Interval(-180.0, 180.0, "deg"),
    "sigmoid_slow_slip_fraction": Number(0.0, 1.0),
    "partial_overlap_probability": Number(0.0, 1.0),
    "random_station_subset": FLAG,
}

#: Allowed values of every :class:`.model.ModelConfig` field (its ``__post_init__`` adds
#: the rules that tie fields together and the interpolation's names).
MODEL_LIMITS = {
    "epochs": Integer(2, 1000),
    "gnss_days": Integer(2, 10_000, "days"),
    "width": Integer(1, 1024),
    "gnss_width": Integer(1, 1024),
    "insar_layers": Integer(9, 200),
    "gnss_temporal_layers": Integer(1, 200),
    "gnss_layers": Integer(2, 200),
    "fusion_layers": Integer(2, 200),
    "gnss_scales_px": Members(Number(0.1, 1e4, "px")),
    "residual_on_gnss_spline": FLAG,
    "gnss_prior": TEXT,
    "spline_smoothing": Number(0.0, 1e3),
}

#: Allowed values of every :class:`.train.TrainConfig` field.
TRAIN_LIMITS = {
    "samples": Integer(1, 10 ** 9, "scenes"),
    "epochs": Integer(1, 10 ** 6),
    "batch_size": Integer(1, 65_536, "scenes"),
    "learning_rate": Number(1e-9, 1.0),
    "weight_decay": Number(0.0, 1.0),
    "warmup_fraction": Number(0.0, 1.0),
    "ssim_weight": Number(0.0, 1000.0),
    "validation_samples": Integer(0, 10 ** 7, "scenes"),
    "seed": Integer(0, 2 ** 63 - 1),
    "device": Device(),
    "amp": FLAG,
    "threads": Integer(0, 4096),
    "compile_model": FLAG,
    "checkpoint_dir": TEXT,
    "init_model": TEXT,
    "resume": FLAG,
    "minutes": Number(0.0, 1e6, "min"),
    "validate_every_minutes": Number(0.0, 1e6, "min"),
    "model_dir": TEXT,
    "model": OPTIONS,
    "scene": OPTIONS,
}


def check_fields(config, limits: dict):
    """Refuse a configuration with a field outside its allowed values (``ValueError``).

    The message names the options, the field, the value and what is allowed, e.g.
    ``Unusable scene configuration: pixel_m = -1 must be a number in [1, 100000] m.``
    Fields without an entry in ``limits`` are not checked (tests/core/test_configs.py
    requires an entry for every field).
    """
    name = getattr(config, "options_name", type(config).__name__)
    problems = []
    for field in fields(config):
        allowed = limits.get(field.name)
        value = getattr(config, field.name)
        why = allowed.problem(value) if allowed is not None else None
        if why:
            problems.append(f"{field.name} = {value!r} {why}")
    if problems:
        raise ValueError(f"Unusable {name} configuration: " + "; ".join(problems) + ".")
