"""A bounded GNSS prior: simple kriging of the stations' net displacements.

A thin-plate spline continues as a plane away from its stations, so two or three stations
almost on one line extrapolate metres of false motion across a scene (the issue that made
this module). Simple kriging with a zero mean and a Matérn 3/2 covariance of finite
correlation length instead reverts to zero motion far from the network, and its standard
deviation rises to the sill there: it says where the GNSS knows nothing.

Model, per component ``c`` (Rasmussen & Williams 2006, Gaussian Processes for Machine
Learning, MIT Press, eqs. 2.25-2.26 for the posterior, eq. 4.17 for the Matérn class)::

    v_i = f(x_i) + e_i,   f ~ GP(0, s_c^2 k(r / L)),   e_i ~ N(0, n_ic^2)
    k(r) = (1 + sqrt(3) r) exp(-sqrt(3) r)                       (Matérn nu = 3/2)
    mean(x) = k_*^T (K + N)^-1 v,   var(x) = s_c^2 - k_*^T (K + N)^-1 k_*

* the sill ``s_c^2`` is the mean square of the stations' values of that component (the
  zero-mean prior's variance, read from the data), floored by their noise;
* the correlation length ``L`` maximises the log marginal likelihood (R&W eq. 2.30) summed
  over components among multiples of the median nearest-neighbour station spacing, so a
  dense network gets a short length and a sparse one a long one; with fewer than two
  stations it is ``fallback_length``;
* stations enter with their own noise ``n_ic`` (the scatter of their daily series), so a
  station's value is honoured to within its noise, not exactly.

Every station in and around the scene enters once for the whole scene (the caller computes
the prior on the full working grid and hands tiles their part), so tiles share one field
and no seam appears. Positions in any consistent length unit (metres for the scene-wide
prior, pixels inside the network). Frames: :mod:`.conventions`.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import torch

#: Candidate correlation lengths, in multiples of the median nearest-neighbour spacing.
LENGTH_FACTORS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
#: Relative jitter added to the covariance diagonal (numerical conditioning only).
JITTER = 1e-6
#: Smallest station noise variance, as a fraction of the squared RMS of the stations'
#: values: a noise-free series (or offsets given without sigma) would make kriging honour
#: each station exactly and ring between close stations.
MIN_NOISE_FRACTION = 1e-4
#: Doubles one block of grid points may hold per array (points x components x stations):
#: 16 M doubles = 128 MB, so memory stays bounded for a network of thousands of stations.
BLOCK_DOUBLES = 16 * 2 ** 20
#: Stations farther than this many correlation lengths from a block of the grid are left
#: out of its mean (Matérn 3/2 correlation 1.4e-5 there).
CUTOFF_LENGTHS = 8.0
#: Grid points x stations^2 spent on the standard deviation; beyond it (networks of
#: hundreds of stations on millions of pixels) the std is computed on a coarser grid and
#: interpolated bilinearly: exact far from the stations, where it varies on the correlation
#: length, and too large (conservative) within a few pixels of a station.
STD_BUDGET = 2e10

_SQRT3 = math.sqrt(3.0)


def matern32(r_over_length):
    """Matérn 3/2 correlation ``(1 + sqrt(3) r) exp(-sqrt(3) r)`` of ``r / L`` (R&W eq. 4.17)."""
    a = _SQRT3 * r_over_length
    return (1.0 + a) * torch.exp(-a)


def _pairwise(a, b):
    """Euclidean distances (B, N, M) between point sets (B, N, 2) and (B, M, 2)."""
    d2 = ((a * a).sum(-1)[..., :, None] + (b * b).sum(-1)[..., None, :]
          - 2.0 * a @ b.transpose(-1, -2)).clamp_min(0.0)
    return torch.sqrt(d2)


def median_spacing(xy, valid):
    """Median nearest-neighbour distance (B,) of the valid stations; NaN with fewer than two."""
    dist = _pairwise(xy, xy)
    both = valid[:, :, None] & valid[:, None, :]
    eye = torch.eye(xy.shape[1], dtype=torch.bool, device=xy.device)[None]
    dist = torch.where(both & ~eye, dist, torch.full_like(dist, math.inf))
    nearest = dist.min(-1).values                                            # (B, S)
    nearest = torch.where(valid & torch.isfinite(nearest), nearest, torch.full_like(nearest, math.nan))
    return torch.nanmedian(nearest, dim=1).values


def _sill(values, noise_var, valid):
    """Per-component variance of the zero-mean prior (B, C): mean square of the valid values."""
    v = valid[..., None].to(values.dtype)
    count = v.sum(1).clamp_min(1.0)
    mean_square = (values * values * v).sum(1) / count
    noise = (noise_var * v).sum(1) / count
    return torch.maximum(mean_square, noise).clamp_min(1e-30)


def _covariance(xy, valid, length, sill, noise_var):
    """(B, C, S, S) station covariance; invalid stations decoupled with unit diagonal."""
    corr = matern32(_pairwise(xy, xy) / length[:, None, None])               # (B, S, S)
    both = (valid[:, :, None] & valid[:, None, :]).to(xy.dtype)
    k = sill[:, :, None, None] * (corr * both)[:, None]
    diag = torch.where(valid[:, None, :], noise_var.transpose(1, 2) + JITTER * sill[..., None],
                       torch.ones_like(noise_var.transpose(1, 2)))
    return k + torch.diag_embed(diag)


def choose_length(xy, values, noise_var, valid, fallback_length):
    """Correlation length (B,) maximising the log marginal likelihood (R&W eq. 2.30).

    Candidates are :data:`LENGTH_FACTORS` times the median nearest-neighbour spacing;
    ``fallback_length`` (B,) where fewer than two stations are valid.
    """
    spacing = median_spacing(xy, valid)
    sill = _sill(values, noise_var, valid)
    v = torch.where(valid[..., None], values, torch.zeros_like(values)).transpose(1, 2)[..., None]
    best = torch.full_like(spacing, -math.inf)
    length = fallback_length.clone()
    usable = torch.isfinite(spacing)
    for factor in LENGTH_FACTORS:
        trial = torch.where(usable, spacing * factor, fallback_length)
        cov = _covariance(xy, valid, trial, sill, noise_var)                  # (B, C, S, S)
        chol, info = torch.linalg.cholesky_ex(cov)
        alpha = torch.cholesky_solve(v, chol)
        fit = (v * alpha).sum((-1, -2))                                       # (B, C)
        logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        loglik = -0.5 * (fit + logdet).sum(-1)
        loglik = torch.where(info.amax(-1) == 0, loglik, torch.full_like(loglik, -math.inf))
        better = usable & (loglik > best)
        best = torch.where(better, loglik, best)
        length = torch.where(better, trial, length)
    return length


def krige_grid(xy, values, noise_var, valid, grid_x, grid_y, length=None, fallback_length=None,
               with_std: bool = True):
    """Batched simple kriging onto a regular grid (torch, float64 inside).

    Parameters
    ----------
    xy : (B, S, 2) tensor
        Station positions, same unit and frame as ``grid_x`` / ``grid_y``.
    values, noise_var : (B, S, C) tensor
        Station values and their noise variances (squared unit of ``values``).
    valid : (B, S) bool tensor
        Stations to use; the others are ignored.
    grid_x : (W,) tensor, grid_y : (H,) tensor
        Coordinates of the grid's columns and rows.
    length : (B,) tensor, optional
        Correlation length; by default :func:`choose_length`.
    fallback_length : (B,) tensor, optional
        Length when fewer than two stations are valid (required then).
    with_std : bool
        Also the posterior standard deviation (None otherwise; the mean alone costs grid
        points x stations, the std grid points x stations^2).

    Returns
    -------
    mean, std : (B, C, H, W) tensors
        Posterior mean and standard deviation; with no valid station the mean is 0 and
        the std is ``inf`` (nothing is known).
    """
    dtype = values.dtype
    xy, values, noise_var = xy.double(), values.double(), noise_var.double()
    grid_x, grid_y = grid_x.double().to(xy.device), grid_y.double().to(xy.device)
    values = torch.where(valid[..., None], values, torch.zeros_like(values))
    b, s, c = values.shape
    mean_square = (values * values).sum(1, keepdim=True) / valid.sum(1).clamp_min(1)[:, None, None]
    noise_var = torch.maximum(noise_var, MIN_NOISE_FRACTION * mean_square + 1e-30)
    noise_var = torch.where(valid[..., None], noise_var, torch.ones_like(noise_var))
    h, w = grid_y.numel(), grid_x.numel()
    if s == 0 or not bool(valid.any()):
        zeros = torch.zeros((b, c, h, w), dtype=dtype, device=xy.device)
        return zeros, (torch.full_like(zeros, math.inf) if with_std else None)
    if length is None:
        if fallback_length is None:
            fallback_length = torch.full((b,), float(max(h, w)), dtype=torch.float64, device=xy.device)
        length = choose_length(xy, values, noise_var, valid, fallback_length.double().to(xy.device))
    length = length.double().to(xy.device)
    sill = _sill(values, noise_var, valid)                                   # (B, C)
    chol = torch.linalg.cholesky(_covariance(xy, valid, length, sill, noise_var))
    alpha = torch.cholesky_solve(values.transpose(1, 2)[..., None], chol)    # (B, C, S, 1)
    weights = (sill[..., None] * alpha[..., 0]).transpose(1, 2)              # (B, S, C)
    if b == 1 and h * w * s > BLOCK_DOUBLES:
        mean = _local_mean(grid_x, grid_y, xy, valid, length, weights)
    else:
        mean = torch.empty((b, h * w, c), dtype=torch.float64, device=xy.device)
        block_points = max(256, BLOCK_DOUBLES // max(1, b * s))
        points = _grid_points(grid_x, grid_y)
        for start in range(0, h * w, block_points):
            corr = _station_correlation(points[start:start + block_points], xy, valid, length)
            mean[:, start:start + corr.shape[1]] = corr @ weights
        mean = mean.transpose(1, 2).reshape(b, c, h, w)
    none = ~valid.any(1)
    mean[none] = 0.0
    if not with_std:
        return mean.to(dtype), None
    # the std varies on the scale of the correlation length: a coarse grid, then bilinear,
    # keeps its cost (grid points x stations^2) bounded for large networks and grids
    stride = max(1, math.ceil(math.sqrt(h * w * s * s / STD_BUDGET)))
    cx = torch.linspace(float(grid_x[0]), float(grid_x[-1]), max(2, math.ceil((w - 1) / stride) + 1),
                        dtype=torch.float64, device=xy.device) if w > 1 else grid_x
    cy = torch.linspace(float(grid_y[0]), float(grid_y[-1]), max(2, math.ceil((h - 1) / stride) + 1),
                        dtype=torch.float64, device=xy.device) if h > 1 else grid_y
    coarse = _grid_points(cx, cy)
    var = torch.empty((b, c, coarse.shape[0]), dtype=torch.float64, device=xy.device)
    block_points = max(64, BLOCK_DOUBLES // max(1, b * c * s))
    for start in range(0, coarse.shape[0], block_points):
        corr = _station_correlation(coarse[start:start + block_points], xy, valid, length)
        k_star = sill[:, :, None, None] * corr[:, None]                       # (B, C, P, S)
        half = torch.linalg.solve_triangular(chol, k_star.transpose(-1, -2), upper=False)
        var[:, :, start:start + corr.shape[1]] = sill[..., None] - (half * half).sum(-2)
    std = torch.sqrt(var.clamp_min(0.0)).reshape(b, c, cy.numel(), cx.numel())
    if (cy.numel(), cx.numel()) != (h, w):
        std = torch.nn.functional.interpolate(std, size=(h, w), mode="bilinear", align_corners=True)
    std[none] = math.inf
    return mean.to(dtype), std.to(dtype)


def _local_mean(grid_x, grid_y, xy, valid, length, weights, tile: int = 128):
    """Posterior mean (1, C, H, W) tile by tile, each from the stations within reach.

    A station farther than :data:`CUTOFF_LENGTHS` correlation lengths from a tile's box
    has a correlation below 1.4e-5 there and is left out: large scenes with dense networks
    cost grid points x nearby stations instead of x all stations.
    """
    h, w, c = grid_y.numel(), grid_x.numel(), weights.shape[-1]
    mean = torch.zeros((1, c, h, w), dtype=torch.float64, device=xy.device)
    reach = CUTOFF_LENGTHS * float(length[0])
    px, py = xy[0, :, 0], xy[0, :, 1]
    for r0 in range(0, h, tile):
        gy = grid_y[r0:r0 + tile]
        for c0 in range(0, w, tile):
            gx = grid_x[c0:c0 + tile]
            dx = torch.clamp(torch.maximum(gx.min() - px, px - gx.max()), min=0.0)
            dy = torch.clamp(torch.maximum(gy.min() - py, py - gy.max()), min=0.0)
            near = valid[0] & (torch.hypot(dx, dy) <= reach)
            if not bool(near.any()):
                continue
            corr = _station_correlation(_grid_points(gx, gy), xy[:, near], valid[:, near], length)
            mean[0, :, r0:r0 + gy.numel(), c0:c0 + gx.numel()] = (
                (corr @ weights[:, near])[0].T.reshape(c, gy.numel(), gx.numel()))
    return mean


def _grid_points(grid_x, grid_y):
    """(H W, 2) coordinates of a grid's points, row by row."""
    gy, gx = torch.meshgrid(grid_y, grid_x, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)


