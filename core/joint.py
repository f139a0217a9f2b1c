"""Joint InSAR + GNSS least-squares estimate of east/north/up displacement (classical peer).

What a careful geodesist does with an ascending and a descending InSAR time series and a
GNSS network, in four steps (METHOD.md, "Trust"):

1. **Event time function** from GNSS (:func:`event_time_function`), or a step at a known
   date (:func:`step_time_function`): ``f(t)`` = 0 before the event, 1 after.
2. **One displacement per pixel and track** (:func:`reduce_series`): the fit
   ``los(t) = a + b f(t)`` over every epoch, so that each epoch's atmosphere averages out
   instead of two epochs being differenced; its residual gives the track's noise
   (:func:`track_noise_m`).
3. **Reference offset and ramp against GNSS** (:func:`fit_reference_ramp`): an InSAR track
   is relative to an arbitrary reference and carries orbital ramps; the GNSS displacement
   projected into the line of sight at the stations fixes both; the station residuals give
   the fitted surface's own uncertainty (:func:`reference_noise_m`), added to the noise.
4. **Per-pixel weighted least squares** (:func:`joint_enu`) of the tracks' LOS
   displacements and a 3-D prior (the bounded GNSS interpolation of
   :func:`.gnss_prior.kriging_prior`, or a network's output) with its standard deviation,
   after Wang & Wright (2012) and SISTEM (Guglielmino et al. 2011); the posterior standard
   deviation comes with it; :func:`prior_scale` can widen a prior that the tracks
   contradict. :func:`los_residual_rms` says how well a 3-D field explains a track.

:func:`estimate_scene` chains the four steps for one scene (the ``joint`` peer of the
benchmark and ``insargnss3d:combineinsargnss``). Frames and signs: :mod:`.conventions`;
positions in the scene frame: origin at the grid's upper-left corner, x east, y north [m],
pixel ``(r, c)`` centred on ``((c + 0.5) pixel_m, -(r + 0.5) pixel_m)``.

References
----------
.. [1] Wang, H., & Wright, T. J. (2012). Satellite geodetic imaging reveals internal
   deformation of western Tibet. Geophysical Research Letters, 39, L07303.
   doi:10.1029/2012GL051222
.. [2] Guglielmino, F., Nunnari, G., Puglisi, G., & Spata, A. (2011). Simultaneous and
   integrated strain tensor estimation from geodetic and satellite deformation
   measurements to obtain three-dimensional displacement maps. IEEE Transactions on
   Geoscience and Remote Sensing, 49(6), 1815-1826. doi:10.1109/TGRS.2010.2103078
.. [3] Hu, J., Li, Z. W., Ding, X. L., Zhu, J. J., Zhang, L., & Sun, Q. (2014). Resolving
   three-dimensional surface displacements from InSAR measurements: a review.
   Earth-Science Reviews, 133, 1-17. doi:10.1016/j.earscirev.2014.02.005
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np

#: Pixels per block of rows in the per-pixel solvers (bounded memory).
BLOCK_PIXELS = 1_000_000
#: Days at each end of the GNSS window whose median gives a station's start / end level
#: (as :func:`.baselines.gnss_net_displacement`).
END_DAYS = 7
#: A station "moves" when its net displacement exceeds this many standard errors of white
#: daily noise (first pass of :func:`event_time_function`) ...
MIN_SNR = 5.0
#: ... and this many once random-walk noise is counted (second pass).
MIN_SNR_WALK = 3.0
#: Numerical floor of a noise figure [m] (a noise-free track would give a zero weight
#: denominator); far below any real InSAR or GNSS noise.
NOISE_FLOOR_M = 1e-6


# --------------------------------------------------------------------------- time function


def step_time_function(days, event_day):
    """The time function of a sudden event: 0 before ``event_day``, 1 on and after it.

    Parameters
    ----------
    days : array_like
        Days on any axis (e.g. days from the window start).
    event_day : float
        Day of the event on the same axis. An acquisition on the event day counts as after
        it (the usual case for an earthquake at night before a morning acquisition is
        ambiguous; give the day after to be safe).

    Returns
    -------
    numpy.ndarray
        float64, same shape as ``days``.
    """
    return (np.asarray(days, dtype=np.float64) >= float(event_day)).astype(np.float64)


def _robust_sigma(x, axis):
    """1.4826 x median absolute deviation along ``axis`` (NaN-aware)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(x, axis=axis, keepdims=True)
        return 1.4826 * np.nanmedian(np.abs(x - med), axis=axis)


