"""Synthetic scenes: megathrust slip, InSAR LOS time series of two tracks, GNSS series, truth.

Everything is generated in torch, batched, from one seed (``torch.Generator`` on the
target device), so training batches are made on the GPU without files. Conventions in
:mod:`.conventions`. The physical signal is the Okada (1985) surface displacement
(:mod:`.okada`) of a rectangular thrust on a shallow-dipping fault, times a slip history
inside the ``GNSS_DAYS`` window; noise recipes are in :mod:`.noise`.

Opt-in realism (:class:`SceneConfig` fields after ``gnss_gap_fraction``, all off by default
so that a seed gives the same scenes, draw for draw, as without them; :data:`REALISM` turns
them on): heterogeneous slip on sub-faults (von Karman random fields, Mai & Beroza 2002,
tapered to the edges), several faults, other mechanisms (dips 5-90 deg, all rakes),
sigmoid slow-slip time functions beside ramps and steps, tracks that cover only part of the
scene, near-field gaps where the fringes are too dense to unwrap (:func:`unwrappable`), and
station networks from dense to sparse.

A scene's frame: ``H x W`` pixels of ``pixel_m``; local coordinates in metres with the
origin at the scene's upper-left corner, x east, y north (so pixel centres have negative y).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import torch

from . import noise
from .configs import SceneConfig  # noqa: F401 (defined with the other configurations)
from .conventions import WAVELENGTH_M
from .geometry import los_unit_vector
from .okada import Fault, surface_displacement


def model_epoch_days(config: SceneConfig):
    """Days (from the window start) of the model's regularly spaced epochs."""
    return np.linspace(0.0, config.gnss_days - 1, config.model_epochs)


@dataclass
class SceneBatch:
    """A batch of scenes in physical units (metres), on one device.

    insar_m : (B, 2, A, H, W) cumulative LOS [m] per acquisition (track 0 asc, 1 desc),
        relative to the track's first acquisition, each acquisition with its own reference
        offset; NaN where not observed or for padded acquisitions.
    acq_days : (B, 2, A) acquisition day in the window; NaN for padding.
    los : (B, 2, 3, H, W) LOS unit vectors (east, north, up), ground -> satellite.
    dem_m : (B, H, W) elevation [m]; <= 0 is sea.
    gnss_m : (B, S, D, 3) daily east/north/up [m] with a constant offset per station; NaN gaps.
    gnss_xy_m : (B, S, 2) station (x, y) in the scene frame [m]; gnss_valid : (B, S) bool.
    truth_m : (B, 3, H, W) east/north/up displacement from the first to the last day [m].
    faults : one Fault per scene, in the scene frame (the main fault, with its mean slip);
    slip_history : (B, D) fraction of slip.
    sources : per scene, the list of Faults (sub-faults, several faults) whose summed Okada
        displacement is ``truth_m``; ``[faults[b]]`` without the realism options.
    """

    insar_m: torch.Tensor
    acq_days: torch.Tensor
    los: torch.Tensor
    dem_m: torch.Tensor
    gnss_m: torch.Tensor
    gnss_xy_m: torch.Tensor
    gnss_valid: torch.Tensor
    truth_m: torch.Tensor
    faults: list = field(default_factory=list)
    slip_history: Optional[torch.Tensor] = None
    pixel_m: float = 1000.0
    sources: list = field(default_factory=list)


def _uniform(gen, low, high, size=(), device="cpu"):
    return low + (high - low) * torch.rand(size, generator=gen, device=device, dtype=torch.float64)


def _scalar(gen, low, high, device):
    return float(_uniform(gen, low, high, (), device))


#: Offset of the seed of :attr:`SceneSampler.unwrapping_generator` from the scenes' seed.
UNWRAPPING_SEED_OFFSET = 7_919


def unwrappable(los_m: torch.Tensor, pixel_m: float, unwrapping_pixel_m) -> torch.Tensor:
    """True where a LOS displacement field [m] can be unwrapped, (..., H, W) bool.

    Unwrapping recovers the phase only where it changes by less than pi between neighbouring
    pixels (Itoh 1982, "Analysis of the phase unwrapping algorithm", Appl. Opt. 21, 2470),
    i.e. where the LOS displacement changes by less than ``WAVELENGTH_M / 4`` over one pixel of
    the grid it is unwrapped on. ``los_m`` on a grid of ``pixel_m`` [m]; its gradient by
    central differences (one-sided at the edges) times ``unwrapping_pixel_m`` [m] (a float
    or a tensor broadcastable to the leading dimensions) is that change along the steepest
    direction. Processors mask such aliased, incoherent areas, which are the near field of
    large earthquakes.
    """
    gy, gx = torch.gradient(los_m, spacing=float(pixel_m), dim=(-2, -1))
    step_m = torch.as_tensor(unwrapping_pixel_m, dtype=los_m.dtype, device=los_m.device)
    step_m = step_m.reshape(step_m.shape + (1, 1)) if step_m.dim() else step_m
    return torch.hypot(gx, gy) * step_m < WAVELENGTH_M / 4.0


