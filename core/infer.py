"""Tiled inference of the CNN on a scene of any size, in bounded memory, without seams.

The scene is cut into ``tile_px`` tiles overlapping by ``overlap_px``; each tile's prediction
is weighted by a window that falls linearly to (almost) zero over the overlap and the
weighted predictions are summed and normalised (a partition of unity, so a smooth field
stays smooth across tile borders). One displacement scale (:mod:`.features`) is computed
for the whole scene so that neighbouring tiles agree. GNSS stations are given to every
tile with positions relative to it: stations outside a tile still inform it. The GNSS prior
the network corrects (kriging of every station's net displacement, :mod:`.gnss_prior`) is
computed once on the whole working grid and each tile receives its window of it, so the
prior is one field, not one per tile.
"""

from __future__ import annotations

import numpy as np
import torch

from .features import (displacement_scale, gnss_relative, gnss_series_input, mirror_east_west, mirror_field,
                       network_inputs, remove_epoch_offsets)
from .model import IDENTITY_STD_EXPONENTS, kriging_tile, station_net_displacement
from .runtime import CancelFn, Cancelled, ProgressFn, report


def station_reach_px(model) -> float:
    """Stations farther than this from a tile [pixels] are not given to its GNSS branch.

    Four times the branch's largest spreading length: a Gaussian weight of exp(-8) there,
    so a station beyond it changes no tile's features, and tiles agree with the whole scene.
    """
    return 4.0 * max(model.config.gnss_scales_px)


#: Views the network is run on by default (:func:`predict_views`): the scene and its mirror image.
VIEWS = 2


def predict_views(model, inputs, with_std: bool = False, views: int = VIEWS):
    """The network's mean (B, 3, H, W), in scale units, over ``views`` views of the scene.

    ``views=2`` averages the scene and its east-west mirror image
    (:func:`.features.mirror_east_west`, an exact symmetry of the half-space and of the
    two-track geometry) mapped back: test-time augmentation that costs a second forward
    pass. The mirrored view alone scores as well as the scene itself; the average raises
    the benchmark's mean of 12 median mSSIMs (4 recipes x E/N/U, bundled v3) from 0.556 to
    0.575 on seed 0 and from 0.520 to 0.528 on seed 777 (README). ``views=1``: the network
    alone, as trained and validated.

    With ``with_std``: ``(mean, std)``, ``std`` the calibrated sigma (:func:`calibrated_std`)
    of the views' mixture (:func:`views_mean_and_raw_std`); None without a std head.
    """
    mean, raw_std = views_mean_and_raw_std(model, inputs, with_std, views)
    if not with_std:
        return mean
    return mean, None if raw_std is None else calibrated_std(model, inputs, raw_std, mean)


def views_mean_and_raw_std(model, inputs, with_std: bool = True, views: int = VIEWS):
    """``(mean, raw sigma)`` (B, 3, H, W) in scale units over ``views`` views, before calibration.

    The raw sigma is the head's (the model's forward pass), before calibration (:func:`calibrated_std`);
    with two views it is the standard deviation of the equal mixture of the views' Gaussians,
    ``sqrt(mean(s_i^2) + mean((m_i - m)^2))`` (Lakshminarayanan et al. 2017, "Simple and
    scalable predictive uncertainty estimation using deep ensembles", NeurIPS, sec. 2.4).
    None without ``with_std`` or a std head.
    """
    if views not in (1, 2):
        raise ValueError(f"views must be 1 or 2, got {views}.")
    has_std = with_std and getattr(model, "std_head", None) is not None

    def run(view):
        return model(view, with_std=True) if has_std else (model(view), None)

    first = run(inputs)
    if views == 1:
        return first
    second = run(mirror_east_west(inputs))
    m1, m2 = first[0], mirror_field(second[0])
    mean = 0.5 * (m1 + m2)
    if not has_std:
        return mean, None
    s1, s2 = first[1], second[1].flip(-1)
    return mean, torch.sqrt(0.5 * (s1 ** 2 + s2 ** 2) + (0.5 * (m1 - m2)) ** 2)


#: Distances to the nearest station beyond this [pixels] count as this in the calibrated
#: sigma: the calibration scenes are 64 px tiles with their stations inside (farther is
#: extrapolation), and tiled inference gives a tile only the stations within reach.
STATION_DISTANCE_CAP_PX = 64.0