def _end_levels(gnss_enu_m, end_days=END_DAYS):
    """(start, end) medians of the first / last ``end_days`` days, each (S, 3), NaN-aware."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        start = np.nanmedian(gnss_enu_m[:, :end_days], axis=1)
        end = np.nanmedian(gnss_enu_m[:, -end_days:], axis=1)
    return start, end


def gnss_net_sigma(gnss_enu_m, end_days=END_DAYS, time_function=None, lags_days=(1, 2, 4, 8)):
    """Standard error [m] of each station's net displacement from its own series, (S, 3).

    The series is modelled as white noise (standard deviation ``sigma``) plus a random walk
    (``q`` per sqrt(day)) on top of the event (Williams 2003; METHOD.md's GNSS noise), whose
    differences ``L`` days apart have the variance ``V_L = 2 sigma^2 + L q^2``. ``V_L`` is
    the squared robust scatter (``1.4826 MAD``) of the differences at each lag in
    ``lags_days`` (a step spoils only a few of them), and a least-squares line through
    ``(L, V_L)`` gives ``q^2`` (slope, >= 0) and ``2 sigma^2`` (intercept). With
    ``time_function`` the event (net displacement x ``f``) is removed first, so a slow slip
    does not pass for random walk (without it, lags longer than a slow slip's duration see
    the slip as noise). Short lags keep the estimate stable; on 121-day series with
    2-6 mm white noise and 1 mm / sqrt(day) random walk it is 10-30 % above the true
    scatter of the net displacement (conservative), see the tests. The net displacement is the difference of two medians
    of ``end_days`` days whose centres lie ``D - end_days`` days apart, so its variance is
    ``2 sigma^2 (pi / 2) / end_days + q^2 (D - end_days)`` (``pi / 2``: the median's
    efficiency for Gaussian noise).

    Parameters
    ----------
    gnss_enu_m : array_like, (S, D, 3)
        Daily east/north/up [m], NaN gaps.
    end_days : int
        Days in each end window.
    time_function : array_like (D,), optional
        The event's time function (:func:`event_time_function`).
    lags_days : sequence of int
        Lags of the structure function; ``(1,)`` = white noise only (``q = 0``).

    Returns
    -------
    numpy.ndarray, (S, 3)
        NaN where a station has fewer than 3 differences at a lag.

    References
    ----------
    .. [1] Williams, S. D. P. (2003). The effect of coloured noise on the uncertainties of
       rates estimated from geodetic time series. Journal of Geodesy, 76, 483-494.
       doi:10.1007/s00190-002-0283-4
    """
    enu = np.asarray(gnss_enu_m, dtype=np.float64)
    d = enu.shape[1]
    if time_function is not None:
        start, end = _end_levels(enu, end_days)
        f = np.asarray(time_function, dtype=np.float64)
        enu = enu - (end - start)[:, None, :] * f[None, :, None]
    lags = sorted({int(lag) for lag in lags_days if 1 <= int(lag) <= max(1, d // 3)}) or [1]
    var, enough = [], np.ones(enu.shape[::2], dtype=bool)
    for lag in lags:
        diff = enu[:, lag:] - enu[:, :-lag]
        var.append(_robust_sigma(diff, axis=1) ** 2)
        enough &= np.isfinite(diff).sum(axis=1) >= 3
    var = np.stack(var)                                        # (L, S, 3)
    if len(lags) > 1:
        x = np.asarray(lags, dtype=np.float64)[:, None, None]
        xm = x.mean()
        vm = var.mean(0)
        q2 = np.clip(((x - xm) * (var - vm)).sum(0) / ((x - xm) ** 2).sum(), 0.0, None)
        s2 = np.clip((vm - q2 * xm) / 2.0, 0.0, None)
    else:
        q2 = np.zeros_like(var[0])
        s2 = var[0] / 2.0
    total = 2.0 * s2 * (math.pi / 2.0) / end_days + q2 * max(d - end_days, 0)
    return np.where(enough, np.sqrt(total), np.nan)


def _isotonic(y, w):
    """Non-decreasing least-squares fit of ``y`` with weights ``w`` (pool adjacent violators)."""
    values, weights, counts = [], [], []
    for yi, wi in zip(y, w):
        values.append(float(yi))
        weights.append(float(wi))
        counts.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            wsum = weights[-2] + weights[-1]
            merged = (values[-2] * weights[-2] + values[-1] * weights[-1]) / wsum
            values[-2:] = [merged]
            weights[-2:] = [wsum]
            counts[-2:] = [counts[-2] + counts[-1]]
    return np.repeat(values, counts)


def event_time_function(gnss_days, gnss_enu_m, min_fraction=0.3, *, min_snr=MIN_SNR,
                        min_snr_walk=MIN_SNR_WALK, end_days=END_DAYS):
    """The event's time function ``f(t)`` (0 before, 1 after) from the GNSS network.

    Each station's series minus its start level (median of the first ``end_days`` days) is
    projected on its own net-displacement direction (end level minus start level) and divided
    by the net displacement's length, giving a curve that runs from about 0 to about 1. The
    curves of the stations that move most -- net displacement at least ``min_snr`` standard
    errors of white daily noise (:func:`gnss_net_sigma` with lag 1) and at least
    ``min_fraction`` of the largest -- are
    averaged day by day, each weighted by its net displacement (larger motion, relatively
    smaller daily scatter), over the stations that have a solution that day (NaN gaps are
    skipped; days without any solution are interpolated linearly). The average is rescaled
    to 0 at the start and 1 at the end (end-window medians), made non-decreasing by a
    weighted isotonic fit (pool adjacent violators; weights = number of stations that day),
    and clipped to [0, 1]. A second pass repeats the selection with the standard errors
    that include random walk, measured around that first curve, and ``min_snr_walk``.

    Parameters
    ----------
    gnss_days : array_like, (D,)
        Day of each daily sample (e.g. days from the window start), increasing.
    gnss_enu_m : array_like, (S, D, 3)
        Daily east/north/up [m] with any constant offset per station; NaN = no solution.
    min_fraction : float
        Stations whose net displacement is below this fraction of the largest are left
        out: their curves carry relatively more noise and, far from the fault, the same
        shape anyway.
    min_snr : float
        Least ratio of net displacement to its white-noise standard error for a station to
        count as moving (first pass).
    min_snr_walk : float
        The same with random walk counted (second pass).
    end_days : int
        Days at each end of the window that define the start and end levels.

    Returns
    -------
    numpy.ndarray (D,) or None
        ``f`` on the ``gnss_days`` axis; None when no station moves significantly (the
        caller then needs the event date, :func:`step_time_function`, or falls back to its
        own choice and says so).

    Notes
    -----
    Why one shared time function: a megathrust event (an earthquake step, or a slow slip of
    days to weeks) moves every station with the same time history, scaled; fitting that
    shape to every InSAR pixel (:func:`reduce_series`) averages the atmosphere of every
    epoch (METHOD.md, "Trust"). Slip with a space-varying history (afterslip spreading
    away) breaks this assumption; its residual shows in :func:`track_noise_m`. The
    isotonic fit assumes monotone motion (true for one event: slip does not undo itself);
    it removes daily scatter without smoothing a step. The projection on the station's own
    direction avoids the sign cancellation of summing components that point different ways.
    """
    days = np.asarray(gnss_days, dtype=np.float64)
    enu = np.asarray(gnss_enu_m, dtype=np.float64)
    if enu.ndim != 3 or enu.shape[2] != 3 or enu.shape[1] != days.size:
        raise ValueError(f"gnss_enu_m must be (stations, days, 3) with one day per gnss_days "
                         f"entry ({days.size}), got {enu.shape}.")
    if not 0.0 <= float(min_fraction) <= 1.0:
        raise ValueError(f"min_fraction must lie in [0, 1], got {min_fraction}.")
    if days.size < 2 * end_days or enu.shape[0] == 0:
        return None
    start, end = _end_levels(enu, end_days)
    net = end - start
    length = np.sqrt(np.sum(net ** 2, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        direction = net / length[:, None]
    # pass 1: white scatter only (a slow slip would pass for random walk); pass 2: the
    # noise of the series around the first time function, random walk included
    sigma = gnss_net_sigma(enu, end_days, lags_days=(1,))
    f = None
    for threshold in (min_snr, min_snr_walk):
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = length / np.sqrt(np.sum((direction * sigma) ** 2, axis=1))
        moving = ~np.isnan(snr) & (snr >= threshold)          # noise-free: inf
        if not moving.any():
            return None
        moving &= length >= float(min_fraction) * np.nanmax(np.where(moving, length, np.nan))
        f = _network_curve(days, enu[moving] - start[moving, None, :], direction[moving],
                           length[moving], end_days)
        if f is None:
            return None
        sigma = gnss_net_sigma(enu, end_days, time_function=f)
    return f


def _network_curve(days, series, direction, length, end_days):
    """Weighted mean of the stations' normalised projected curves, rescaled and isotonic."""
    curves = np.einsum("sdc,sc->sd", series, direction) / length[:, None]
    weight = np.where(np.isfinite(curves), length[:, None], 0.0)
    count = np.isfinite(curves).sum(axis=0)
    total = weight.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(np.where(np.isfinite(curves), curves, 0.0) * weight, axis=0) / total
    have = total > 0
    if have.sum() < 2:
        return None
    mean = np.interp(days, days[have], mean[have])
    f0 = float(np.median(mean[:end_days]))
    f1 = float(np.median(mean[-end_days:]))
    if not f1 - f0 > 0:
        return None
    f = _isotonic((mean - f0) / (f1 - f0), np.maximum(count, 1))
    return np.clip(f, 0.0, 1.0)


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


# --------------------------------------------------------------------------- joint solve


def _as_field(value, shape, what):
    a = np.asarray(value, dtype=np.float64)
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"{what}: shape {a.shape} does not fit {shape}.") from None