def slip_history(days, onset_day, duration_days, shape="ramp"):
    """Fraction of the final slip reached on each day.

    A step (duration 0), a linear ramp over ``duration_days`` from ``onset_day``, or
    (``shape="sigmoid"``) a logistic curve centred in that interval with a 10-90 % rise of
    ~55 % of it (time constant duration / 8), rescaled to 0 on the first and 1 on the last day.
    """
    days = np.asarray(days, dtype=np.float64)
    if duration_days <= 0:
        return (days >= onset_day).astype(np.float64)
    if shape == "sigmoid":
        curve = 1.0 / (1.0 + np.exp(-(days - onset_day - 0.5 * duration_days) / (duration_days / 8.0)))
        return np.clip((curve - curve[0]) / (curve[-1] - curve[0]), 0.0, 1.0)
    if shape != "ramp":
        raise ValueError(f"Unknown slip history shape {shape!r}; use ramp or sigmoid.")
    return np.clip((days - onset_day) / duration_days, 0.0, 1.0)


def sample_fault(gen, config: SceneConfig, device="cpu") -> Fault:
    """A thrust on a shallow megathrust whose surface projection lies around the scene centre.

    Or another mechanism (``other_mechanism_fraction``), or a sill or dyke that opens
    (``tensile_fraction``). Unit slip or opening; the caller scales it to the target maximum
    displacement.
    """
    size_m = config.size_px * config.pixel_m
    other = config.other_mechanism_fraction > 0 and _scalar(gen, 0.0, 1.0, device) < config.other_mechanism_fraction
    # drawn only when asked for, so that every other recipe keeps its scenes draw for draw
    tensile = config.tensile_fraction > 0 and _scalar(gen, 0.0, 1.0, device) < config.tensile_fraction
    strike = _scalar(gen, 0.0, 360.0, device)
    if tensile:
        sill = _scalar(gen, 0.0, 1.0, device) < 0.5
        dip = _scalar(gen, *(config.sill_dip_deg if sill else config.dyke_dip_deg), device)
    else:
        dip = _scalar(gen, *(config.other_dip_deg if other else config.dip_deg), device)
    length = _scalar(gen, *config.length_m, device)
    width = _scalar(gen, *config.width_m, device)
    depth = _scalar(gen, *config.top_depth_m, device)
    # centre of the fault's surface projection within the central 60 % of the scene
    cx = _scalar(gen, 0.2 * size_m, 0.8 * size_m, device)
    cy = -_scalar(gen, 0.2 * size_m, 0.8 * size_m, device)
    s, d = math.radians(strike), math.radians(dip)
    half_horizontal = 0.5 * width * math.cos(d)
    # top-edge centre = projection centre moved half the horizontal width up-dip (to the left)
    east = cx + half_horizontal * (-math.cos(s))
    north = cy + half_horizontal * math.sin(s)
    if dip == 0.0 and depth == 0.0:
        depth = 1.0                      # Okada's horizontal fault needs some depth
    rake = _scalar(gen, *(config.other_rake_deg if other else config.rake_deg), device)
    slip, opening = (0.0, 1.0) if tensile else (1.0, 0.0)      # a sill or dyke only opens: rake moot
    return Fault(east=east, north=north, depth=depth, strike=strike, dip=dip, length=length,
                 width=width, rake=rake, slip=slip, opening=opening)