def std_log_terms(inputs, raw_std):
    """(B, 3, H, W, 2) logarithms of what the calibrated sigma is a power law of.

    Per pixel and component: the raw sigma (scale units) and 1 + the distance from the pixel
    centre to the nearest valid station [pixels, capped at :data:`STATION_DISTANCE_CAP_PX`,
    the cap where there is none].
    """
    b, _, h, w = raw_std.shape
    device = raw_std.device
    rows = torch.arange(h, device=device, dtype=torch.float32) + 0.5
    cols = torch.arange(w, device=device, dtype=torch.float32) + 0.5
    xy = inputs.gnss_xy.to(device=device, dtype=torch.float32)               # (B, S, 2), x right, y down
    dx = cols[None, None, None, :] - xy[..., 0, None, None]
    dy = rows[None, None, :, None] - xy[..., 1, None, None]
    distance = torch.sqrt(dx ** 2 + dy ** 2)                                   # (B, S, H, W)
    distance = torch.where(inputs.gnss_valid.to(device)[..., None, None], distance,
                           torch.full_like(distance, STATION_DISTANCE_CAP_PX))
    nearest = distance.amin(1).clamp_max(STATION_DISTANCE_CAP_PX)              # (B, H, W)
    return torch.stack([raw_std.float().log(), torch.log1p(nearest)[:, None].expand(b, 3, h, w)], -1)


def departure_from_gnss(model, inputs, mean):
    """|network field - the GNSS interpolation it corrects| (B, 3, H, W), scale units.

    What the network adds to its stations' interpolation (:meth:`.model.DualBranchNet.gnss_prior`):
    zero at a station, large between stations near a fault. A model that predicts the field
    itself (no ``residual_on_gnss_spline``) departs by its whole field.
    """
    if not model.config.residual_on_gnss_spline:
        return mean.abs()
    return (mean - model.gnss_prior(inputs, *mean.shape[-2:]).to(mean.dtype)).abs()


def calibrated_std(model, inputs, raw_std, mean=None):
    """The sigma inference reports (B, 3, H, W) in scale units, from the head's raw sigma.

    Per component ``sqrt((std_scale * raw^a * (1 + d)^b)^2 + (r * g)^2)`` with ``(a, b)``
    the model's ``std_exponents``, ``d`` the distance to the nearest station [pixels]
    (:func:`std_log_terms`), ``r`` its ``std_relative`` and ``g`` how far the network's
    field ``mean`` departs from its GNSS interpolation (:func:`departure_from_gnss`): a model
    of the variance fitted after training (:mod:`.calibrate`), which lets sigma grow away from
    the stations and where the network adds most to what they say, where the head alone does
    not. Exponents (1, 0) and ``r`` = 0: the plain factor of temperature scaling (models
    calibrated before them); without ``mean`` the last term is left out.
    """
    scale = model.std_scale[None, :, None, None]
    exponents = getattr(model, "std_exponents", None)
    if exponents is None or torch.equal(exponents.cpu(), IDENTITY_STD_EXPONENTS):
        sigma = scale * raw_std
    else:
        log_std = (std_log_terms(inputs, raw_std) * exponents[None, :, None, None, :]).sum(-1)
        sigma = scale * torch.exp(log_std).to(raw_std.dtype)
    relative = getattr(model, "std_relative", None)
    if mean is None or relative is None or not bool((relative > 0).any()):
        return sigma
    return torch.sqrt(sigma ** 2 + (relative[None, :, None, None] * departure_from_gnss(model, inputs, mean)) ** 2)


#: Cancelling inference raises the one :class:`.runtime.Cancelled`.
InferenceCancelled = Cancelled


