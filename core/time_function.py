"""The event's time function from a GNSS network, and the stations' net displacement errors.

``f(t)`` is 0 before the event and 1 after it: a step at a known date
(:func:`step_time_function`) or the normalised net motion of the stations that move most
(:func:`event_time_function`). :func:`gnss_net_sigma` gives each station's net-displacement
standard error from its daily scatter (white noise and random walk). Used by :mod:`.joint`
(METHOD.md, "Trust").
"""

from __future__ import annotations

import math
import warnings

import numpy as np

#: Days at each end of the GNSS window whose median gives a station's start / end level
#: (as :func:`.baselines.gnss_net_displacement`).
END_DAYS = 7
#: A station "moves" when its net displacement exceeds this many standard errors of white
#: daily noise (first pass of :func:`event_time_function`) ...
MIN_SNR = 5.0
#: ... and this many once random-walk noise is counted (second pass).
MIN_SNR_WALK = 3.0


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
