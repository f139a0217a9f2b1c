"""The configurations saved in model files: plain-dict round trip and allowed values.

:class:`DictConfig` gives the frozen configuration dataclasses ``to_dict`` / ``from_dict``;
``SCENE_LIMITS``, ``MODEL_LIMITS`` and ``TRAIN_LIMITS`` hold the allowed values of every
field of :class:`.synthetic.SceneConfig`, :class:`.model.ModelConfig` and
:class:`.train.TrainConfig`, which :func:`check_fields` enforces when one is made.
"""

import math
import numbers
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Optional

from .conventions import GNSS_DAYS
from .runtime import DEVICES

#: Interpolations of the stations' net displacements the network can correct.
GNSS_PRIORS = ("kriging", "thin_plate")


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
    "tensile_fraction": Number(0.0, 1.0),
    "sill_dip_deg": Interval(0.0, 90.0, "deg"),
    "dyke_dip_deg": Interval(0.0, 90.0, "deg"),
    "sigmoid_slow_slip_fraction": Number(0.0, 1.0),
    "partial_overlap_probability": Number(0.0, 1.0),
    "unwrapping_pixel_m": Interval(0.0, 10e3, "m"),
    "random_station_subset": FLAG,
    "pixel_m_range": Interval(0.0, 100e3, "m"),
    "size_px_range": Interval(0, 8192, "px"),
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
    "std_head": FLAG,
    "pixel_size_input": FLAG,
    "std_context": FLAG,
}

#: What ``TrainConfig.train_only`` may name: everything, or only the std head.
TRAIN_ONLY = ("", "std_head")

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
    "cpu_bf16": FLAG,
    "threads": Integer(0, 4096),
    "compile_model": FLAG,
    "checkpoint_dir": TEXT,
    "init_model": TEXT,
    "resume": FLAG,
    "minutes": Number(0.0, 1e6, "min"),
    "validate_every_minutes": Number(0.0, 1e6, "min"),
    "model_dir": TEXT,
    "nll_weight": Number(0.0, 1000.0),
    "train_only": TEXT,
    "mirror_twins": FLAG,
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
    for entry in fields(config):
        allowed = limits.get(entry.name)
        value = getattr(config, entry.name)
        why = allowed.problem(value) if allowed is not None else None
        if why:
            problems.append(f"{entry.name} = {value!r} {why}")
    if problems:
        raise ValueError(f"Unusable {name} configuration: " + "; ".join(problems) + ".")


# --------------------------------------------------------------------------- the three configurations