def _unit_field(unit, h, w, what):
    u = np.asarray(unit, dtype=np.float64)
    if u.shape == (3,):
        return np.broadcast_to(u[:, None, None], (3, h, w))
    if u.shape != (3, h, w):
        raise ValueError(f"{what}: the LOS unit vector must be (3,) or (3, {h}, {w}), got {u.shape}.")
    return u


def joint_enu(los_list, unit_list, noise_m_list, prior_m, prior_sigma_m):
    """Per-pixel weighted least squares of east/north/up from LOS tracks and a 3-D prior.

    Minimises, for every pixel, over ``d = (east, north, up)``::

        sum_k (l_k . d - b_k)^2 / s_k^2  +  sum_c (d_c - p_c)^2 / sp_c^2

    (Wang & Wright 2012, eq. 1 with a GNSS-derived prior; Guglielmino et al. 2011, SISTEM,
    without the strain term; Hu et al. 2014, sec. 4). With ``N = sum_k l_k l_k^T / s_k^2 +
    diag(1 / sp^2)`` and ``r = sum_k l_k b_k / s_k^2 + p / sp^2`` the estimate is
    ``N^-1 r`` and its posterior covariance ``N^-1`` (Gaussian errors, Tarantola 2005,
    eq. 3.37): the standard deviations are ``sqrt(diag N^-1)``. A track that is NaN in a
    pixel drops out of that pixel's sums; a pixel without any track returns the prior. The
    3 x 3 systems are solved in batches of rows (``numpy.linalg.inv`` on (N, 3, 3)).

    Parameters
    ----------
    los_list : sequence of (H, W) array_like
        Each track's LOS displacement [m, + towards the satellite], referenced
        (:func:`fit_reference_ramp`).
    unit_list : sequence of (3, H, W) or (3,) array_like
        Each track's LOS unit vector (ground -> satellite).
    noise_m_list : sequence of float or (H, W) array_like
        Each track's noise standard deviation [m] (:func:`track_noise_m`), > 0.
    prior_m : array_like, (3, H, W)
        Prior east/north/up [m] (e.g. :func:`.gnss_prior.kriging_prior`'s mean).
    prior_sigma_m : array_like, (3, H, W) or (3,)
        Prior standard deviation [m], > 0; ``inf`` = no prior on that component (the pixel is
        NaN when the tracks alone cannot resolve it).

    Returns
    -------
    estimate_m : numpy.ndarray, (3, H, W) float64
    std_m : numpy.ndarray, (3, H, W) float64
        Posterior standard deviation [m]. NaN where the system is singular or the prior NaN.
    """
    if not (len(los_list) == len(unit_list) == len(noise_m_list)):
        raise ValueError(f"los_list, unit_list and noise_m_list need one entry per track, got "
                         f"{len(los_list)}, {len(unit_list)} and {len(noise_m_list)}.")
    prior = np.asarray(prior_m, dtype=np.float64)
    if prior.ndim != 3 or prior.shape[0] != 3:
        raise ValueError(f"prior_m must be (3, H, W), got {prior.shape}.")
    _, h, w = prior.shape
    sp = np.asarray(prior_sigma_m, dtype=np.float64)
    if sp.shape == (3,):
        sp = sp[:, None, None]
    sp = _as_field(sp, (3, h, w), "prior_sigma_m")
    if np.any(sp <= 0):
        raise ValueError("prior_sigma_m must be > 0 (use inf for no prior).")
    tracks = []
    for k, (los, unit, noise) in enumerate(zip(los_list, unit_list, noise_m_list)):
        los = _as_field(los, (h, w), f"track {k}")
        noise = _as_field(noise, (h, w), f"noise of track {k}")
        if np.any(noise <= 0):
            raise ValueError(f"track {k}: the noise must be > 0 [m].")
        tracks.append((los, _unit_field(unit, h, w, f"track {k}"), noise))
    est = np.full((3, h, w), np.nan)
    std = np.full((3, h, w), np.nan)
    step = _block_rows(w, 12)
    for r in range(0, h, step):
        rows = slice(r, min(h, r + step))
        n_pix = (rows.stop - rows.start) * w
        with np.errstate(divide="ignore"):
            wp = 1.0 / sp[:, rows].reshape(3, n_pix) ** 2          # inf sigma -> 0 weight
        p = prior[:, rows].reshape(3, n_pix)
        normal = np.zeros((n_pix, 3, 3))
        idx = np.arange(3)
        normal[:, idx, idx] = wp.T
        rhs = np.where(wp > 0, wp * p, 0.0).T.copy()
        for los, unit, noise in tracks:
            b = los[rows].reshape(n_pix)
            l_ = unit[:, rows].reshape(3, n_pix).T
            ok = np.isfinite(b) & np.isfinite(l_).all(1) & np.isfinite(noise[rows].reshape(n_pix))
            wt = np.where(ok, 1.0 / noise[rows].reshape(n_pix) ** 2, 0.0)
            l_ = np.where(ok[:, None], l_, 0.0)
            normal += wt[:, None, None] * l_[:, :, None] * l_[:, None, :]
            rhs += (wt * np.where(ok, b, 0.0))[:, None] * l_
        good = np.isfinite(normal).all((1, 2)) & np.isfinite(rhs).all(1)
        # scale-free singularity test: determinant against the product of the diagonal
        diag = np.prod(np.where(good[:, None], normal[:, idx, idx], 1.0), axis=1)
        det = np.linalg.det(np.where(good[:, None, None], normal, np.eye(3)))
        good &= (diag > 0) & (det > 1e-10 * diag)
        out_e = np.full((n_pix, 3), np.nan)
        out_s = np.full((n_pix, 3), np.nan)
        if good.any():
            inv = np.linalg.inv(normal[good])
            out_e[good] = np.einsum("nij,nj->ni", inv, rhs[good])
            out_s[good] = np.sqrt(np.maximum(inv[:, idx, idx], 0.0))
        est[:, rows] = out_e.T.reshape(3, -1, w)
        std[:, rows] = out_s.T.reshape(3, -1, w)
    return est, std