def subdivide_fault(fault: Fault, along: int, down: int, weights=None):
    """The fault cut into ``along x down`` rectangular sub-faults (a list, row by row down dip).

    Sub-fault ``(j, i)`` (``j`` down dip, ``i`` along strike) has slip ``fault.slip *
    weights[j, i]`` (uniform without ``weights``), the same strike, dip and rake; with the
    weights' mean equal to 1 the seismic moment is the fault's. By linear superposition
    (Okada 1985) the sum of the sub-faults' displacements is the fault's for uniform weights.
    Sub-faults of zero slip are left out.
    """
    cos_s, sin_s = math.cos(math.radians(fault.strike)), math.sin(math.radians(fault.strike))
    cos_d, sin_d = math.cos(math.radians(fault.dip)), math.sin(math.radians(fault.dip))
    dl, dw = fault.length / along, fault.width / down
    out = []
    for j in range(down):
        depth = fault.depth + j * dw * sin_d
        across = j * dw * cos_d                       # horizontal, in the dip direction
        for i in range(along):
            w = 1.0 if weights is None else float(weights[j][i])
            if w == 0.0:
                continue
            offset = -0.5 * fault.length + (i + 0.5) * dl
            out.append(Fault(east=fault.east + offset * sin_s + across * cos_s,
                             north=fault.north + offset * cos_s - across * sin_s,
                             depth=depth if depth > 0 or fault.dip > 0 else fault.depth,
                             strike=fault.strike, dip=fault.dip, length=dl, width=dw, rake=fault.rake,
                             slip=fault.slip * w, opening=fault.opening * w))
    return out


def cosine_taper(count: int, fraction: float) -> np.ndarray:
    """Taper weights over ``count`` cells (a Tukey window).

    0 at both end cells, rising as a half cosine over ``fraction`` of the length, 1 in between.
    """
    if count < 3 or fraction <= 0:
        return np.ones(count)
    x = np.linspace(0.0, 1.0, count)
    edge = np.minimum(x, 1.0 - x) / fraction
    return np.where(edge >= 1.0, 1.0, 0.5 * (1.0 - np.cos(np.pi * np.clip(edge, 0.0, 1.0))))


def sample_slip_field(gen, config: SceneConfig, fault: Fault, device="cpu") -> np.ndarray:
    """Random slip weights (down x along) on the fault's sub-faults, mean 1.

    A von Karman random field (power spectrum ``(1 + kx^2 ax^2 + kz^2 az^2)^-(H + 1)``, Mai &
    Beroza 2002, JGR 107(B11), 2308, eq. 4 with ``H`` and the correlation lengths ``ax, az``
    drawn from ``slip_hurst`` and ``slip_correlation_fraction`` x length/width), made by
    filtering white noise in the Fourier domain, scaled to a standard deviation of
    ``slip_variation`` around 1, clipped at 0, multiplied by a cosine taper that is 0 at every
    edge (``slip_taper_fraction``), then normalised to mean 1 (the uniform fault's moment).
    """
    nz, nx = config.subfaults_down, config.subfaults_along
    hurst = _scalar(gen, *config.slip_hurst, device)
    ax = _scalar(gen, *config.slip_correlation_fraction, device) * fault.length
    az = _scalar(gen, *config.slip_correlation_fraction, device) * fault.width
    variation = _scalar(gen, *config.slip_variation, device)
    white = torch.randn((nz, nx), generator=gen, device=device, dtype=torch.float64).cpu().numpy()
    kx = 2 * np.pi * np.fft.fftfreq(nx, d=fault.length / nx)
    kz = 2 * np.pi * np.fft.fftfreq(nz, d=fault.width / nz)
    power = (1.0 + (kx[None, :] * ax) ** 2 + (kz[:, None] * az) ** 2) ** (-(hurst + 1.0))
    power[0, 0] = 0.0                                      # zero mean
    field = np.real(np.fft.ifft2(np.fft.fft2(white) * np.sqrt(power)))
    std = field.std()
    field = field / std if std > 0 else field
    slip = np.clip(1.0 + variation * field, 0.0, None)
    slip = slip * cosine_taper(nz, config.slip_taper_fraction)[:, None] * \
        cosine_taper(nx, config.slip_taper_fraction)[None, :]
    mean = slip.mean()
    return slip / mean if mean > 0 else np.ones_like(slip)


def sample_sources(gen, config: SceneConfig, device="cpu"):
    """(main fault, every source) of one scene, unit (mean) slip on the main fault.

    Without the realism options: the main fault alone. With them, possibly more faults
    (``multi_fault_fraction``) and each fault possibly split into sub-faults with random slip
    (``heterogeneous_slip_fraction``); the summed displacement of the sources is the scene's.
    """
    fault = sample_fault(gen, config, device)
    faults = [fault]
    if config.multi_fault_fraction > 0 and _scalar(gen, 0.0, 1.0, device) < config.multi_fault_fraction:
        extra = int(torch.randint(1, max(2, config.max_faults), (1,), generator=gen, device=device))
        for _ in range(extra):
            other = sample_fault(gen, config, device)
            # moment 0.1-1 x the first fault's, log-uniform
            ratio = math.exp(_scalar(gen, math.log(0.1), 0.0, device))
            faults.append(other.scaled(ratio * fault.length * fault.width / (other.length * other.width)))
    sources = []
    for f in faults:
        if (config.heterogeneous_slip_fraction > 0
                and _scalar(gen, 0.0, 1.0, device) < config.heterogeneous_slip_fraction):
            weights = sample_slip_field(gen, config, f, device)
            sources.extend(subdivide_fault(f, config.subfaults_along, config.subfaults_down, weights))
        else:
            sources.append(f)
    return fault, sources