def _station_correlation(points, xy, valid, length):
    """(B, P, S) Matérn correlation of grid points with the valid stations (0 for the others).

    Computed in float32 from coordinate differences taken relative to the block's first
    point (no cancellation; relative error ~1e-7, far below what a prior needs), then
    returned as float64 for the weighted sums.
    """
    origin = points[:1]
    inverse_length = (1.0 / length).to(torch.float32)[:, None, None]
    p = (points - origin).to(torch.float32)[None] * inverse_length           # (B, P, 2)
    q = (xy - origin).to(torch.float32) * inverse_length                      # (B, S, 2)
    # one kernel for the distances from differences (not the |p|^2 + |q|^2 - 2 p.q expansion)
    r = torch.cdist(p, q, compute_mode="donot_use_mm_for_euclid_dist")
    return matern32(r).mul_(valid.to(torch.float32)[:, None, :]).to(torch.float64)


def kriging_prior(station_xy_m, values_m, sigma_m, grid_x_m, grid_y_m,
                  length_m: Optional[float] = None,
                  fallback_length_m: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Scene-wide bounded GNSS prior on a grid (numpy in, numpy out).

    Parameters
    ----------
    station_xy_m : (S, 2) array_like
        Station positions (x east, y north) [m], in the grid's frame.
    values_m : (S, 3) array_like
        Net east/north/up displacement of each station [m]; rows with a NaN are left out.
    sigma_m : (S, 3) array_like
        Standard deviation of each value [m] (e.g. from the daily series' scatter).
    grid_x_m : (W,) array_like, grid_y_m : (H,) array_like
        Pixel-centre coordinates of the grid's columns and rows [m].
    length_m : float, optional
        Correlation length [m]; by default chosen by maximum likelihood among multiples of
        the median station spacing (:func:`choose_length`).
    fallback_length_m : float, optional
        Length when fewer than two stations are usable; default a quarter of the grid's
        larger side.

    Returns
    -------
    mean_m, std_m : (3, H, W) numpy.ndarray
        Posterior mean and standard deviation [m], float64. Far from every station the
        mean tends to 0 and the std to the sill (the stations' RMS motion); with no usable
        station the mean is 0 and the std ``inf``.

    References
    ----------
    .. [1] Rasmussen, C. E., & Williams, C. K. I. (2006). Gaussian Processes for Machine
       Learning. MIT Press. Eqs. 2.25-2.26, 2.30, 4.17.
    """
    xy = np.asarray(station_xy_m, dtype=np.float64).reshape(-1, 2)
    values = np.asarray(values_m, dtype=np.float64).reshape(-1, 3)
    sigma = np.broadcast_to(np.asarray(sigma_m, dtype=np.float64), values.shape)
    gx = np.asarray(grid_x_m, dtype=np.float64)
    gy = np.asarray(grid_y_m, dtype=np.float64)
    valid = np.isfinite(values).all(1) & np.isfinite(xy).all(1) & np.isfinite(sigma).all(1)
    if fallback_length_m is None:
        side = max(np.ptp(gx) if gx.size else 0.0, np.ptp(gy) if gy.size else 0.0)
        fallback_length_m = max(side / 4.0, 1.0)
    t = torch.from_numpy
    mean, std = krige_grid(
        t(np.nan_to_num(xy))[None], t(np.nan_to_num(values))[None],
        t(np.nan_to_num(sigma, nan=1.0) ** 2)[None], t(valid)[None], t(gx), t(gy),
        length=None if length_m is None else torch.tensor([float(length_m)], dtype=torch.float64),
        fallback_length=torch.tensor([float(fallback_length_m)], dtype=torch.float64))
    return mean[0].numpy(), std[0].numpy()