def los_residual_rms(estimate_m, los_m, unit):
    """RMS [m] of a track's LOS minus a 3-D field projected on it, after the best constant.

    ``r = los - l . d`` over the pixels where both are finite; returns ``std(r)`` (the
    RMS after removing the mean, which is the least-squares constant): the track's
    arbitrary reference does not count. NaN when no pixel is finite.

    Parameters
    ----------
    estimate_m : array_like, (3, H, W)
        East/north/up [m].
    los_m : array_like, (H, W)
        The track's LOS displacement [m, + towards the satellite].
    unit : array_like, (3, H, W) or (3,)
        The track's LOS unit vector (ground -> satellite).
    """
    est = np.asarray(estimate_m, dtype=np.float64)
    los = np.asarray(los_m, dtype=np.float64)
    u = _unit_field(unit, *los.shape, "los_residual_rms")
    r = los - np.sum(u * est, axis=0)
    r = r[np.isfinite(r)]
    return float(np.std(r)) if r.size else float("nan")


# --------------------------------------------------------------------------- one scene


@dataclass
class JointResult:
    """What :func:`estimate_scene` returns.

    ``estimate_m`` and ``std_m`` (3, H, W) east/north/up and posterior standard deviation
    [m]; ``prior_m`` and ``prior_std_m`` the GNSS prior used; ``quality`` a JSON-ready dict
    (time function, per track: noise, reference fit, LOS residual RMS; per station: the
    residual of the estimate); ``notes`` what the user should know.
    """

    estimate_m: np.ndarray
    std_m: np.ndarray
    prior_m: np.ndarray
    prior_std_m: np.ndarray
    quality: dict
    notes: List[str] = field(default_factory=list)