def tile_starts(length: int, tile: int, overlap: int):
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap``."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step)) + [length - tile]
    return sorted(set(starts))


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """1-D weight: 1 inside, a linear ramp over ``overlap`` pixels at both ends (min 1e-3)."""
    ramp = np.ones(tile)
    overlap = min(overlap, tile // 2)
    if overlap > 0:
        edge = (np.arange(overlap) + 0.5) / overlap
        ramp[:overlap] = edge
        ramp[-overlap:] = edge[::-1]
    return np.maximum(ramp, 1e-3)


@torch.no_grad()
def predict_scene(model, insar_epochs_m, los, dem_m, gnss_m, gnss_xy_m, pixel_m,
                  tile_px: int = 128, overlap_px: int = 32, device="cpu",
                  progress: ProgressFn = None, is_canceled: CancelFn = None, with_std: bool = False,
                  views: int = VIEWS):
    """East/north/up [m] (3, H, W) float32 on the working grid.

    With ``with_std``: ``(mean, std)``, ``std`` (3, H, W) float32 the network's standard
    deviation [m] per component from its std head (blended across tiles like the mean), or
    None for a network without one. ``views``: :func:`predict_views`.

    Parameters (numpy, on the model's working grid of ``pixel_m``)
    ----------
    insar_epochs_m : (2, T, H, W) LOS [m] on the model epochs (asc, desc), NaN = no data.
    los : (2, 3, H, W) LOS unit vectors; dem_m : (H, W).
    gnss_m : (S, D, 3) daily E/N/U [m] with NaN gaps; gnss_xy_m : (S, 2) positions in the
        scene frame (origin at the grid's upper-left corner, x east, y north, metres).
    """
    tile_px = int(tile_px) - int(tile_px) % 4
    device = torch.device(device)
    h, w = insar_epochs_m.shape[-2:]
    th, tw = min(tile_px, _ceil4(h)), min(tile_px, _ceil4(w))
    # pad small scenes up to one tile (NaN InSAR = no data; LOS/DEM 0)
    ph, pw = max(h, th), max(w, tw)
    insar = _pad(insar_epochs_m, ph, pw, np.nan)
    los_p = _pad(los, ph, pw, 0.0)
    dem_p = _pad(dem_m, ph, pw, 0.0)

    gnss_t = torch.as_tensor(gnss_m, dtype=torch.float32)[None]
    valid_t = torch.ones(gnss_t.shape[:2], dtype=torch.bool)
    if gnss_t.shape[1] == 0:  # no station: one dummy, invalid
        gnss_t = torch.full((1, 1, gnss_m.shape[1] if gnss_m.ndim == 3 else 121, 3), float("nan"))
        valid_t = torch.zeros((1, 1), dtype=torch.bool)
        gnss_xy_m = np.zeros((1, 2))
    # reference every epoch once for the whole scene (a per-tile median would differ by tile)
    whole = remove_epoch_offsets(torch.as_tensor(insar, dtype=torch.float32)[None])
    scale = displacement_scale(whole, gnss_relative(gnss_t), valid_t)
    insar = whole[0].numpy()
    del whole

    has_std = with_std and getattr(model, "std_head", None) is not None
    out = np.zeros((6 if has_std else 3, ph, pw), dtype=np.float64)
    weight_sum = np.zeros((ph, pw), dtype=np.float64)
    rows, cols = tile_starts(ph, th, overlap_px), tile_starts(pw, tw, overlap_px)
    window = np.outer(blend_window(th, overlap_px if len(rows) > 1 else 0),
                      blend_window(tw, overlap_px if len(cols) > 1 else 0))
    done, total = 0, len(rows) * len(cols)
    xy = torch.as_tensor(gnss_xy_m, dtype=torch.float32)[None]
    col_px, row_px = xy[0, :, 0] / pixel_m, -xy[0, :, 1] / pixel_m
    reach = station_reach_px(model)
    prior = scene_prior(model, gnss_t, xy, valid_t, scale, pixel_m, ph, pw)
    for r in rows:
        for c in cols:
            if is_canceled is not None and is_canceled():
                raise InferenceCancelled("Inference cancelled.")
            tile = torch.as_tensor(insar[:, :, r:r + th, c:c + tw], dtype=torch.float32)[None]
            if torch.isfinite(tile).any():
                # stations within reach of the tile only: the cost stays per tile, not per network
                near = ((col_px > c - reach) & (col_px < c + tw + reach)
                        & (row_px > r - reach) & (row_px < r + th + reach))
                near = near & valid_t[0]
                if not bool(near.any()):
                    near = torch.ones_like(near)        # no station near: the (invalid) rest
                shifted = xy[:, near].clone()
                shifted[..., 0] -= c * pixel_m
                shifted[..., 1] += r * pixel_m
                inputs = network_inputs(tile, torch.as_tensor(los_p[:, :, r:r + th, c:c + tw])[None],
                                        torch.as_tensor(dem_p[r:r + th, c:c + tw])[None],
                                        gnss_t[:, near], shifted, valid_t[:, near], pixel_m,
                                        scale_m=scale, remove_offsets=False)
                if prior is not None:
                    inputs.prior = prior[:, :, r:r + th, c:c + tw]
                inputs = inputs.to(device)
                pred = predict_views(model, inputs, has_std, views)
                pred = torch.cat(pred, 1) if has_std else pred
                pred = pred * inputs.scale_m[:, None, None, None]
                out[:, r:r + th, c:c + tw] += pred[0].double().cpu().numpy() * window
                weight_sum[r:r + th, c:c + tw] += window
            done += 1
            report(progress, done / total, f"network: {done} of {total} tiles")
    with np.errstate(invalid="ignore", divide="ignore"):
        result = (out / weight_sum)[:, :h, :w].astype(np.float32)
    if with_std:
        return (result[:3], result[3:]) if has_std else (result, None)
    return result


def scene_prior(model, gnss_m, xy_m, valid, scale_m, pixel_m, height, width):
    """The GNSS prior (1, 3, H, W) in scale units on the whole padded grid, or None.

    None for networks that do not correct a prior or use the thin-plate spline of models
    before v2 (a plane through the tile's stations: it stays per tile, as they were trained).
    """
    cfg = model.config
    if not cfg.residual_on_gnss_spline or cfg.gnss_prior != "kriging":
        return None
    g = gnss_series_input(gnss_relative(gnss_m), valid, scale_m)
    net, net_var, has_net = station_net_displacement(g, valid)
    px = torch.stack([xy_m[..., 0] / pixel_m, -xy_m[..., 1] / pixel_m], -1)
    return kriging_tile(px.double(), net.double(), net_var.double(), has_net, height, width).float()


def _ceil4(n):
    return int(np.ceil(n / 4) * 4)


def _pad(array, height, width, value):
    h, w = array.shape[-2:]
    if (h, w) == (height, width):
        return array
    pad = [(0, 0)] * (array.ndim - 2) + [(0, height - h), (0, width - w)]
    return np.pad(array, pad, constant_values=value)
