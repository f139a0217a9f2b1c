"""One InSAR track as one displacement map: series fit, noise, and referencing to GNSS.

:func:`reduce_series` fits ``los(t) = a + b f(t)`` per pixel (every epoch's atmosphere
averages out), :func:`track_noise_m` gives the track's noise from that fit (or from the far
field), :func:`fit_reference_ramp` ties the track's offset and ramp to the GNSS displacement
projected into its line of sight. Used by :mod:`.joint` (METHOD.md, "Trust").
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .time_function import _robust_sigma

#: Pixels per block of rows in the per-pixel solvers (bounded memory).
BLOCK_PIXELS = 1_000_000
#: Numerical floor of a noise figure [m] (a noise-free track would give a zero weight
#: denominator); far below any real InSAR or GNSS noise.
NOISE_FLOOR_M = 1e-6


# --------------------------------------------------------------------------- series -> b


def _block_rows(width, per_pixel=1):
    return max(1, BLOCK_PIXELS // max(1, int(width) * int(per_pixel)))


def reduce_series(series_m, epoch_days, time_function_at_epochs, *, min_epochs=3,
                  min_spread=0.5, remove_epoch_median=True):
    """One LOS displacement per pixel from a time series: the fit ``los(t) = a + b f(t)``.

    Per pixel, ordinary least squares over the epochs where it is valid::

        b = (n S_fy - S_f S_y) / (n S_ff - S_f^2),   a = (S_y - b S_f) / n

    with ``S_f = sum f``, ``S_ff = sum f^2``, ``S_y = sum los``, ``S_fy = sum f los`` over
    the ``n`` valid epochs, and the residual standard deviation
    ``sqrt(sum (los - a - b f)^2 / (n - 2))``. For a step in the middle of ``n`` epochs the
    standard deviation of ``b`` is ``2 sigma / sqrt(n)``, against ``sqrt(2) sigma`` for the
    last-minus-first difference: noise down by ``sqrt(n / 2)`` (METHOD.md, "Trust").

    Parameters
    ----------
    series_m : array_like, (T, H, W)
        LOS displacement [m, + towards the satellite] per epoch; NaN = no data. Each epoch
        may carry its own constant offset (see ``remove_epoch_median``).
    epoch_days : array_like, (T,)
        Day of each epoch (any axis), non-decreasing; only checked here (the time function
        already holds the timing).
    time_function_at_epochs : array_like, (T,)
        ``f`` at each epoch (:func:`event_time_function` interpolated, or
        :func:`step_time_function`).
    min_epochs : int
        Fewest valid epochs (>= 3: two parameters and one degree of freedom).
    min_spread : float
        The valid epochs' ``f`` must span at least this much (``max f - min f``): a pixel
        needs epochs on both sides of the event.
    remove_epoch_median : bool
        Subtract each epoch's spatial median first (default). The per-epoch reference
        offsets of a time series (each epoch referenced to its own area) would otherwise
        enter ``b`` differently in pixels with different valid epochs and inflate the
        residual; what the median removes from the signal is one constant in ``b``, which
        :func:`fit_reference_ramp` restores.

    Returns
    -------
    displacement_m : numpy.ndarray, (H, W) float64
        ``b`` [m]; NaN where the pixel has too few or badly placed epochs.
    residual_std_m : numpy.ndarray, (H, W) float64
        Residual standard deviation of one epoch [m]; NaN where ``b`` is NaN.
    """
    y_all = np.asarray(series_m)
    f = np.asarray(time_function_at_epochs, dtype=np.float64)
    days = np.asarray(epoch_days, dtype=np.float64)
    if y_all.ndim != 3:
        raise ValueError(f"series_m must be (epochs, rows, columns), got shape {y_all.shape}.")
    t, h, w = y_all.shape
    if f.shape != (t,) or days.shape != (t,):
        raise ValueError(f"epoch_days and time_function_at_epochs need one value per epoch "
                         f"({t}), got {days.shape} and {f.shape}.")
    if np.any(np.diff(days) < 0):
        raise ValueError("epoch_days must be in time order.")
    if not np.isfinite(f).all():
        raise ValueError("time_function_at_epochs holds NaN; evaluate it at every epoch.")
    if int(min_epochs) < 3:
        raise ValueError(f"min_epochs must be >= 3 (two unknowns and a residual), got {min_epochs}.")
    offsets = np.zeros(t)
    if remove_epoch_median:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            offsets = np.array([np.nanmedian(y_all[k]) for k in range(t)], dtype=np.float64)
        offsets = np.where(np.isfinite(offsets), offsets, 0.0)
    b_out = np.full((h, w), np.nan)
    s_out = np.full((h, w), np.nan)
    fc = f[:, None, None]
    for r in range(0, h, _block_rows(w, t)):
        y = y_all[:, r:r + _block_rows(w, t)].astype(np.float64) - offsets[:, None, None]
        m = np.isfinite(y)
        y = np.where(m, y, 0.0)
        mf = m * fc
        n = m.sum(0)
        sf = mf.sum(0)
        sff = (mf * fc).sum(0)
        sy = y.sum(0)
        sfy = (y * fc).sum(0)
        det = n * sff - sf ** 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fmax = np.where(m, fc, -np.inf).max(0)
            fmin = np.where(m, fc, np.inf).min(0)
            ok = (n >= min_epochs) & (fmax - fmin >= min_spread) & (det > 0)
            safe = np.where(ok, det, 1.0)
            b = (n * sfy - sf * sy) / safe
            a = (sy - b * sf) / np.where(n > 0, n, 1)
            res = np.where(m, y - a - b * fc, 0.0)
            std = np.sqrt((res ** 2).sum(0) / np.maximum(n - 2, 1))
        rows = slice(r, r + b.shape[0])
        b_out[rows] = np.where(ok, b, np.nan)
        s_out[rows] = np.where(ok, std, np.nan)
    return b_out, s_out


def track_noise_m(residual_std_m=None, time_function_at_epochs=None, *, displacement_m=None,
                  far_mask=None):
    """One noise figure [m] for a track's displacement, estimated from the data.

    Two estimates, the first preferred:

    * from the time-series fit (:func:`reduce_series`): the median over pixels of the
      residual standard deviation of one epoch, ``sigma``, times the formal factor of the
      fitted step, ``sqrt(n / (n S_ff - S_f^2))`` over the ``n`` epochs of
      ``time_function_at_epochs`` (least-squares standard error of ``b``, e.g. Menke 2012,
      ch. 3). Pass both arguments.
    * from the scene (two epochs, no series): the robust scatter ``1.4826 MAD`` of the
      displacement where ``far_mask`` is True (far from the deformation). Pass
      ``displacement_m`` and ``far_mask``.

    Parameters
    ----------
    residual_std_m : array_like, optional
        Per-pixel residual standard deviation of the fit [m] (NaN ignored).
    time_function_at_epochs : array_like (T,), optional
        ``f`` at every epoch of the fit.
    displacement_m : array_like, optional
        One displacement map [m].
    far_mask : array_like of bool, optional
        Pixels far from the deformation (same shape as ``displacement_m``).

    Returns
    -------
    float
        Noise [m], at least :data:`NOISE_FLOOR_M` (a numerical floor only).

    Notes
    -----
    The atmosphere is correlated in space over kilometres to tens of kilometres
    (turbulence, stratification, ramps), so this per-pixel figure is the scatter of a pixel,
    not of a mean over many: it is the right weight for one pixel's observation in
    :func:`joint_enu`. A time function that does not match the pixel's history (a second
    event, afterslip elsewhere) raises the residual and so the noise: the track is then
    trusted less, which is the honest answer.
    """
    if residual_std_m is not None:
        if time_function_at_epochs is None:
            raise ValueError("track_noise_m: give time_function_at_epochs with residual_std_m.")
        s = np.asarray(residual_std_m, dtype=np.float64)
        s = s[np.isfinite(s)]
        if s.size == 0:
            raise ValueError("track_noise_m: the residual map holds no valid pixel.")
        f = np.asarray(time_function_at_epochs, dtype=np.float64)
        n = f.size
        det = n * float(np.sum(f ** 2)) - float(np.sum(f)) ** 2
        if not det > 0:
            raise ValueError("track_noise_m: the time function is constant over the epochs; "
                             "the displacement is not estimable.")
        return max(float(np.median(s)) * math.sqrt(n / det), NOISE_FLOOR_M)
    if displacement_m is None or far_mask is None:
        raise ValueError("track_noise_m: give residual_std_m and time_function_at_epochs, or "
                         "displacement_m and far_mask.")
    d = np.asarray(displacement_m, dtype=np.float64)
    far = np.asarray(far_mask, dtype=bool) & np.isfinite(d)
    if far.sum() < 10:
        raise ValueError(f"track_noise_m: only {int(far.sum())} valid pixels far from the "
                         f"deformation; at least 10 are needed for a scatter.")
    return max(float(_robust_sigma(d[far], axis=None)), NOISE_FLOOR_M)


# --------------------------------------------------------------------------- reference


def sample_bilinear(field_m, rows, cols):
    """Bilinear value of (..., H, W) at fractional pixel coordinates -> (..., S).

    Pixel ``(r, c)`` covers ``[r, r + 1) x [c, c + 1)``, its centre at ``(r + 0.5, c + 0.5)``;
    NaN when a needed neighbour is NaN or the point is off the grid.
    """
    h, w = field_m.shape[-2:]
    v = np.asarray(rows, dtype=np.float64) - 0.5
    u = np.asarray(cols, dtype=np.float64) - 0.5
    inside = np.isfinite(u) & np.isfinite(v) & (u >= -0.5) & (u < w - 0.5) & (v >= -0.5) & (v < h - 0.5)
    u = np.clip(np.nan_to_num(u), 0.0, w - 1.0)
    v = np.clip(np.nan_to_num(v), 0.0, h - 1.0)
    c0 = np.minimum(np.floor(u).astype(int), max(w - 2, 0))
    r0 = np.minimum(np.floor(v).astype(int), max(h - 2, 0))
    c1, r1 = np.minimum(c0 + 1, w - 1), np.minimum(r0 + 1, h - 1)
    fu, fv = u - c0, v - r0
    out = ((1 - fv) * ((1 - fu) * field_m[..., r0, c0] + fu * field_m[..., r0, c1])
           + fv * ((1 - fu) * field_m[..., r1, c0] + fu * field_m[..., r1, c1]))
    return np.where(inside, out, np.nan)


def _window_values(field_m, rows, cols, window_px):
    """Values of (..., H, W) at stations -> (..., S).

    Bilinear at the station, else (next to gaps and edges) the NaN-median of a
    ``(2 window_px + 1)^2`` window around its pixel.
    """
    h, w = field_m.shape[-2:]
    out = sample_bilinear(field_m, rows, cols)
    for s, (r, c) in enumerate(zip(rows, cols)):
        if np.isfinite(out[..., s]).all() or not (np.isfinite(r) and np.isfinite(c)):
            continue
        ri, ci = int(math.floor(r)), int(math.floor(c))
        if not (0 <= ri < h and 0 <= ci < w):
            continue
        patch = field_m[..., max(0, ri - window_px):ri + window_px + 1,
                        max(0, ci - window_px):ci + window_px + 1]
        patch = patch.reshape(patch.shape[:-2] + (-1,))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[..., s] = np.nanmedian(patch, axis=-1)
    return out


def fit_reference_ramp(los_m, unit, gnss_enu_m, station_rows, station_cols, pixel_m, ramp=True,
                       *, window_px=1, min_spread_fraction=0.15, gnss_sigma_m=None, insar_noise_m=0.0):
    """Reference offset (and linear ramp) that make a track agree with GNSS at the stations.

    At each station, the LOS displacement (bilinear at the station; next to gaps the
    NaN-median in a ``2 window_px + 1`` pixel square around its pixel) minus the GNSS
    displacement projected on the LOS (``l . d``, the unit vector sampled the same way) is a
    sample of the track's reference error. These samples
    are fitted, by least squares, with ::

        c0 + c_x x + c_y y        (>= 4 stations with data and ramp=True)
        c0                        (1-3 stations, or stations too close to a line)

    in the scene frame (x east, y north [m], origin at the grid's upper-left corner), and the
    fitted surface is subtracted from the whole map. With ``gnss_sigma_m`` the fit is weighted
    by ``1 / (sum_c l_c^2 sigma_c^2 + insar_noise_m^2)``, the variance of each sample. With 5
    or more stations, samples more
    than 3 robust standard deviations from the fit (a station in a steep near-field gradient
    or on an unwrapping error) are dropped and the fit repeated once. Without any station on
    valid pixels, the map's median is subtracted (a reference area = the whole scene) and the
    note says so. This is MintPy's GNSS referencing (Yunjun et al. 2019) with a planar ramp,
    as in the GNSS-constrained InSAR of Wang & Wright (2012).

    Parameters
    ----------
    los_m : array_like, (H, W)
        LOS displacement [m, + towards the satellite], NaN = no data.
    unit : array_like, (3, H, W) or (3,)
        LOS unit vector (ground -> satellite).
    gnss_enu_m : array_like, (S, 3)
        GNSS displacement [m] at the stations over the same interval; NaN = missing.
    station_rows, station_cols : array_like, (S,)
        Station positions in fractional pixel coordinates: pixel ``(r, c)`` covers
        ``[r, r + 1) x [c, c + 1)`` (so ``row = -y / pixel_m``, ``col = x / pixel_m``; integer
        pixel indices work too). Stations outside the grid are skipped.
    pixel_m : float
        Pixel size [m].
    ramp : bool
        Allow the planar ramp.
    window_px : int
        Half-size of the fallback sampling window [pixels] (stations next to NaN pixels).
    min_spread_fraction : float
        The ramp needs stations spread in two directions: the smaller principal standard
        deviation of their positions must reach this fraction of the scene's smaller side,
        else only the offset is fitted (a plane fitted to stations on a line, or in one
        corner, would be extrapolated across the scene).
    gnss_sigma_m : array_like (S, 3), optional
        Standard error of the GNSS displacements [m] (:func:`gnss_net_sigma`); NaN = the
        largest known. Default: equal weights.
    insar_noise_m : float
        The track's noise [m] (:func:`track_noise_m`), added to each sample's variance.

    Returns
    -------
    corrected_m : numpy.ndarray, (H, W)
        ``los_m`` minus the fitted surface.
    coefficients : dict
        ``method`` ("offset+ramp", "offset" or "median"), ``offset_m`` (``c0``: the
        correction at the upper-left corner), ``ramp_east_m_per_m``, ``ramp_north_m_per_m``
        (0 without ramp), ``stations_used`` (count), ``station_residual_m`` (S list: sample
        minus fitted surface after the correction, NaN for stations not used), ``note``.
    """
    los = np.asarray(los_m, dtype=np.float64)
    h, w = los.shape
    u = np.asarray(unit, dtype=np.float64)
    if u.shape == (3,):
        u = np.broadcast_to(u[:, None, None], (3, h, w))
    if u.shape != (3, h, w):
        raise ValueError(f"unit must be (3,) or (3, {h}, {w}), got {u.shape}.")
    g = np.asarray(gnss_enu_m, dtype=np.float64).reshape(-1, 3)
    rows = np.asarray(station_rows, dtype=np.float64).ravel()
    cols = np.asarray(station_cols, dtype=np.float64).ravel()
    if not (len(rows) == len(cols) == len(g)):
        raise ValueError(f"station_rows, station_cols and gnss_enu_m need one entry per station, "
                         f"got {len(rows)}, {len(cols)} and {len(g)}.")
    insar = _window_values(los, rows, cols, int(window_px))
    l_s = _window_values(u, rows, cols, int(window_px)).T if len(g) else np.zeros((0, 3))
    sample = insar - np.sum(l_s * g, axis=1) if len(g) else np.zeros(0)
    use = np.isfinite(sample)
    x = cols * pixel_m                       # fractional pixel coordinates -> scene frame [m]
    y = -rows * pixel_m
    result = {"method": "median", "offset_m": 0.0, "ramp_east_m_per_m": 0.0,
              "ramp_north_m_per_m": 0.0, "stations_used": 0,
              "station_residual_m": [float("nan")] * len(g), "note": ""}
    if not use.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median = float(np.nanmedian(los))
        median = median if math.isfinite(median) else 0.0
        result.update(offset_m=median, note="no GNSS station on valid InSAR pixels: the scene's "
                                            "median was removed instead of a GNSS reference")
        return los - median, result

    if gnss_sigma_m is not None and len(g):
        sig = np.asarray(gnss_sigma_m, dtype=np.float64).reshape(-1, 3)
        sig = np.where(np.isfinite(sig), sig, np.nanmax(sig) if np.isfinite(sig).any() else 0.0)
        var = np.sum(np.nan_to_num(l_s) ** 2 * sig ** 2, axis=1) + float(insar_noise_m) ** 2
        root_w = 1.0 / np.sqrt(np.where(var > 0, var, np.inf)) if np.any(var > 0) else np.ones(len(g))
        root_w = np.where(np.isfinite(root_w) & (root_w > 0), root_w, np.nanmax(root_w))
    else:
        root_w = np.ones(len(g))

    def design(idx, with_ramp):
        cols_ = [np.ones(idx.sum())]
        if with_ramp:
            cols_ += [x[idx], y[idx]]
        return np.column_stack(cols_)

    def solve(idx, with_ramp):
        wt = root_w[idx][:, None]
        return np.linalg.lstsq(design(idx, with_ramp) * wt, sample[idx] * wt[:, 0], rcond=None)[0]

    with_ramp = bool(ramp) and use.sum() >= 4
    note = ""
    if with_ramp:
        pts = np.column_stack([x[use], y[use]])
        spread = np.linalg.svd(pts - pts.mean(0), compute_uv=False)[-1] / math.sqrt(use.sum())
        if spread < float(min_spread_fraction) * min(h, w) * pixel_m:
            with_ramp = False
            note = (f"stations too close to a line ({spread / 1e3:.1f} km spread across it): "
                    f"offset only, no ramp")
    elif ramp:
        note = f"{int(use.sum())} station(s) on valid InSAR pixels: offset only, no ramp"
    coef = solve(use, with_ramp)
    if use.sum() >= 5:
        resid = sample[use] - design(use, with_ramp) @ coef
        scale = float(_robust_sigma(resid, axis=None))
        keep = np.abs(resid) <= 3.0 * scale if scale > 0 else np.ones_like(resid, dtype=bool)
        if (~keep).any() and keep.sum() >= (4 if with_ramp else 1):
            use_idx = np.flatnonzero(use)
            use = np.zeros_like(use)
            use[use_idx[keep]] = True
            coef = solve(use, with_ramp)
    c0 = float(coef[0])
    cx, cy = (float(coef[1]), float(coef[2])) if with_ramp else (0.0, 0.0)
    xx = (np.arange(w) + 0.5) * pixel_m
    yy = -(np.arange(h) + 0.5) * pixel_m
    surface = c0 + cx * xx[None, :] + cy * yy[:, None]
    residual = np.where(use, sample - (c0 + cx * x + cy * y), np.nan)
    result.update(method="offset+ramp" if with_ramp else "offset", offset_m=c0,
                  ramp_east_m_per_m=cx, ramp_north_m_per_m=cy, stations_used=int(use.sum()),
                  station_residual_m=[float(v) for v in residual], note=note)
    return los - surface, result