def sample_stations(gen, config: SceneConfig, device="cpu"):
    """Random network: ~uniform density at a random spacing, over the scene plus a margin.

    Returns (S, 2) station (x, y) [m] in the scene frame (a jittered grid, which keeps
    stations apart as real networks do, e.g. GEONET at ~20-25 km).
    """
    size_m = config.size_px * config.pixel_m
    spacing = _scalar(gen, *config.station_spacing_m, device)
    margin = config.station_margin_m
    n = max(1, int(math.ceil((size_m + 2 * margin) / spacing)))
    ij = torch.stack(torch.meshgrid(torch.arange(n, device=device), torch.arange(n, device=device),
                                    indexing="ij"), -1).reshape(-1, 2).double()
    offset = _uniform(gen, 0.0, spacing, (2,), device)
    jitter = _uniform(gen, -0.35 * spacing, 0.35 * spacing, ij.shape, device)
    xy = ij * spacing + offset + jitter - margin
    xy[:, 1] = -xy[:, 1]
    inside = (xy[:, 0] > -margin) & (xy[:, 0] < size_m + margin) & (xy[:, 1] < margin) & (xy[:, 1] > -size_m - margin)
    xy = xy[inside]
    if config.random_station_subset and len(xy) > config.max_stations:
        xy = xy[torch.randperm(len(xy), generator=gen, device=device)]
    return xy


def _acquisition_days(gen, config, device):
    revisit = config.revisit_days[int(torch.randint(len(config.revisit_days), (1,), generator=gen, device=device))]
    start = int(_scalar(gen, 0.0, revisit, device))     # acquisitions fall on whole days
    days = np.arange(start, config.gnss_days - 1 + 1e-9, revisit)
    keep = torch.rand(len(days), generator=gen, device=device).cpu().numpy() >= config.drop_acquisition_fraction
    keep[0] = keep[-1] = True     # the window is spanned by the series
    return days[keep]


