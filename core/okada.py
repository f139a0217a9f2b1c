"""Surface displacement of a rectangular dislocation in an elastic half-space.

Okada, Y. (1985). Surface deformation due to shear and tensile faults in a half-space.
Bull. Seismol. Soc. Am. 75(4), 1135-1154. Equations (25)-(30) with the Chinnery
notation (24); singular cases after Okada, Y. (1992), BSSA 82(2), 1018-1040, section 4.

Frames, signs and the fault parameterisation are those of :mod:`.conventions`. Arrays in,
arrays out: numpy in -> numpy out, torch in -> torch out on the same device and dtype.

Singular points
    * Points on the surface trace of a surface-breaking fault (``q = 0`` inside the
      trace): the displacement is discontinuous there; the value returned is the mean of
      the two sides (Okada 1992 sets ``atan(xi*eta/(q*R)) = 0`` at ``q = 0``), finite.
    * ``R + eta = 0`` (points on the down-dip prolongation of an edge, Okada 1992 eq. 4.1
      remarks): ``1/(R+eta) = 0`` and ``ln(R+eta) = -ln(R-eta)``, as in DC3D.
    * An exactly vertical fault (``cos(dip) < COS_DIP_EPS``) uses the closed forms of
      Okada (1985) eq. (29) instead of eq. (28); dip 90 is never changed to 89.99.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence, Union

import numpy as np

#: Below this |cos(dip)| the vertical-fault forms of Okada (1985) eq. (29) are used
#: (the same threshold as DC3D's EPS, Okada 1992).
COS_DIP_EPS = 1e-6


@dataclass(frozen=True)
class Fault:
    """A rectangular fault (dislocation) in an elastic half-space.

    Parameters (all keyword; conventions in :mod:`.conventions`)
    ----------
    east, north : float
        Centre of the fault's top (up-dip) edge in the local frame [m].
    depth : float
        Depth of the top edge [m], positive down, >= 0.
    strike : float
        [deg] clockwise from north; the fault dips to the right.
    dip : float
        [deg] in [0, 90].
    length, width : float
        Along-strike length and down-dip width [m], > 0.
    rake : float
        [deg] Aki-Richards slip direction (90 = thrust).
    slip : float
        Shear slip [m] (hanging wall relative to footwall).
    opening : float
        Tensile opening [m], positive = opening.
    """

    east: float
    north: float
    depth: float
    strike: float
    dip: float
    length: float
    width: float
    rake: float
    slip: float
    opening: float = 0.0

    def __post_init__(self):
        for name in ("east", "north", "depth", "strike", "dip", "length", "width", "rake",
                     "slip", "opening"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"Fault {name} must be a finite number, got {value!r}.")
        if self.depth < 0:
            raise ValueError(f"Fault top depth must be >= 0 m (positive down), got {self.depth} m.")
        if not 0.0 <= self.dip <= 90.0:
            raise ValueError(f"Fault dip must lie in [0, 90] degrees, got {self.dip}.")
        if self.length <= 0 or self.width <= 0:
            raise ValueError(
                f"Fault length and width must be > 0 m, got {self.length} m and {self.width} m.")

    @property
    def bottom_depth(self) -> float:
        """Depth of the bottom edge [m]: ``depth + width * sin(dip)``."""
        return self.depth + self.width * math.sin(math.radians(self.dip))

    @property
    def moment_magnitude(self) -> float:
        """Mw for rigidity 30 GPa: ``(log10(mu*L*W*slip) - 9.1) / 1.5`` (Hanks & Kanamori 1979)."""
        moment = 30e9 * self.length * self.width * abs(self.slip)
        return (math.log10(moment) - 9.1) / 1.5 if moment > 0 else float("-inf")

    def scaled(self, factor: float) -> "Fault":
        """The same fault with slip and opening multiplied by ``factor``."""
        return replace(self, slip=self.slip * factor, opening=self.opening * factor)

    def surface_corners(self):
        """(east, north) [m] of the four corners projected to the surface.

        Order: top-start, top-end, bottom-end, bottom-start (a closed ring without repeat).
        """
        s, d = math.radians(self.strike), math.radians(self.dip)
        along = (math.sin(s), math.cos(s))              # unit vector along strike
        down = (math.cos(s), -math.sin(s))              # horizontal, to the right = dip direction
        half = self.length / 2
        horizontal_width = self.width * math.cos(d)
        top0 = (self.east - half * along[0], self.north - half * along[1])
        top1 = (self.east + half * along[0], self.north + half * along[1])
        shift = (horizontal_width * down[0], horizontal_width * down[1])
        return [top0, top1, (top1[0] + shift[0], top1[1] + shift[1]),
                (top0[0] + shift[0], top0[1] + shift[1])]


class _Ops:
    """The handful of elementwise functions the kernel needs, for numpy or torch."""

    def __init__(self, like):
        if isinstance(like, np.ndarray):
            self.atan, self.log, self.sqrt, self.where = np.arctan, np.log, np.sqrt, np.where
            self.zeros_like = np.zeros_like
        else:
            import torch
            self.atan, self.log, self.sqrt, self.where = torch.atan, torch.log, torch.sqrt, torch.where
            self.zeros_like = torch.zeros_like


def _corner(ops, xi, eta, q, sin_d, cos_d, u1, u2, u3, mu_ratio):
    """Okada (1985) eq. (25)-(27) at one corner (xi, eta), before the 1/(2 pi) factor.

    Returns the (ux, uy, uz) contributions in the fault frame (x along strike, y to the
    left of strike, z up). ``mu_ratio`` is mu/(lambda+mu) = 1 - 2 nu.
    """
    where, atan, log, sqrt = ops.where, ops.atan, ops.log, ops.sqrt
    r = sqrt(xi * xi + eta * eta + q * q)
    y_t = eta * cos_d + q * sin_d                  # y-tilde
    d_t = eta * sin_d - q * cos_d                  # d-tilde
    # Okada (1992): where R + eta = 0, 1/(R+eta) = 0 and ln(R+eta) = -ln(R-eta).
    r_eta = r + eta
    eta_singular = r_eta <= 1e-12 * (r + 1.0)
    r_eta_safe = where(eta_singular, 1.0, r_eta)
    inv_r_eta = where(eta_singular, 0.0, 1.0 / r_eta_safe)
    ln_r_eta = where(eta_singular, -log(where(eta_singular, r - eta, 1.0)), log(r_eta_safe))
    r_xi = r + xi
    xi_singular = r_xi <= 1e-12 * (r + 1.0)
    inv_r_xi = where(xi_singular, 0.0, 1.0 / where(xi_singular, 1.0, r_xi))
    # atan(xi*eta/(q*R)); set to 0 at q = 0 (Okada 1992): mean of the two sides.
    q_zero = q == 0
    theta = where(q_zero, 0.0, atan(xi * eta / where(q_zero, 1.0, q * r)))
    r_safe = where(r == 0, 1.0, r)

    if cos_d > COS_DIP_EPS:
        # Okada (1985) eq. (28)
        x = sqrt(xi * xi + q * q)
        den = xi * (r + x) * cos_d
        den_zero = den == 0
        i5 = mu_ratio * 2.0 / cos_d * where(
            den_zero, 0.0,
            atan((eta * (x + q * cos_d) + x * (r + x) * sin_d) / where(den_zero, 1.0, den)))
        i4 = mu_ratio / cos_d * (log(r + d_t) - sin_d * ln_r_eta)
        i3 = mu_ratio * (y_t / (cos_d * (r + d_t)) - ln_r_eta) + sin_d / cos_d * i4
        i2 = mu_ratio * (-ln_r_eta) - i3
        i1 = mu_ratio * (-xi / (cos_d * (r + d_t))) - sin_d / cos_d * i5
    else:
        # Okada (1985) eq. (29), cos(dip) = 0
        r_d = r + d_t
        i1 = -0.5 * mu_ratio * xi * q / (r_d * r_d)
        i3 = 0.5 * mu_ratio * (eta / r_d + y_t * q / (r_d * r_d) - ln_r_eta)
        i4 = -mu_ratio * q / r_d
        i5 = -mu_ratio * xi * sin_d / r_d
        i2 = mu_ratio * (-ln_r_eta) - i3

    ux, uy, uz = ops.zeros_like(xi), ops.zeros_like(xi), ops.zeros_like(xi)
    if u1 != 0.0:  # strike-slip, eq. (25)
        a = q * inv_r_eta / r_safe
        ux = ux - u1 * (xi * a + theta + i1 * sin_d)
        uy = uy - u1 * (y_t * a + q * cos_d * inv_r_eta + i2 * sin_d)
        uz = uz - u1 * (d_t * a + q * sin_d * inv_r_eta + i4 * sin_d)
    if u2 != 0.0:  # dip-slip, eq. (26)
        b = q * inv_r_xi / r_safe
        ux = ux - u2 * (q / r_safe - i3 * sin_d * cos_d)
        uy = uy - u2 * (y_t * b + cos_d * theta - i1 * sin_d * cos_d)
        uz = uz - u2 * (d_t * b + sin_d * theta - i5 * sin_d * cos_d)
    if u3 != 0.0:  # tensile, eq. (27)
        a = q * inv_r_eta / r_safe
        b = q * inv_r_xi / r_safe
        s2 = sin_d * sin_d
        ux = ux + u3 * (q * a - i3 * s2)
        uy = uy + u3 * (-d_t * b - sin_d * (xi * a - theta) - i1 * s2)
        uz = uz + u3 * (y_t * b + cos_d * (xi * a - theta) - i5 * s2)
    return ux, uy, uz


def _one_fault(fault: Fault, east, north, nu: float):
    ops = _Ops(east)
    strike, dip = math.radians(fault.strike), math.radians(fault.dip)
    sin_d, cos_d = math.sin(dip), math.cos(dip)
    if fault.dip == 90.0:
        sin_d, cos_d = 1.0, 0.0
    rake = math.radians(fault.rake)
    u1, u2, u3 = fault.slip * math.cos(rake), fault.slip * math.sin(rake), fault.opening
    # Okada's origin: the surface projection of the bottom edge's start corner, x along
    # strike, y 90 deg counter-clockwise from strike (the fault dips towards -y); the bottom
    # edge is at depth d = top depth + W sin(dip) (Okada 1985, Fig. 1).
    sin_s, cos_s = math.sin(strike), math.cos(strike)
    half_l = fault.length / 2.0
    de, dn = east - fault.east, north - fault.north
    x = de * sin_s + dn * cos_s + half_l               # along strike, from the start corner
    y = -de * cos_s + dn * sin_s + fault.width * cos_d  # to the left, from the bottom edge
    d = fault.depth + fault.width * sin_d
    p = y * cos_d + d * sin_d
    q = y * sin_d - d * cos_d
    mu_ratio = 1.0 - 2.0 * nu
    ux = uy = uz = 0.0  # becomes an array at the first corner
    # Chinnery's notation, eq. (24): f(x, p) - f(x, p-W) - f(x-L, p) + f(x-L, p-W)
    for xi, eta, sign in ((x, p, 1.0), (x, p - fault.width, -1.0),
                          (x - fault.length, p, -1.0), (x - fault.length, p - fault.width, 1.0)):
        cx, cy, cz = _corner(ops, xi, eta, q, sin_d, cos_d, u1, u2, u3, mu_ratio)
        ux, uy, uz = ux + sign * cx, uy + sign * cy, uz + sign * cz
    scale = 1.0 / (2.0 * math.pi)
    ux, uy, uz = ux * scale, uy * scale, uz * scale
    # fault frame -> ENU: x = (sin s, cos s), y = (-cos s, sin s)
    return ux * sin_s - uy * cos_s, ux * cos_s + uy * sin_s, uz


def surface_displacement(faults: Union[Fault, Sequence[Fault]], east, north, nu: float = 0.25):
    """Surface displacement (east, north, up) [m] of one fault or the sum over a list.

    Parameters
    ----------
    faults : Fault or sequence of Fault
        Conventions in :mod:`.conventions`.
    east, north : numpy.ndarray or torch.Tensor
        Observation points in the same local frame as the faults [m], same shape.
        Integer input is promoted to float64.
    nu : float
        Poisson's ratio, in (-1, 0.5); 0.25 is a Poisson solid (lambda = mu).

    Returns
    -------
    (ue, un, uu) : three arrays of the input's shape and type [m].

    References
    ----------
    .. [1] Okada, Y. (1985), BSSA 75(4), 1135-1154, eq. (24)-(30), doi:10.1785/BSSA0750041135.
    .. [2] Okada, Y. (1992), BSSA 82(2), 1018-1040 (singular cases), doi:10.1785/BSSA0820021018.
    """
    if not -1.0 < nu < 0.5:
        raise ValueError(f"Poisson's ratio must lie in (-1, 0.5), got {nu}.")
    if isinstance(faults, Fault):
        faults = [faults]
    if isinstance(east, np.ndarray) or np.isscalar(east):
        east, north = np.asarray(east), np.asarray(north)
        if not np.issubdtype(east.dtype, np.floating):
            east = east.astype(np.float64)
        if not np.issubdtype(north.dtype, np.floating):
            north = north.astype(np.float64)
    else:
        if not east.is_floating_point():
            east = east.double()
        if not north.is_floating_point():
            north = north.double()
    if east.shape != north.shape:
        raise ValueError(f"east and north must have the same shape, got {east.shape} and {north.shape}.")
    total = None
    for fault in faults:
        part = _one_fault(fault, east, north, nu)
        total = part if total is None else tuple(a + b for a, b in zip(total, part))
    if total is None:
        raise ValueError("surface_displacement needs at least one fault.")
    return total