@dataclass(frozen=True)
class SceneConfig(DictConfig):
    """What the scene sampler draws from. Ranges are (low, high); units in the names.

    Defaults follow METHOD.md and go well beyond typical values (atmospheric noise up to
    30 mm per acquisition) so that a model trained on them holds on other generators.
    """

    options_name = "scene"

    size_px: int = 64
    pixel_m: float = 1000.0
    model_epochs: int = 16
    gnss_days: int = GNSS_DAYS
    # fault (megathrust): Okada & Fukushima 2025; Nishimura et al. 2013 for slow slips
    dip_deg: tuple = (5.0, 30.0)
    rake_deg: tuple = (60.0, 120.0)
    top_depth_m: tuple = (0.0, 30e3)
    length_m: tuple = (10e3, 80e3)
    width_m: tuple = (8e3, 50e3)
    #: the slip is scaled so that the truth's largest |component| is log-uniform here
    max_displacement_m: tuple = (1e-3, 1.0)
    slow_slip_fraction: float = 0.5
    slow_slip_duration_days: tuple = (3.0, 45.0)
    # InSAR acquisitions (Sentinel-1: 6 or 12 days revisit)
    revisit_days: tuple = (6, 12)
    drop_acquisition_fraction: float = 0.15
    heading_asc_deg: tuple = (-16.0, -8.0)
    heading_desc_deg: tuple = (-172.0, -164.0)
    incidence_deg: tuple = (30.0, 46.0)
    #: per-acquisition noise (noise.py cites the typical values; these ranges exceed them)
    turbulence_sigma_m: tuple = (1e-3, 30e-3)
    correlation_length_m: tuple = (3e3, 40e3)
    stratified_m_per_m: float = 25e-6
    ramp_m_per_m: float = 1.5e-6
    epoch_offset_m: float = 0.05
    decorrelated_fraction: tuple = (0.0, 0.3)
    sea_probability: float = 0.4
    frame_edge_probability: float = 0.25
    track_dropout_probability: float = 0.15
    relief_m: tuple = (50.0, 2500.0)
    # GNSS: METHOD.md (2.3 mm horizontal, 6.8 mm vertical daily scatter); ranges widened
    station_spacing_m: tuple = (15e3, 35e3)
    station_margin_m: float = 30e3
    max_stations: int = 40
    gnss_white_h_m: tuple = (1e-3, 5e-3)
    gnss_white_v_m: tuple = (3e-3, 12e-3)
    gnss_rw_h_m_per_sqrt_day: tuple = (0.0, 0.5e-3)
    gnss_rw_v_m_per_sqrt_day: tuple = (0.0, 1.5e-3)
    gnss_common_mode_m: tuple = (0.0, 3e-3)
    gnss_gap_fraction: tuple = (0.0, 0.2)
    # -- realism, opt-in (0 / False: the recipe above, draw for draw) ------------------------
    #: scenes whose slip is a random field on sub-faults instead of uniform (sample_slip_field)
    heterogeneous_slip_fraction: float = 0.0
    #: sub-faults along strike and down dip (the edge cells carry no slip after the taper):
    #: the surface sees the long wavelengths of the slip at these depths; the Okada cost
    #: grows with the count (stated reason: ~3 ms per sub-fault per 64 x 64 scene on a CPU)
    subfaults_along: int = 10
    subfaults_down: int = 5
    #: von Karman Hurst exponent; Mai & Beroza (2002) find H ~ 0.7-0.8, i.e. about k^-2 decay
    slip_hurst: tuple = (0.5, 1.0)
    #: von Karman correlation lengths as fractions of fault length/width; Mai & Beroza (2002)
    #: find them growing with the fault's dimensions, at roughly a fifth to a half of them
    slip_correlation_fraction: tuple = (0.2, 0.5)
    #: slip standard deviation / mean slip before clipping at 0 (stated reason: large enough
    #: for patches the data can resolve, positive mean slip)
    slip_variation: tuple = (0.4, 1.0)
    #: width of the cosine taper at each edge, as a fraction of the fault's dimension; the slip
    #: goes to 0 at the edges (Mai & Beroza 2002 taper their fields; no stress singularity)
    slip_taper_fraction: float = 0.25
    #: scenes with 2..max_faults faults (multi-segment ruptures, e.g. Kaikoura 2016, Hamling et
    #: al. 2017, Science 356, eaam7194; Kumamoto 2016 on two faults); the extra faults' moments
    #: are 0.1-1 x the first's
    multi_fault_fraction: float = 0.0
    max_faults: int = 3
    #: faults whose dip and rake are drawn from the ranges below instead of the megathrust's
    #: (strike-slip, normal, reverse crustal faults; stated reason: any mechanism occurs)
    other_mechanism_fraction: float = 0.0
    other_dip_deg: tuple = (5.0, 90.0)
    other_rake_deg: tuple = (-180.0, 180.0)
    #: faults that open instead of slipping (tensile dislocations, Okada 1985): half of them
    #: sills (dip ``sill_dip_deg``), half dykes (``dyke_dip_deg``), as magma intrudes them
    #: (sills under Galapagos volcanoes, Amelung et al. 2000, Nature 407, 993; the Bardarbunga
    #: dyke, Sigmundsson et al. 2015, Nature 517, 191). No training recipe draws them: the
    #: benchmark's ``tensile`` recipe judges a model on a source it has never seen
    tensile_fraction: float = 0.0
    sill_dip_deg: tuple = (0.0, 15.0)
    dyke_dip_deg: tuple = (75.0, 90.0)
    #: slow slips with a smooth start and stop (logistic in time) instead of a linear ramp;
    #: geodetic slow-slip series accelerate and decay smoothly (e.g. Nishimura et al. 2013)
    sigmoid_slow_slip_fraction: float = 0.0
    #: probability per track that its frame covers only part of the scene (20-80 % of it):
    #: ascending and descending frames are cut at different places (Sentinel-1 frames)
    partial_overlap_probability: float = 0.0
    #: phase unwrapping fails where fringes alias: each track draws, log-uniformly in this
    #: range, the pixel [m] its interferograms were unwrapped at, and masks the pixels where
    #: its largest LOS displacement changes by lambda / 4 or more over one such pixel (Itoh
    #: 1982; :func:`.synthetic.unwrappable`). So the data gaps of real coseismic
    #: interferograms lie in the near field, where the displacement is largest, not at random
    #: ((0, 0): off). LiCSAR unwraps Sentinel-1 at ~100 m (Lazecky et al. 2020, Remote Sens.
    #: 12, 2430)
    unwrapping_pixel_m: tuple = (0.0, 0.0)
    #: keep a random subset of stations when a network exceeds max_stations (False: the first
    #: ones in grid order, which leaves the east of a dense network without stations)
    random_station_subset: bool = False
    #: multi-scale scenes: each batch draws its pixel size [m] log-uniformly in this range
    #: ((0, 0): always ``pixel_m``). The fault's lengths (``length_m``, ``width_m``,
    #: ``top_depth_m``) and ``station_margin_m`` are given for ``pixel_m`` and scale with the
    #: drawn pixel. An elastic half-space has no length scale of its own: Okada's (1985)
    #: surface displacement is unchanged when every length is multiplied by one factor at the
    #: same slip (eqs. 25-30: the slip times functions of degree 0 in the lengths). So ruptures
    #: keep their size in pixels (10-80 px: 5-320 km over 0.5-4 km pixels, Mw ~5.5-8.5 by Wells
    #: & Coppersmith 1994) while what is physical in metres (turbulence correlation lengths,
    #: station spacing, relief, ramps) changes in pixels, which the network learns through its
    #: pixel-size input (``ModelConfig.pixel_size_input``)
    pixel_m_range: tuple = (0.0, 0.0)
    #: tiles of several sizes: each batch draws its side [px] uniformly among the multiples of
    #: 16 in this range ((0, 0): always ``size_px``), the fault's lengths unchanged, so that
    #: the same ruptures are seen with more or less far field around them. Inference runs in
    #: tiles of up to 128 px (``infer.predict_scene``): campaign D (README, 2026-12-07) trained
    #: on 96-px tiles only and kept the real Illapel event where 64-px training lost it, but
    #: lost on 64-px scenes
    size_px_range: tuple = (0, 0)

    def __post_init__(self):
        check_fields(self, SCENE_LIMITS)
        low, high = self.pixel_m_range
        if high > 0 and not (0 < low <= self.pixel_m <= high):
            raise ValueError(f"Unusable scene configuration: pixel_m_range = {self.pixel_m_range!r} must hold "
                             f"pixel_m = {self.pixel_m:g} (low > 0), or be (0, 0).")
        low, high = self.unwrapping_pixel_m
        if high > 0 and not 0 < low <= high:
            raise ValueError(f"Unusable scene configuration: unwrapping_pixel_m = {self.unwrapping_pixel_m!r} must be "
                             f"0 < low <= high [m], or (0, 0).")
        low, high = self.size_px_range
        if high > 0 and not (16 <= low <= self.size_px <= high and low % 16 == 0 and high % 16 == 0):
            raise ValueError(f"Unusable scene configuration: size_px_range = {self.size_px_range!r} must be "
                             f"multiples of 16 from 16 up that hold size_px = {self.size_px}, or be (0, 0).")

    @property
    def multi_size(self) -> bool:
        """True when batches draw their tile size (``size_px_range``)."""
        return self.size_px_range[1] > 0

    @property
    def multi_scale(self) -> bool:
        """True when batches draw their pixel size (``pixel_m_range``)."""
        return self.pixel_m_range[1] > 0

    def at_pixel(self, pixel_m: float) -> "SceneConfig":
        """The configuration at another ``pixel_m`` [m], lengths scaled with it.

        The fault's lengths and the station margin are multiplied by ``pixel_m / self.pixel_m``
        (scale invariance of Okada's solution, see ``pixel_m_range``); the rest is unchanged.
        """
        k = pixel_m / self.pixel_m
        return replace(self, pixel_m=float(pixel_m), length_m=tuple(k * v for v in self.length_m),
                       width_m=tuple(k * v for v in self.width_m),
                       top_depth_m=tuple(k * v for v in self.top_depth_m),
                       station_margin_m=k * self.station_margin_m)