def dead_zone_observation(los_m, unit, noise_m, prior_m, width: float):
    """A track's LOS with the prior's misfit shrunk by ``width`` noise units (a dead zone).

    ``l . p + soft(b - l . p, width s)``, ``soft(r, t) = sign(r) max(|r| - t, 0)``: fed to
    :func:`joint_enu` in place of ``b``, it makes the estimate follow the prior wherever the
    prior explains the track within ``width`` times its noise ``s``, and pulls it along the
    look direction by the excess elsewhere. The loss on the track is then the
    epsilon-insensitive quadratic of support-vector regression (Vapnik 1995, The Nature of
    Statistical Learning Theory, Springer, ch. 6): a prior that already fits its data is not
    made noisier by them, and one that misses them by metres cannot stay wrong.

    Parameters
    ----------
    los_m : (H, W) array_like
        The track's LOS displacement [m]; NaN = no data.
    unit : (3, H, W) or (3,) array_like
        Its LOS unit vector.
    noise_m : float or (H, W) array_like
        Its noise [m].
    prior_m : (3, H, W) array_like
        The prior east/north/up [m].
    width : float
        Half-width of the dead zone in noise units (>= 0).
    """
    b = np.asarray(los_m, dtype=np.float64)
    h, w = b.shape
    predicted = np.sum(_unit_field(unit, h, w, "dead_zone_observation") * np.asarray(prior_m, dtype=np.float64), 0)
    r = b - predicted
    t = float(width) * np.asarray(noise_m, dtype=np.float64)
    return predicted + np.sign(r) * np.maximum(np.abs(r) - t, 0.0)


