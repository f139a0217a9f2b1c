"""The classical peers of the CNN: asc/desc LOS decomposition and GNSS interpolation.

A user without the CNN would (1) decompose ascending and descending LOS displacement into
east and up, neglecting north (MintPy ``asc_desc2horz_vert``, LiCSBAS ``decomposeLOS``), or
(2) interpolate the net displacement of GNSS stations onto a grid. Sign and angle
conventions are in :mod:`.conventions`.
"""

from __future__ import annotations

import warnings

import numpy as np

#: Below this |determinant| the asc/desc 2 x 2 system is treated as singular (NaN). The
#: determinant is ``e_a u_d - e_d u_a`` of unit vectors, so it lies in [-1, 1]; Sentinel-1
#: asc/desc pairs give about -0.96.
MIN_DETERMINANT = 1e-3

#: Interpolation methods of :func:`interpolate_gnss`.
INTERPOLATION_METHODS = ("thin_plate", "linear", "nearest")


def decompose_asc_desc(los_asc_m, los_desc_m, unit_asc, unit_desc, min_determinant=MIN_DETERMINANT):
    """East and up displacement from ascending and descending LOS, north neglected.

    Solves, pixel by pixel, ::

        [e_a  u_a] [east]   [d_asc ]
        [e_d  u_d] [up  ] = [d_desc]

    where ``(e, n, u)`` is each track's LOS unit vector (ground -> satellite) and ``d`` its
    LOS displacement (positive towards the satellite), i.e. ``d = e east + n north + u up``
    with ``north = 0`` (:mod:`.conventions`). This is MintPy's ``asc_desc2horz_vert`` with
    ``horz_az_angle = -90`` (horizontal direction = east), whose design-matrix row is
    ``[sin(inc) cos(az + 90), cos(inc)] = [e, u]`` (Yunjun et al. 2019; Wright et al.
    2004), but solved exactly per pixel with each pixel's own geometry instead of MintPy's
    median geometry of 20 x 20 pixel windows.

    Parameters
    ----------
    los_asc_m, los_desc_m : array_like
        LOS displacement of each track [m, + towards the satellite], same shape; NaN = no
        data.
    unit_asc, unit_desc : tuple of 3 array_like
        ``(east, north, up)`` components of each track's LOS unit vector, scalars or arrays
        broadcastable to the displacement's shape. The north component is not used.
    min_determinant : float
        Pixels with ``|e_a u_d - e_d u_a| < min_determinant`` (two look directions that
        cannot separate east from up) are NaN.

    Returns
    -------
    east_m, up_m : numpy.ndarray
        East and up displacement [m], float64; NaN where either track is NaN or the system
        is singular.

    Notes
    -----
    Any north motion leaks into the result: with the north components ``n_a``, ``n_d``,
    ``east_est = east + north (n_a u_d - n_d u_a) / det`` and ``up_est = up + north (e_a n_d
    - e_d n_a) / det``. For Sentinel-1 (heading -12 / -168 deg, incidence 39 deg) the east
    leak vanishes by symmetry and ``up_est = up - 0.17 north``. A constant offset between
    the tracks' references also maps into east and up.

    References
    ----------
    .. [1] Yunjun, Z., Fattahi, H., & Amelung, F. (2019). Small baseline InSAR time series
       analysis: unwrapping error correction and noise reduction. Computers & Geosciences,
       133, 104331. doi:10.1016/j.cageo.2019.104331 (MintPy, ``asc_desc2horz_vert.py``)
    .. [2] Wright, T. J., Parsons, B. E., & Lu, Z. (2004). Toward mapping surface
       deformation in three dimensions using InSAR. Geophysical Research Letters, 31,
       L01607. doi:10.1029/2003GL018827
    """
    d_a = np.asarray(los_asc_m, dtype=np.float64)
    d_d = np.asarray(los_desc_m, dtype=np.float64)
    if d_a.shape != d_d.shape:
        raise ValueError(f"The ascending and descending LOS displacement must have the same "
                         f"shape, got {d_a.shape} and {d_d.shape}.")
    if len(unit_asc) != 3 or len(unit_desc) != 3:
        raise ValueError("unit_asc and unit_desc must each be (east, north, up) components.")
    e_a, _, u_a = (np.asarray(c, dtype=np.float64) for c in unit_asc)
    e_d, _, u_d = (np.asarray(c, dtype=np.float64) for c in unit_desc)
    det = e_a * u_d - e_d * u_a
    singular = ~(np.abs(det) >= min_determinant)  # also catches NaN geometry
    safe = np.where(singular, 1.0, det)
    with np.errstate(invalid="ignore"):
        east = (d_a * u_d - d_d * u_a) / safe
        up = (e_a * d_d - e_d * d_a) / safe
    east = np.where(singular, np.nan, east)
    up = np.where(singular, np.nan, up)
    shape = np.broadcast_shapes(d_a.shape, np.shape(det))
    return np.broadcast_to(east, shape).copy(), np.broadcast_to(up, shape).copy()