@dataclass(frozen=True)
class ModelConfig(DictConfig):
    """Architecture; saved in model files. ``epochs`` = model epochs T, ``gnss_days`` = D."""

    options_name = "model"

    epochs: int = 16
    gnss_days: int = 121
    width: int = 32
    gnss_width: int = 32
    insar_layers: int = 10
    gnss_temporal_layers: int = 6
    gnss_layers: int = 11
    fusion_layers: int = 4
    #: Gaussian length scales [pixels] for spreading station features on the grid
    gnss_scales_px: tuple = (8.0, 20.0, 50.0)
    #: predict a correction to an interpolation of the stations' net displacements (the
    #: classical GNSS peer) instead of the field itself
    residual_on_gnss_spline: bool = True
    #: that interpolation: ``kriging`` (bounded, reverts to zero far from the stations;
    #: :mod:`.gnss_prior`) or ``thin_plate`` (extrapolates as a plane; models before v2)
    gnss_prior: str = "kriging"
    #: thin-plate smoothing (in units of the normalised station coordinates)
    spline_smoothing: float = 1e-3
    #: a second head that returns each pixel's standard deviation per component (trained by
    #: the Gaussian negative log-likelihood; :class:`.model.DualBranchNet`)
    std_head: bool = False
    #: the fusion is told the working pixel size (log2 of it in km, a learnt bias per fusion
    #: channel, zero at the start): needed for multi-scale scenes (``SceneConfig.pixel_m_range``)
    pixel_size_input: bool = False
    #: the std head is also told the tile's feature statistics (a per-scene factor on sigma,
    #: zero at the start; needs ``std_head``): most of the errors' spread is between scenes
    std_context: bool = False

    def __post_init__(self):
        check_fields(self, MODEL_LIMITS)
        if self.std_context and not self.std_head:
            raise ValueError("std_context needs std_head (it scales the std head's sigma).")
        if self.insar_layers < 9:
            raise ValueError("insar_layers must be >= 9 (two-level U-Net plus a bottleneck layer).")
        if not 1 <= self.gnss_temporal_layers < self.gnss_layers:
            raise ValueError("gnss_temporal_layers must lie in [1, gnss_layers).")
        if self.fusion_layers < 2:
            raise ValueError("fusion_layers must be >= 2.")
        if self.gnss_prior not in GNSS_PRIORS:
            raise ValueError(f"gnss_prior must be one of {', '.join(GNSS_PRIORS)}, got {self.gnss_prior!r}.")

    @property
    def insar_channels(self) -> int:
        """Input channels of the InSAR branch: 2T epochs + 2 masks + 6 LOS components."""
        return 2 * self.epochs + 2 + 6