def prior_scale(los_list, unit_list, noise_m_list, prior_m, prior_sigma_m, trim=0.995):
    """Factor (>= 1) on the prior's standard deviation that makes it consistent with the tracks.

    A variance-component estimate (Helmert; Koch 1999, sec. 3.6) of one scale ``k`` for the
    prior covariance: with ``r = b - l . p`` the misfit of each track's LOS to the prior and
    its predicted variance ``v = sum_c l_c^2 sp_c^2 + s^2``, ``k^2`` is the mean of ``r^2 / v``
    over every valid pixel of every track (the largest ``1 - trim`` of the ratios are left
    out: unwrapping errors) after removing each track's mean misfit. Only inflation is
    applied (``max(1, k)``): an interpolant's standard deviation is a model's guess, the
    tracks' residual is measured, and a prior that misses the data by more than both
    uncertainties allow (a fault's near field between stations) must not dominate them.

    Parameters
    ----------
    los_list, unit_list, noise_m_list
        As :func:`joint_enu`.
    prior_m, prior_sigma_m : (3, H, W) array_like
        The prior and its standard deviation [m].
    trim : float
        Quantile of the ratios kept.

    Returns
    -------
    float
        The factor; 1 when no pixel is usable.

    References
    ----------
    .. [1] Koch, K.-R. (1999). Parameter Estimation and Hypothesis Testing in Linear
       Models (2nd ed.). Springer. doi:10.1007/978-3-662-03976-2
    """
    prior = np.asarray(prior_m, dtype=np.float64)
    sp = np.asarray(prior_sigma_m, dtype=np.float64)
    sp = np.broadcast_to(sp[:, None, None] if sp.shape == (3,) else sp, prior.shape)
    h, w = prior.shape[1:]
    ratios = []
    for los, unit, noise in zip(los_list, unit_list, noise_m_list):
        u = _unit_field(unit, h, w, "prior_scale")
        r = np.asarray(los, dtype=np.float64) - np.sum(u * prior, axis=0)
        v = np.sum(u ** 2 * sp ** 2, axis=0) + np.asarray(noise, dtype=np.float64) ** 2
        ok = np.isfinite(r) & np.isfinite(v) & (v > 0)
        if ok.sum() < 10:
            continue
        r = r[ok] - np.mean(r[ok])
        ratios.append(r ** 2 / v[ok])
    if not ratios:
        return 1.0
    ratios = np.concatenate(ratios)
    ratios = ratios[ratios <= np.quantile(ratios, trim)]
    return max(1.0, math.sqrt(float(np.mean(ratios))))


def reference_noise_m(coefficients):
    """Standard error [m] of a track's fitted reference surface (:func:`fit_reference_ramp`).

    The station residuals of the fit measure how well GNSS and the track agree at
    independent points; with ``n`` stations and ``p`` fitted coefficients (3 with the
    ramp, 1 for the offset) the mean square residual ``sum r^2 / (n - p)`` estimates one
    sample's variance, and the fitted surface carries ``p / n`` of it on average over the
    stations (the mean leverage, e.g. Menke 2012, ch. 3): ``sqrt(p sum r^2 / (n (n - p)))``.
    The track's noise for :func:`joint_enu` is this and the series noise
    (:func:`track_noise_m`) added in quadrature. 0 when ``n <= p`` (an exact fit says
    nothing about its error) or without stations.
    """
    res = np.asarray(coefficients.get("station_residual_m", []), dtype=np.float64)
    res = res[np.isfinite(res)]
    p = {"offset+ramp": 3, "offset": 1}.get(coefficients.get("method"), 0)
    if p == 0 or res.size <= p:
        return 0.0
    return math.sqrt(p * float(np.sum(res ** 2)) / (res.size * (res.size - p)))