class SceneSampler:
    """Draws batches of scenes (see :class:`SceneBatch`) on a device from a seed.

    ``dem_m`` (optional, numpy 2-D [m] on a grid of ``config.pixel_m``) and ``stations_xy_m``
    (optional, (S, 2) in the same frame as the DEM's upper-left origin) make the scenes use a
    user's topography (random crops) and GNSS network (shifted with the crop).
    """

    def __init__(self, config: SceneConfig = SceneConfig(), seed: int = 0, device="cpu",  # noqa: B008
                 dem_m: Optional[np.ndarray] = None, stations_xy_m: Optional[np.ndarray] = None):
        self.config = self.base_config = config
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        # the unwrapping pixels come from a stream of their own, so that a recipe with and
        # without near-field gaps draws the same scenes (paired comparisons)
        self.unwrapping_generator = torch.Generator(device=self.device)
        self.unwrapping_generator.manual_seed(int(seed) + UNWRAPPING_SEED_OFFSET)
        n = max(config.size_px, config.size_px_range[1])           # the largest tile drawn
        if config.multi_scale and (dem_m is not None or stations_xy_m is not None):
            raise ValueError("A DEM or a station network of one pixel size cannot make multi-scale scenes "
                             "(pixel_m_range); use the fractal terrain and random networks.")
        if dem_m is not None and (dem_m.shape[0] < n or dem_m.shape[1] < n):
            raise ValueError(f"The DEM ({dem_m.shape[1]} x {dem_m.shape[0]} px) is smaller than one "
                             f"scene ({n} x {n} px of {config.pixel_m:g} m).")
        self.dem_m = None if dem_m is None else torch.as_tensor(np.nan_to_num(dem_m, nan=0.0), device=self.device)
        self.stations_xy_m = None if stations_xy_m is None else torch.as_tensor(
            stations_xy_m, dtype=torch.float64, device=self.device)
        self._set_pixel(config)

    def _set_pixel(self, config: SceneConfig):
        """Use ``config`` (and its pixel size) for the next scenes."""
        self.config, n = config, config.size_px
        y, x = torch.meshgrid(torch.arange(n, device=self.device, dtype=torch.float64),
                              torch.arange(n, device=self.device, dtype=torch.float64), indexing="ij")
        self.pixel_x = (x + 0.5) * config.pixel_m
        self.pixel_y = -(y + 0.5) * config.pixel_m

    def _dem(self, count):
        cfg, gen, n = self.config, self.generator, self.config.size_px
        if self.dem_m is None:
            relief = _uniform(gen, *cfg.relief_m, (count,), self.device).float()
            dem = noise.fractal_dem((count, n, n), cfg.pixel_m, relief, generator=gen, device=self.device)
            offsets = [(0, 0)] * count
        else:
            h, w = self.dem_m.shape
            rows = torch.randint(h - n + 1, (count,), generator=gen, device=self.device).tolist()
            cols = torch.randint(w - n + 1, (count,), generator=gen, device=self.device).tolist()
            dem = torch.stack([self.dem_m[r:r + n, c:c + n] for r, c in zip(rows, cols)]).float()
            offsets = list(zip(rows, cols))
        return dem, offsets

    def sample(self, batch_size: int) -> SceneBatch:
        """Draw ``batch_size`` scenes (a multi-scale or multi-size configuration: one drawn pixel and tile size)."""
        base = self.base_config
        if base.multi_scale or base.multi_size:
            config = base
            if base.multi_scale:
                low, high = base.pixel_m_range
                config = config.at_pixel(math.exp(_scalar(self.generator, math.log(low), math.log(high), self.device)))
            if base.multi_size:
                low, high = base.size_px_range
                sixteens = torch.randint(low // 16, high // 16 + 1, (1,), generator=self.generator, device=self.device)
                config = replace(config, size_px=16 * int(sixteens))
            self._set_pixel(config)
        cfg, gen, dev = self.config, self.generator, self.device
        n, days = cfg.size_px, cfg.gnss_days
        dem, offsets = self._dem(batch_size)
        if self.dem_m is None:
            dem = self._add_sea(dem)

        day_axis = np.arange(days, dtype=np.float64)
        truths, faults, histories, station_sets, station_disp, all_sources = [], [], [], [], [], []
        for b in range(batch_size):
            fault, sources = sample_sources(gen, cfg, dev)
            if self.stations_xy_m is None:
                xy = sample_stations(gen, cfg, dev)
            else:
                r, c = offsets[b]
                xy = self.stations_xy_m.clone()
                xy[:, 0] -= c * cfg.pixel_m
                xy[:, 1] += r * cfg.pixel_m
            xy = self._drop_sea_stations(xy, dem[b])[: cfg.max_stations]
            east = torch.cat([self.pixel_x.reshape(-1), xy[:, 0]])
            north = torch.cat([self.pixel_y.reshape(-1), xy[:, 1]])
            ue, un, uu = surface_displacement(sources, east, north)
            disp = torch.stack([ue, un, uu])                         # (3, n*n + S)
            peak = float(disp[:, : n * n].abs().max())
            target = math.exp(_scalar(gen, math.log(cfg.max_displacement_m[0]),
                                      math.log(cfg.max_displacement_m[1]), dev))
            scale = target / peak if peak > 0 else 0.0
            disp = disp * scale
            faults.append(fault.scaled(scale))
            all_sources.append([f.scaled(scale) for f in sources])
            truths.append(disp[:, : n * n].reshape(3, n, n))
            station_sets.append(xy)
            station_disp.append(disp[:, n * n:].T)                   # (S, 3)
            onset = _scalar(gen, 5.0, days - 10.0, dev)
            slow = _scalar(gen, 0.0, 1.0, dev) < cfg.slow_slip_fraction
            duration = _scalar(gen, *cfg.slow_slip_duration_days, dev) if slow else 0.0
            duration = min(duration, days - 1 - onset)
            shape = "ramp"
            sigmoid = cfg.sigmoid_slow_slip_fraction
            if slow and sigmoid > 0 and _scalar(gen, 0.0, 1.0, dev) < sigmoid:
                shape = "sigmoid"
            histories.append(slip_history(day_axis, onset, duration, shape))
        truth = torch.stack(truths).float()
        history = torch.as_tensor(np.stack(histories), device=dev)

        los, insar, acq = self._insar(truth, dem, history)
        gnss, gnss_xy, gnss_valid = self._gnss(station_sets, station_disp, history)
        return SceneBatch(insar_m=insar, acq_days=acq, los=los, dem_m=dem, gnss_m=gnss,
                          gnss_xy_m=gnss_xy, gnss_valid=gnss_valid, truth_m=truth, faults=faults,
                          slip_history=history, pixel_m=cfg.pixel_m, sources=all_sources)

    # -- pieces -----------------------------------------------------------------------------
    def _add_sea(self, dem):
        """Sea on one side of a random coastline in some scenes (megathrusts are coastal)."""
        cfg, gen, dev = self.config, self.generator, self.device
        count, n = dem.shape[0], cfg.size_px
        has_sea = torch.rand(count, generator=gen, device=dev) < cfg.sea_probability
        angle = _uniform(gen, 0, 2 * math.pi, (count,), dev).float()
        position = _uniform(gen, 0.15, 0.6, (count,), dev).float()
        u = (torch.arange(n, device=dev).float() + 0.5) / n - 0.5
        yy, xx = torch.meshgrid(u, u, indexing="ij")
        side = xx[None] * torch.cos(angle)[:, None, None] + yy[None] * torch.sin(angle)[:, None, None]
        sea = has_sea[:, None, None] & (side > (0.5 - position)[:, None, None])
        return torch.where(sea, torch.zeros_like(dem), dem.clamp_min(1.0))

    def _drop_sea_stations(self, xy, dem):
        """Stations stand on land: drop those over sea pixels of this scene."""
        n, px = self.config.size_px, self.config.pixel_m
        col = torch.floor(xy[:, 0] / px).long()
        row = torch.floor(-xy[:, 1] / px).long()
        inside = (col >= 0) & (col < n) & (row >= 0) & (row < n)
        land = torch.ones_like(inside)
        land[inside] = dem[row[inside], col[inside]] > 0
        return xy[land]

    def _insar(self, truth, dem, history):
        cfg, gen, dev = self.config, self.generator, self.device
        count, n = truth.shape[0], cfg.size_px
        acquisitions = [[_acquisition_days(gen, cfg, dev) for _ in range(2)] for _ in range(count)]
        a_max = max(len(d) for pair in acquisitions for d in pair)
        insar = torch.full((count, 2, a_max, n, n), float("nan"), device=dev)
        acq = torch.full((count, 2, a_max), float("nan"), device=dev, dtype=torch.float64)
        los = torch.empty((count, 2, 3, n, n), device=dev)
        u = (torch.arange(n, device=dev, dtype=torch.float64) + 0.5) / n - 0.5
        # the random fields of the whole batch in one call each (the per-call cost dominates
        # at training size); both tracks of a scene share its atmospheric regime
        counts = [len(pair[0]) + len(pair[1]) for pair in acquisitions]
        delays = torch.split(self._delays(counts, dem), counts)
        fractions = _uniform(gen, *cfg.decorrelated_fraction, (count, 2), dev).float()
        masks = noise.decorrelation_mask((count, 2, n, n), cfg.pixel_m, fractions, generator=gen, device=dev)
        for b in range(count):
            drop_track = -1
            if _scalar(gen, 0, 1, dev) < cfg.track_dropout_probability:
                drop_track = int(torch.randint(2, (1,), generator=gen, device=dev))
            valid_common = self._coverage(dem[b])
            track_delays = torch.split(delays[b], [len(acquisitions[b][0]), len(acquisitions[b][1])])
            for t, heading_range in enumerate((cfg.heading_asc_deg, cfg.heading_desc_deg)):
                heading = _scalar(gen, *heading_range, dev)
                centre_inc = _scalar(gen, cfg.incidence_deg[0] + 2, cfg.incidence_deg[1] - 2, dev)
                # incidence grows across the swath, ~15 deg over 250 km (Sentinel-1 IW)
                # position along the (right-looking) look azimuth heading + 90 deg; rows run south
                across = (u[None, :] * math.cos(math.radians(heading))
                          + u[:, None] * math.sin(math.radians(heading)))
                inc = centre_inc + 15.0 * (n * cfg.pixel_m / 250e3) * across
                e, nn, up = los_unit_vector(heading, inc.cpu().numpy())
                vec = torch.as_tensor(np.stack([e, nn, up]), device=dev).float()
                los[b, t] = vec
                days = acquisitions[b][t]
                k = len(days)
                acq[b, t, :k] = torch.as_tensor(days, device=dev)
                hist = torch.as_tensor(np.interp(days, np.arange(cfg.gnss_days), history[b].cpu().numpy()),
                                       device=dev).float()
                signal = (truth[b] * vec).sum(0)                                # LOS of the truth
                delay = track_delays[t]                                         # (k, n, n)
                series = hist[:, None, None] * signal + delay - delay[:1]
                series = series + _uniform(gen, -cfg.epoch_offset_m, cfg.epoch_offset_m, (k, 1, 1), dev).float()
                valid = valid_common & masks[b, t]
                if cfg.unwrapping_pixel_m[1] > 0:
                    low, high = (math.log(v) for v in cfg.unwrapping_pixel_m)
                    step_m = math.exp(_scalar(self.unwrapping_generator, low, high, dev))
                    # the largest displacement of the series sets the densest fringes
                    valid = valid & unwrappable(signal * hist.abs().max(), cfg.pixel_m, step_m)
                if cfg.partial_overlap_probability > 0 and _scalar(gen, 0, 1, dev) < cfg.partial_overlap_probability:
                    valid = valid & self._frame_part(n)
                if t == drop_track:
                    valid = torch.zeros_like(valid)
                insar[b, t, :k] = torch.where(valid, series, torch.full_like(series, float("nan")))
        return los, insar, acq

    def _coverage(self, dem):
        """Pixels the radar frame covers and where there is land (no phase over the sea)."""
        cfg, gen, dev = self.config, self.generator, self.device
        n = cfg.size_px
        valid = dem > 0
        if _scalar(gen, 0, 1, dev) < cfg.frame_edge_probability:
            angle = _scalar(gen, 0, 2 * math.pi, dev)
            u = (torch.arange(n, device=dev).float() + 0.5) / n - 0.5
            yy, xx = torch.meshgrid(u, u, indexing="ij")
            valid = valid & (xx * math.cos(angle) + yy * math.sin(angle) < _scalar(gen, 0.2, 0.5, dev))
        return valid

    def _frame_part(self, n):
        """A straight frame boundary that leaves 20-80 % of the scene to one track."""
        gen, dev = self.generator, self.device
        angle = _scalar(gen, 0, 2 * math.pi, dev)
        u = (torch.arange(n, device=dev).float() + 0.5) / n - 0.5
        yy, xx = torch.meshgrid(u, u, indexing="ij")
        side = xx * math.cos(angle) + yy * math.sin(angle)
        return side < torch.quantile(side.reshape(-1), _scalar(gen, 0.2, 0.8, dev))

    def _delays(self, counts, dem):
        """Atmospheric + orbital delay of every acquisition (before referencing) [m].

        ``counts[b]`` acquisitions of scene ``b`` (DEM ``dem[b]``), consecutive in the
        result, (sum(counts), n, n). Each scene has its own regime (turbulence amplitude,
        correlation length and spectrum, stratification strength); each acquisition its
        own fields, amplitude factor and stratified coefficient.
        """
        cfg, gen, dev = self.config, self.generator, self.device
        n, scenes, total = cfg.size_px, len(counts), int(sum(counts))
        scene_of = torch.repeat_interleave(torch.arange(scenes, device=dev),
                                           torch.as_tensor(counts, device=dev))
        sigma = _uniform(gen, *cfg.turbulence_sigma_m, (scenes,), dev).float()
        corr = _uniform(gen, *cfg.correlation_length_m, (scenes,), dev)[scene_of]
        powerlaw = (torch.rand(scenes, generator=gen, device=dev) < 0.5)[scene_of]
        sigmas = sigma[scene_of] * _uniform(gen, 0.5, 1.5, (total,), dev).float()
        turb = torch.empty((total, n, n), device=dev)
        for kind, chosen in (("powerlaw", powerlaw), ("exponential", ~powerlaw)):
            if bool(chosen.any()):
                turb[chosen] = noise.turbulence((int(chosen.sum()), n, n), cfg.pixel_m, sigmas[chosen],
                                                corr[chosen], kind=kind, generator=gen, device=dev)
        strength = _uniform(gen, 0, cfg.stratified_m_per_m, (scenes,), dev).float()
        coeff = _uniform(gen, -1, 1, (total,), dev).float() * strength[scene_of]
        strat = noise.stratified(dem[scene_of], coeff)
        ramps = noise.ramp((total, n, n), cfg.pixel_m, _uniform(gen, 0, cfg.ramp_m_per_m, (total,), dev).float(),
                           generator=gen, device=dev)
        return turb + strat + ramps

    def _gnss(self, station_sets, station_disp, history):
        """Daily E/N/U series of every scene's stations, padded to the largest network."""
        cfg, gen, dev = self.config, self.generator, self.device
        count, days = len(station_sets), cfg.gnss_days
        sizes = [len(xy) for xy in station_sets]
        s_max = max(1, max(sizes))
        valid = torch.arange(s_max, device=dev)[None, :] < torch.as_tensor(sizes, device=dev)[:, None]
        gnss_xy = torch.zeros((count, s_max, 2), device=dev)
        disp = torch.zeros((count, s_max, 3), device=dev)
        for b, (xy, d) in enumerate(zip(station_sets, station_disp)):
            gnss_xy[b, :len(xy)] = xy.float()
            disp[b, :len(xy)] = d.float()
        # one noise regime per scene, drawn for the whole batch (padding stations included)
        per_scene = lambda rng: _uniform(gen, *rng, (count,), dev)  # noqa: E731
        err = noise.gnss_noise((count, s_max, days), per_scene(cfg.gnss_white_h_m),
                               per_scene(cfg.gnss_white_v_m), per_scene(cfg.gnss_rw_h_m_per_sqrt_day),
                               per_scene(cfg.gnss_rw_v_m_per_sqrt_day),
                               common_mode_m=per_scene(cfg.gnss_common_mode_m), generator=gen, device=dev)
        offset = _uniform(gen, -1.0, 1.0, (count, s_max, 1, 3), dev).float()
        observed = noise.gnss_gaps((count, s_max, days), per_scene(cfg.gnss_gap_fraction),
                                   generator=gen, device=dev)
        series = history.float()[:, None, :, None] * disp[:, :, None, :] + err + offset
        keep = (observed & valid[:, :, None])[..., None]
        gnss = torch.where(keep, series, torch.full_like(series, float("nan")))
        return gnss, gnss_xy, valid


@dataclass
class SceneArrays:
    """One scene as numpy arrays, acquisitions without padding (what files are made of).

    insar_m : list of two (A_k, H, W) arrays (asc, desc); acq_days : list of two (A_k,) int
    arrays; los (2, 3, H, W); dem_m (H, W); gnss_m (S, D, 3); gnss_xy_m (S, 2) scene frame;
    truth_m (3, H, W); fault (Fault, scene frame); slip_history (D,); sources (list of Fault
    whose summed displacement is the truth).
    """

    insar_m: list
    acq_days: list
    los: np.ndarray
    dem_m: np.ndarray
    gnss_m: np.ndarray
    gnss_xy_m: np.ndarray
    truth_m: np.ndarray
    fault: Fault
    slip_history: np.ndarray
    sources: list = field(default_factory=list)


def scene_arrays(batch: SceneBatch, index: int = 0) -> SceneArrays:
    """Scene ``index`` of a batch as :class:`SceneArrays`."""
    insar, days = [], []
    for t in range(2):
        d = batch.acq_days[index, t].cpu().numpy()
        keep = np.isfinite(d)
        days.append(np.round(d[keep]).astype(int))
        insar.append(batch.insar_m[index, t, : keep.sum()].cpu().numpy())
    valid = batch.gnss_valid[index].cpu().numpy()
    return SceneArrays(insar, days, batch.los[index].cpu().numpy(), batch.dem_m[index].cpu().numpy(),
                       batch.gnss_m[index, valid].cpu().numpy(), batch.gnss_xy_m[index, valid].cpu().numpy(),
                       batch.truth_m[index].cpu().numpy(), batch.faults[index],
                       batch.slip_history[index].cpu().numpy(),
                       list(batch.sources[index]) if batch.sources else [batch.faults[index]])


#: Scene options of the ``realism`` recipe (benchmark and training): the opt-in realism on,
#: megathrusts still the main case (60 % of the faults), networks from 10 to 60 km spacing,
#: more decorrelation.
REALISM = {
    "heterogeneous_slip_fraction": 0.5,
    "multi_fault_fraction": 0.3,
    "other_mechanism_fraction": 0.4,
    "tensile_fraction": 0.0,
    "sigmoid_slow_slip_fraction": 0.5,
    "partial_overlap_probability": 0.3,
    "decorrelated_fraction": (0.0, 0.5),
    "station_spacing_m": (10e3, 60e3),
    "random_station_subset": True,
    # one pixel size and up to 1 m, whatever the model's own scenes say (MULTI_SCALE varies them)
    "pixel_m_range": (0.0, 0.0),
    "max_displacement_m": (1e-3, 1.0),
}

#: Scene options of the ``multiscale`` recipe: :data:`REALISM` at pixel sizes drawn in 0.5-4 km
#: (``SceneConfig.pixel_m_range``: 64 px scenes of 32-256 km, ruptures of 5-320 km, Mw ~5.5-8.5),
#: displacements up to 10 m (the largest coseismic offsets measured geodetically, e.g. Tohoku
#: 2011, Sato et al. 2011, Science 332, 1395) and station networks from 10 km to 150 km spacing
#: (a handful of stations over 300 km, as around many subduction and continental events: the
#: network has to read the InSAR where GNSS cannot tell it the field).
MULTI_SCALE = {**REALISM, "pixel_m_range": (500.0, 4000.0), "max_displacement_m": (1e-3, 10.0),
               "station_spacing_m": (10e3, 150e3)}
