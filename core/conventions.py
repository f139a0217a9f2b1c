"""Frames, signs and units used everywhere in ``insar_gnss_3d`` (written once, here).

Other modules point to this page instead of restating it.

Frame
    Local east-north-up (ENU), metres, right-handed: ``east`` = x, ``north`` = y,
    ``up`` = z. Depths are positive *down* (``depth_m = -up``).

Fault (Aki & Richards 2002, Box 4.4; Okada 1985, Fig. 1)
    ``strike_deg`` clockwise from north; the fault dips to the *right* of the strike
    direction; ``dip_deg`` in [0, 90] from horizontal; ``rake_deg`` is the slip direction of
    the hanging wall relative to the footwall, counter-clockwise from the strike direction in
    the fault plane: 0 left-lateral, 90 thrust (reverse), 180 right-lateral, -90 normal.
    Okada's dislocation components are ``U1 = slip cos(rake)`` (strike-slip),
    ``U2 = slip sin(rake)`` (dip-slip), ``U3 = opening`` (tensile, positive = opening).
    A fault is located by the centre of its top (up-dip) edge and the depth of that edge.

Radar line of sight (LiCSAR ``*.geo.E/N/U.tif``; MintPy ``utils0.enu2los`` with the
ground-to-satellite sign)
    The LOS unit vector ``(e, n, u)`` points from the ground to the satellite. LOS
    displacement is ``d_los = e*u_east + n*u_north + u*u_up``: positive = motion *towards*
    the satellite (range decrease).
    ``heading_deg``: azimuth of the satellite's flight direction, clockwise from north
    (Sentinel-1 ascending about -12 deg, i.e. 348; descending about -168 deg, i.e. 192).
    ``incidence_deg``: angle between the LOS and the local vertical at the ground.
    Sentinel-1 is right-looking, so the look direction (ground -> satellite projected to
    the horizontal points *away* from the look) has azimuth ``heading - 90 deg``:
    ``e = sin(inc) * sin(heading - 90) = -sin(inc) cos(heading)``,
    ``n = sin(inc) * cos(heading - 90) =  sin(inc) sin(heading)``, ``u = cos(inc)``.
    Ascending (heading -12, incidence 39): (-0.616, -0.131, 0.777).

Unwrapped phase (LiCSAR ``*.geo.unw.tif``)
    ``d_los = -WAVELENGTH_M / (4 pi) * phase_rad`` (phase increases with range).

Displacement rasters
    Three float32 bands ``east``, ``north``, ``up`` in metres, NoData = NaN.

Time
    Dates are ISO ``YYYY-MM-DD``; the model works on a window of ``GNSS_DAYS`` daily
    samples; the truth is the displacement from the first to the last day of the window.
"""

import math

#: Sentinel-1 C-band radar wavelength [m] (ESA Sentinel-1 User Handbook, 5.405 GHz).
WAVELENGTH_M = 0.05546

#: Length of the observation window in daily GNSS samples (Okada & Fukushima 2025).
GNSS_DAYS = 121

#: Band names of every 3-component raster, in band order.
ENU_BANDS = ("east", "north", "up")


def phase_to_los_m(phase_rad):
    """LOS displacement [m, + towards satellite] from unwrapped phase [rad]."""
    return -WAVELENGTH_M / (4.0 * math.pi) * phase_rad