def gnss_net_displacement(series, end_days=7, min_days=3):
    """Net displacement of each station over the window: median of the last days minus the first.

    Parameters
    ----------
    series : GnssSeries
        Daily E/N/U positions [m] (:class:`.gnss_io.GnssSeries`), NaN on days without a
        solution.
    end_days : int
        Length [days] of the averaging window at each end of the series.
    min_days : int
        Fewest daily solutions required inside each end window; a station-component with
        fewer is NaN.

    Returns
    -------
    numpy.ndarray, shape (S, 3)
        East, north, up displacement [m] from the start to the end of the window; NaN where
        an end window holds fewer than ``min_days`` solutions.

    Notes
    -----
    Why medians of the end windows: (1) they remove the arbitrary constant offset of each
    series; (2) white noise shrinks with the number of days: with the ~2.3 mm horizontal /
    6.8 mm vertical daily scatter of METHOD.md and 7 days, the difference of two medians
    has about sqrt(2 (pi / 2) / 7) sigma = 1.5 mm / 4.6 mm standard deviation; (3) the median ignores
    outlier days and gaps (NaN days are skipped). A model fit (linear trend + step) would
    need a step epoch and a transient shape that slow slip does not have. The price: motion
    in the last (first) ``end_days / 2`` days is partly missed (a step less than
    ``end_days / 2`` days before the end is missed entirely); shorten ``end_days`` for
    events at the window's ends. Random-walk noise is not reduced by averaging.
    """
    end_days = int(end_days)
    min_days = int(min_days)
    if end_days < 1 or min_days < 1 or min_days > end_days:
        raise ValueError(f"Need 1 <= min_days <= end_days, got min_days={min_days}, "
                         f"end_days={end_days}.")
    enu = np.asarray(series.enu_m, dtype=np.float64)
    days = enu.shape[1]
    if days < 2 * end_days:
        raise ValueError(f"The series span {days} days, fewer than two end windows of "
                         f"{end_days} days; use a smaller end_days.")
    first = enu[:, :end_days, :]
    last = enu[:, days - end_days:, :]
    out = np.full((enu.shape[0], 3), np.nan)
    enough = ((np.isfinite(first).sum(axis=1) >= min_days)
              & (np.isfinite(last).sum(axis=1) >= min_days))
    if enough.any():
        with warnings.catch_warnings():  # 'All-NaN slice': those entries stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            diff = np.nanmedian(last, axis=1) - np.nanmedian(first, axis=1)
        out[enough] = diff[enough]
    return out