@dataclass(frozen=True)
class TrainConfig:
    """Training recipe (saved in the model file). Units: learning rate per step."""

    options_name = "training"

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
    #: mixed precision in the training step on CUDA: bfloat16 where supported, else float16
    amp: bool = True
    #: bfloat16 autocast in the training step on a CPU with bfloat16 in hardware
    #: (:func:`.runtime.cpu_native_bf16`; float32 elsewhere). Off by default (reproducible
    #: sessions on any CPU): on an AVX512-BF16 CPU the step is ~1.5x faster and trains to the
    #: same validation loss at equal scenes (README, Performance). Validation and inference
    #: stay float32.
    cpu_bf16: bool = False
    threads: int = 0             # CPU threads (0: torch's default)
    #: torch.compile the network for the training steps (validation runs it eagerly): on this
    #: project's 2-core AVX2 CPU 1.1-1.35x the scenes/s per step after 20 s (cached) to 4 min of
    #: compiling (bench/bench_training.py --variants); worth it for sessions of an hour or more
    compile_model: bool = False
    checkpoint_dir: str = ""
    init_model: str = ""
    resume: bool = True
    #: wall-clock budget [min]; > 0: train until it is spent (``epochs`` is then ignored)
    minutes: float = 0.0
    validate_every_minutes: float = 10.0
    #: campaign folder: model, checkpoint and history (see the module docstring)
    model_dir: str = ""
    #: weight of the std head's Gaussian negative log-likelihood in the loss (models with a
    #: std head; the mean is detached in that term, so it trains the head only)
    nll_weight: float = 1.0
    #: ``""`` trains every parameter; ``"std_head"`` only the std head (the mean network
    #: stays bit for bit as it was: a std head added to a trained model)
    train_only: str = ""
    #: each step draws ``batch_size / 2`` scenes and adds their east-west mirror images
    #: (:func:`.features.with_mirror_twins`, exact solutions too): half the generation per
    #: trained scene, which on a 2-core CPU was a third of the step (README, Performance)
    mirror_twins: bool = False
    model: dict = field(default_factory=dict)
    scene: dict = field(default_factory=dict)

    def __post_init__(self):
        check_fields(self, TRAIN_LIMITS)
        if self.mirror_twins and self.batch_size % 2:
            raise ValueError(f"mirror_twins needs an even batch_size (half drawn, half mirrored), "
                             f"got {self.batch_size}.")
        if self.train_only not in TRAIN_ONLY:
            raise ValueError(f"train_only must be one of {TRAIN_ONLY}, got {self.train_only!r}.")