def _fill_sigma(net_sigma, net):
    """Station sigmas with gaps filled (a station with too few days to measure its scatter).

    The gap takes the largest known sigma of that component, else 1 % of the largest |net|.
    """
    out = np.array(net_sigma, dtype=np.float64)
    for c in range(out.shape[1]):
        col = out[:, c]
        known = np.isfinite(col)
        if known.all():
            continue
        if known.any():
            fill = col[known].max()
        else:
            fill = 0.01 * float(np.nanmax(np.abs(net))) if np.isfinite(net).any() else 1.0
        col[~known] = max(fill, NOISE_FLOOR_M)
    return out


def estimate_scene(series_list: Sequence, epoch_days_list: Sequence, unit_list: Sequence,
                   gnss_enu_m, gnss_xy_m, pixel_m: float, *, gnss_days=None, event_day=None,
                   net_m=None, prior=None, ramp=True, length_m=None, station_names=None,
                   fallback_linear=False, dead_zone: float = 0.0,
                   scale_prior: bool = True) -> JointResult:
    """The joint peer on one scene: time function, series fits, references, prior, solve.

    Parameters
    ----------
    series_list : sequence of (T_k, H, W) array_like or None
        Each track's LOS series [m, + towards the satellite] (cumulative, any per-epoch
        offset); None for a missing track.
    epoch_days_list : sequence of (T_k,) array_like or None
        Each track's epoch days on the GNSS day axis.
    unit_list : sequence of (3, H, W) or (3,) array_like or None
        LOS unit vectors.
    gnss_enu_m : array_like, (S, D, 3)
        Daily east/north/up [m] on days ``gnss_days`` (NaN gaps).
    gnss_xy_m : array_like, (S, 2)
        Station positions in the scene frame [m] (x east from the left edge, y north from
        the top edge, so y <= 0 inside).
    pixel_m : float
        Pixel size [m].
    gnss_days : array_like (D,), optional
        Day axis of the GNSS series (default ``0 .. D - 1``).
    event_day : float, optional
        A step at this day replaces the GNSS time function.
    net_m : array_like (S, 3), optional
        The stations' net displacement [m] over the window; default the median of the last
        :data:`END_DAYS` days minus the first (:func:`.baselines.gnss_net_displacement`).
    prior : tuple (mean (3, H, W), std (3, H, W)), optional
        The 3-D prior; default: :func:`.gnss_prior.kriging_prior` of the stations' net
        displacements (median of the last :data:`END_DAYS` days minus the first) with their
        standard errors (:func:`gnss_net_sigma`).
    ramp : bool
        Allow the planar ramp in :func:`fit_reference_ramp`.
    length_m : float, optional
        Correlation length of the kriging prior (default: its own choice).
    station_names : sequence of str, optional
        Names used in ``quality``.
    scale_prior : bool
        Widen the prior's standard deviation by :func:`prior_scale` (default). The GNSS
        peer turns it off: with the kriging prior, on 30 benchmark scenes (seed 0, > 10 mm)
        the median mSSIM E/N/U was 0.464/0.532/0.575 with it and 0.494/0.532/0.605 without
        (the kriging's standard deviation already grows away from the stations, and the
        misfit that drives the factor holds spatially correlated atmosphere).
    fallback_linear : bool
        When no station moves significantly and no ``event_day`` is given, use a linear
        time function (the least-squares trend over the window) instead of raising
        ``ValueError`` (the benchmark does; an algorithm asks for the event date).

    Returns
    -------
    JointResult
    """
    gnss = np.asarray(gnss_enu_m, dtype=np.float64)
    xy = np.asarray(gnss_xy_m, dtype=np.float64).reshape(-1, 2)
    d = gnss.shape[1]
    days = np.arange(d, dtype=np.float64) if gnss_days is None else np.asarray(gnss_days, dtype=np.float64)
    shape = next(np.shape(s)[1:] for s in series_list if s is not None)
    h, w = shape
    notes: List[str] = []
    if event_day is not None:
        f_days = step_time_function(days, event_day)
        how = f"step at day {float(event_day):g}"
    else:
        f_days = event_time_function(days, gnss) if gnss.shape[0] else None
        how = "from the GNSS network"
        if f_days is None:
            if not fallback_linear:
                raise ValueError("No GNSS station moves significantly over the window, so the "
                                 "event's timing cannot be taken from GNSS; give the event date.")
            f_days = (days - days[0]) / max(days[-1] - days[0], 1.0)
            how = "linear in time (no GNSS station moves significantly)"
            notes.append("time function: " + how)
    start, end = _end_levels(gnss) if gnss.shape[0] else (np.zeros((0, 3)), np.zeros((0, 3)))
    net = end - start if net_m is None else np.asarray(net_m, dtype=np.float64).reshape(-1, 3)
    net_sigma = gnss_net_sigma(gnss, time_function=f_days) if gnss.shape[0] else np.zeros((0, 3))
    rows_s = -xy[:, 1] / pixel_m
    cols_s = xy[:, 0] / pixel_m
    names = list(station_names) if station_names is not None else [f"S{i}" for i in range(len(xy))]
    if prior is None:
        from .gnss_prior import kriging_prior
        grid_x = (np.arange(w) + 0.5) * pixel_m
        grid_y = -(np.arange(h) + 0.5) * pixel_m
        ok = np.isfinite(net).all(1) & np.isfinite(xy).all(1)
        sig = _fill_sigma(net_sigma, net)
        prior_m, prior_std = kriging_prior(xy[ok], net[ok], sig[ok], grid_x, grid_y, length_m=length_m)
    else:
        prior_m, prior_std = prior
    prior_m = np.asarray(prior_m, dtype=np.float64)
    prior_std = np.asarray(prior_std, dtype=np.float64)
    los_used, unit_used, noise_used, track_q = [], [], [], []
    for k, (series, e_days, unit) in enumerate(zip(series_list, epoch_days_list, unit_list)):
        name = ("ascending", "descending")[k] if len(series_list) == 2 else f"track {k}"
        if series is None or not np.isfinite(np.asarray(series)).any():
            track_q.append({"track": name, "used": False})
            notes.append(f"no {name} data")
            continue
        e_days = np.asarray(e_days, dtype=np.float64)
        f_ep = np.interp(e_days, days, f_days)
        b, resid = reduce_series(series, e_days, f_ep)
        if not np.isfinite(b).any():
            track_q.append({"track": name, "used": False})
            notes.append(f"{name}: no pixel has epochs on both sides of the event")
            continue
        noise = track_noise_m(resid, f_ep)
        # unweighted: per-station sigmas from 121 days are themselves noisy, and weights
        # drawn from them made the offset/ramp worse on synthetic scenes
        corrected, coef = fit_reference_ramp(b, unit, net, rows_s, cols_s, pixel_m, ramp=ramp)
        if coef["note"]:
            notes.append(f"{name}: {coef['note']}")
        series_noise = noise
        reference_noise = reference_noise_m(coef)
        noise = math.hypot(series_noise, reference_noise)
        los_used.append(corrected)
        unit_used.append(unit)
        noise_used.append(noise)
        track_q.append({"track": name, "used": True, "epochs": int(len(e_days)),
                        "noise_m": noise, "series_noise_m": series_noise,
                        "reference_noise_m": reference_noise,
                        "median_epoch_residual_m": float(np.nanmedian(resid)),
                        "reference": {k2: v for k2, v in coef.items() if k2 != "station_residual_m"},
                        "_los": corrected, "_unit": unit})
    if dead_zone > 0:
        los_used = [dead_zone_observation(b, u, n, prior_m, dead_zone)
                    for b, u, n in zip(los_used, unit_used, noise_used)]
    scale = prior_scale(los_used, unit_used, noise_used, prior_m, prior_std) if scale_prior else 1.0
    if scale > 1.0:
        notes.append(f"prior standard deviation scaled by {scale:.2f} (the tracks disagree with "
                     f"the prior more than both uncertainties allow)")
    estimate, std = joint_enu(los_used, unit_used, noise_used, prior_m, prior_std * scale)
    for q in track_q:
        if q.get("used"):
            q["los_residual_rms_m"] = los_residual_rms(estimate, q.pop("_los"), q.pop("_unit"))
    at = _window_values(estimate, rows_s, cols_s, 0).T if len(xy) else np.zeros((0, 3))
    stations = [{"station": names[i], "x_m": float(xy[i, 0]), "y_m": float(xy[i, 1]),
                 "gnss_m": [float(v) for v in net[i]], "sigma_m": [float(v) for v in net_sigma[i]],
                 "residual_m": [float(v) for v in at[i] - net[i]]} for i in range(len(xy))]
    quality = {"time_function": how, "prior_std_scale": scale,
               "time_function_days": [float(v) for v in days],
               "time_function_values": [float(v) for v in f_days],
               "tracks": track_q, "stations": stations}
    return JointResult(estimate, std, prior_m, prior_std, quality, notes)