def interpolate_gnss(x, y, values, grid_x, grid_y, method="thin_plate"):
    """Interpolate station values (e.g. net E/N/U displacement) onto grid points.

    Parameters
    ----------
    x, y : array_like, shape (S,)
        Station coordinates in a projected CRS [m] (the grid's CRS).
    values : array_like, shape (S,) or (S, K)
        Values per station, e.g. (S, 3) east/north/up [m]; NaN = missing for that station and
        component (left out of that component's interpolation).
    grid_x, grid_y : array_like, same shape G (e.g. (H, W) pixel centres)
        Where to evaluate, same CRS.
    method : {"thin_plate", "linear", "nearest"}
        ``thin_plate`` (default): the 2-D biharmonic (thin-plate) spline through the
        stations, ``scipy.interpolate.RBFInterpolator(kernel="thin_plate_spline",
        degree=1)``; it is the minimum-curvature surface (Sandwell 1987) used for GNSS
        displacement maps (Sandwell & Wessel 2016 generalise it with elastic coupling).
        Smooth everywhere; beyond the network it continues the fitted plane.
        ``linear``: Delaunay-linear inside the stations' convex hull, nearest station
        outside it. ``nearest``: the nearest station's value (Voronoi cells).

    Returns
    -------
    numpy.ndarray, shape G or (K,) + G
        Interpolated values [unit of ``values``], float64.

    Notes
    -----
    The spline interpolates exactly (no smoothing): GNSS net displacements over weeks have
    mm-level errors, well below the signal this is meant for. Coordinates are centred and
    scaled internally (the thin-plate spline with a degree-1 polynomial is unchanged by
    that, but conditioning improves). A 20-30 km network resolves only wavelengths longer
    than about twice the spacing: the near field of a shallow fault is not recovered, which
    is what the CNN with InSAR is for. ``thin_plate`` and ``linear`` need at least 3
    stations not on one line.

    References
    ----------
    .. [1] Sandwell, D. T. (1987). Biharmonic spline interpolation of GEOS-3 and SEASAT
       altimeter data. Geophysical Research Letters, 14(2), 139-142.
       doi:10.1029/GL014i002p00139
    .. [2] Sandwell, D. T., & Wessel, P. (2016). Interpolation of 2-D vector data using
       constraints from elasticity. Geophysical Research Letters, 43, 10703-10709.
       doi:10.1002/2016GL070340
    """
    from scipy.interpolate import (LinearNDInterpolator, NearestNDInterpolator,
                                   RBFInterpolator)

    if method not in INTERPOLATION_METHODS:
        raise ValueError(f"Unknown interpolation method {method!r}; choose one of "
                         f"{', '.join(INTERPOLATION_METHODS)}.")
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64)
    single = values.ndim == 1
    values = values.reshape(len(values), -1)
    if x.shape != y.shape or values.shape[0] != x.size:
        raise ValueError(f"x, y and values must hold one entry per station, got {x.size}, "
                         f"{y.size} and {values.shape[0]}.")
    grid_x = np.asarray(grid_x, dtype=np.float64)
    grid_y = np.asarray(grid_y, dtype=np.float64)
    if grid_x.shape != grid_y.shape:
        raise ValueError("grid_x and grid_y must have the same shape.")
    located = np.isfinite(x) & np.isfinite(y)
    # centre and scale for conditioning
    cx, cy = (float(np.mean(x[located])), float(np.mean(y[located]))) if located.any() else (0.0, 0.0)
    scale = float(max(np.ptp(x[located]), np.ptp(y[located]))) if located.sum() > 1 else 1.0
    scale = scale if scale > 0 else 1.0
    stations = np.column_stack([(x - cx) / scale, (y - cy) / scale])
    targets = np.column_stack([(grid_x.ravel() - cx) / scale, (grid_y.ravel() - cy) / scale])
    out = np.empty((values.shape[1], targets.shape[0]))
    for k in range(values.shape[1]):
        ok = located & np.isfinite(values[:, k])
        n = int(ok.sum())
        need = 1 if method == "nearest" else 3
        if n < need:
            raise ValueError(f"Component {k}: {n} station(s) with a value; the {method} "
                             f"interpolation needs at least {need}.")
        pts, vals = stations[ok], values[ok, k]
        try:
            if method == "thin_plate":
                out[k] = RBFInterpolator(pts, vals, kernel="thin_plate_spline", degree=1)(targets)
            elif method == "linear":
                lin = LinearNDInterpolator(pts, vals)(targets)
                outside = ~np.isfinite(lin)
                if outside.any():
                    lin[outside] = NearestNDInterpolator(pts, vals)(targets[outside])
                out[k] = lin
            else:
                out[k] = NearestNDInterpolator(pts, vals)(targets)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ValueError(f"Component {k}: the {n} stations cannot carry a {method} "
                             f"interpolation (duplicate positions or all on one line?): {exc}") from exc
        except Exception as exc:  # scipy.spatial.QhullError (no common base before scipy 1.11)
            if type(exc).__name__ == "QhullError":
                raise ValueError(f"Component {k}: the {n} stations are all on one line or "
                                 f"coincide; {method} interpolation needs a 2-D network.") from exc
            raise
    out = out.reshape((values.shape[1],) + grid_x.shape)
    return out[0] if single else out
