"""Surface displacement of a rectangular dislocation in an elastic half-space.

Okada, Y. (1985). Surface deformation due to shear and tensile faults in a half-space.
Bull. Seismol. Soc. Am. 75(4), 1135-1154. Equations (25)-(30) with the Chinnery
notation (24); singular cases after Okada, Y. (1992), BSSA 82(2), 1018-1040, section 4.

Frames, signs and the fault parameterisation are those of :mod:`.conventions`. Arrays in,
arrays out: numpy in -> numpy out, torch in -> torch out on the same device and dtype.
The arithmetic is float64 whatever the input precision (the Chinnery sums cancel: float32
would lose most digits in the far field and near vertical dips); results are cast back.

Singular points
    * Points on the surface trace of a surface-breaking fault (``q = 0`` inside the
      trace): the displacement is discontinuous there; the value returned is the mean of
      the two sides, finite. Okada (1992) sets ``atan(xi*eta/(q*R)) = 0`` at ``q = 0``;
      that is the mean for the bottom edge's terms, while the top edge's (``eta = 0``
      too) tend to ``sign(xi) atan(cos(dip) / sin(dip))`` from both sides. A point counts
      as on the trace when its distance to it is below 16 float64 ulps of the
      coordinates' magnitude (rounding of the frame rotation), so computed trace points
      are found.
    * The two surface corners of a surface-breaking fault (``R = 0``): the displacement
      has no limit there (the fault's side edges reach the surface); NaN is returned.
    * ``R + xi = 0`` (surface trace of a surface-breaking fault and its prolongation
      beyond the start): ``y~ q / (R (R + xi))`` takes its limit along the surface,
      ``2 sin(dip)``, and ``d~ q / (R (R + xi)) = 0``. ``R + eta`` never vanishes at the
      surface of a valid fault. Both reciprocals are formed without cancellation:
      ``1/(R + x) = 1/(R + |x|) + 2 max(-x, 0) / (R^2 - x^2)``.
    * Vertical faults (``dip = 90`` exactly) use the closed forms of Okada (1985) eq. (29).
      Eq. (28) loses ``eps / cos(dip)^2`` to cancellation near vertical (DC3D, and pyrocko,
      switch at ``cos(dip) < 1e-6``, where that is ~1e-4); for ``0 < cos(dip) <
      NEAR_VERTICAL_COS`` the result is interpolated linearly in ``cos(dip)`` between the
      vertical forms and eq. (28) at ``NEAR_VERTICAL_COS`` (error < 1e-7 of the peak). A dip
      of 90 is never changed to 89.99.

Performance
    Points are processed in blocks of :data:`BLOCK_POINTS` (cache-sized), the four Chinnery
    corners of a block stacked into one ``(2, 2, n)`` array, logarithms and arctangents
    merged over corners (one ``log`` per sum, ``atan a - atan b = atan2(a - b, 1 + ab)``
    along dip). Blocks of numpy input (and of CPU tensors that need no gradient, through
    zero-copy numpy views) are shared by the calling thread and pool threads, one thread
    per core or ``torch.get_num_threads()`` if lower; where torch is installed its
    vectorised ``atan2`` replaces numpy's (same values to ~1 ulp; not in a forked child
    whose inherited torch is multi-threaded, where it would hang). Tensors on
    other devices, or that require a gradient, run the same kernel with torch
    operations, so autograd works. ``bench/bench_okada.py`` times it against pyrocko.

    Compiled kernel, off by default (:func:`use_compiled_kernel`, or the environment
    variable ``INSAR_GNSS_3D_OKADA_COMPILE=1``): ``torch.compile`` (inductor) of the same
    kernel fuses its few hundred elementwise operations into a few loops, ~3x the eager
    speed on a CPU and a few launches instead of hundreds on a GPU. What the kernel
    branches on (surface-breaking, vertical, which mechanisms: :class:`_Flags`) compiles
    once per combination, ~10-20 s (~4 s from inductor's on-disk cache in a later
    process); fault parameters are tensor values and the point count a symbolic size, so
    neither recompiles. It pays in long runs (training data, very large grids, the
    benchmark). With it on, numpy input and tensors without a gradient on the CPU or a
    GPU take it, in blocks of :data:`COMPILED_BLOCK_POINTS`; tensors that need a gradient,
    single points and forked children that inherited torch keep the eager kernel. If
    compiling fails (no C++ compiler, ...) it warns once and the eager kernel is used.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import warnings
from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence, Union

import numpy as np

from .threads import LazyPool

#: Below this cos(dip) (dip above ~89.983 deg) the displacement is interpolated between
#: the vertical closed forms, eq. (29), and eq. (28) at this cos(dip) (module docstring).
NEAR_VERTICAL_COS = 3e-4

#: Points per block on the CPU (measured optimum: per-call overhead against cache misses).
#: 2 * BLOCK_POINTS stays below torch's parallel grain (32768), so torch's atan2 on a block
#: runs in the calling thread, never in an OpenMP team.
BLOCK_POINTS = 8192

#: Points per block for the torch kernel (GPU, autograd): bounds temporary memory.
TORCH_BLOCK_POINTS = 1 << 18

_EPS64 = float(np.finfo(np.float64).eps)


def _cos_sin_deg(angle_deg: float):
    """(cos, sin) of an angle in degrees, exact at multiples of 90 degrees."""
    quarter, rest = divmod(float(angle_deg), 90.0)
    if rest == 0.0:
        return ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))[int(quarter) % 4]
    rad = math.radians(angle_deg)
    return math.cos(rad), math.sin(rad)


@dataclass(frozen=True)
class Fault:
    """A rectangular fault (dislocation) in an elastic half-space.

    Parameters (all keyword; conventions in :mod:`.conventions`)
    ----------
    east, north : float
        Centre of the fault's top (up-dip) edge in the local frame [m].
    depth : float
        Depth of the top edge [m], positive down, >= 0 (> 0 for a horizontal fault).
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
        if self.dip == 0.0 and self.depth == 0.0:
            raise ValueError("A horizontal fault (dip 0) at depth 0 m lies on the free surface; "
                             "give it a depth > 0 m.")

    @property
    def bottom_depth(self) -> float:
        """Depth of the bottom edge [m]: ``depth + width * sin(dip)``."""
        return self.depth + self.width * _cos_sin_deg(self.dip)[1]

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
        cos_s, sin_s = _cos_sin_deg(self.strike)
        along = (sin_s, cos_s)                          # unit vector along strike
        down = (cos_s, -sin_s)                          # horizontal, to the right = dip direction
        half = self.length / 2
        horizontal_width = self.width * _cos_sin_deg(self.dip)[0]
        top0 = (self.east - half * along[0], self.north - half * along[1])
        top1 = (self.east + half * along[0], self.north + half * along[1])
        shift = (horizontal_width * down[0], horizontal_width * down[1])
        return [top0, top1, (top1[0] + shift[0], top1[1] + shift[1]),
                (top0[0] + shift[0], top0[1] + shift[1])]


class _Constants(NamedTuple):
    """Per-term numbers of the kernel (Okada 1985 notation).

    Floats, or 0-d float64 tensors in the compiled kernel.
    """

    sin_d: float        # sin(dip)
    cos_d: float        # cos(dip), exactly 0 for a vertical fault
    length: float       # L [m]
    width: float        # W [m]
    top: float          # depth of the top edge [m]
    mu_ratio: float     # mu / (lambda + mu) = 1 - 2 nu
    u1: float           # strike-slip [m]
    u2: float           # dip-slip [m]
    u3: float           # opening [m]
    trace_angle: float  # atan2(cos_d, sin_d) [rad], the top edge's terms on the trace


class _Flags(NamedTuple):
    """What the kernel branches on (Python ``if``s; static in the compiled kernel)."""

    surface: bool       # top == 0
    vertical: bool      # cos_d == 0: eq. (29) instead of eq. (28)
    strike_slip: bool   # u1 != 0
    dip_slip: bool      # u2 != 0
    tensile: bool       # u3 != 0


class _Frame(NamedTuple):
    """Placement of a term's fault frame in the local ENU frame, and the term's factor."""

    east: float         # top edge's centre [m]
    north: float        # top edge's centre [m]
    sin_s: float        # sin(strike)
    cos_s: float        # cos(strike)
    half_length: float  # L / 2 [m]
    scale: float        # weight / (2 pi)


class _Term(NamedTuple):
    """One weighted kernel evaluation; a fault's displacement is the sum of its terms."""

    frame: _Frame
    constants: _Constants
    flags: _Flags


# --- elementwise back-ends: the kernel below is written once against these -------------

_TORCH = None


def _torch():
    """The torch module, or None where it is not installed (imported once, lazily)."""
    global _TORCH
    if _TORCH is None:
        try:
            import torch
        except ImportError:
            torch = False
        _TORCH = torch
    return _TORCH or None


def _is_tensor(value) -> bool:
    """True for a torch.Tensor (without importing torch for numpy callers)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


class _NumpyOps:
    """numpy operations; torch's vectorised (SLEEF) atan2, zero-copy, where installed.

    numpy's float64 arctan2 costs ~20 ns an element, torch's ~7. torch's log is not used:
    it calls MKL, whose own threads stall the caller on a busy machine (~1 ms a block).
    """

    where, sqrt, abs, log = (staticmethod(np.where), staticmethod(np.sqrt),
                             staticmethod(np.abs), staticmethod(np.log))

    def __init__(self, torch=None):
        if torch is None:
            self.atan2 = np.arctan2
        else:
            from_numpy = torch.from_numpy
            self.atan2 = lambda y, x: torch.atan2(from_numpy(y), from_numpy(x)).numpy()

    @staticmethod
    def pair(a, b):
        """Stack two same-shaped arrays on a new first axis."""
        out = np.empty((2,) + a.shape)
        out[0], out[1] = a, b
        return out

    @staticmethod
    def column(values):
        """The scalars ``values`` as a (1, k, 1) array (one per eta row)."""
        return np.asarray(values, dtype=np.float64).reshape(1, -1, 1)

    @staticmethod
    def mask(condition):
        """Boolean array -> 0.0 / 1.0."""
        return condition.astype(np.float64)


class _TorchOps:
    """torch operations on the device and dtype of ``like``."""

    def __init__(self, like):
        torch = _torch()
        self.atan2, self.log, self.sqrt, self.abs = torch.atan2, torch.log, torch.sqrt, torch.abs
        self.where, self._stack, self._like = torch.where, torch.stack, like
        self._as_tensor = torch.as_tensor

    def pair(self, a, b):
        """Stack two same-shaped tensors on a new first axis."""
        return self._stack((a, b))

    def column(self, values):
        """The scalars ``values`` (floats or 0-d tensors) as a (1, k, 1) tensor."""
        like = self._like
        return self._stack([self._as_tensor(v, dtype=like.dtype, device=like.device)
                            for v in values]).reshape(1, -1, 1)

    def mask(self, condition):
        """Boolean tensor -> 0.0 / 1.0."""
        return condition.to(self._like.dtype)


def _kernel(ops, x, delta, k: _Constants, flags: _Flags):
    """Okada (1985) eq. (25)-(30), before the ``1/(2 pi)`` factor, in the fault frame.

    Parameters
    ----------
    ops : _NumpyOps or _TorchOps
    x : array (n,)
        Along-strike coordinate from the fault's start (Okada's x) [m].
    delta : array (n,)
        Horizontal distance from the top edge's line, positive to the left of strike
        (Okada's ``y - W cos(dip)``) [m].
    k : _Constants
    flags : _Flags
        Consistent with ``k`` (:func:`_terms`).

    Returns
    -------
    (ux, uy, uz) : arrays (n,)
        x along strike, y to the left of strike, z up.

    Notes
    -----
    Corners are stacked as ``(xi, eta, n)``: ``xi`` in (x, x - L), ``eta`` in (p, p - W)
    (bottom then top edge), so the Chinnery sum ``f(x,p) - f(x,p-W) - f(x-L,p) +
    f(x-L,p-W)`` is ``F[0,0] - F[0,1] - F[1,0] + F[1,1]``. On each edge
    ``d~ = eta sin - q cos`` is the edge's depth and ``y~ = eta cos + q sin`` the distance
    from its surface line, so both are taken per edge without cancellation. Terms with
    constant coefficients are summed before multiplying: the logarithms as one log of the
    corners' product, the arctangents pairwise along dip.
    """
    s, c, L, W, top, mr, u1, u2, u3, trace_angle = k
    where, sqrt, log, atan2, absolute = ops.where, ops.sqrt, ops.log, ops.atan2, ops.abs
    surface = flags.surface
    xi = ops.pair(x, x - L)                                    # (2, n)
    if surface:
        # rounding of the frame rotation must not move trace and corner points off them
        tol = (16.0 * _EPS64) * (absolute(x) + absolute(delta) + (L + W))
        delta = where(absolute(delta) <= tol, 0.0, delta)
        xi = where(absolute(xi) <= tol, 0.0, xi)
    if flags.vertical:
        q, eta_top = delta, delta * 0.0 + top
    else:
        q, eta_top = delta * s - top * c, delta * c + top * s
    eta = ops.pair(eta_top + W, eta_top)                       # (2, n): bottom, top edge
    bottom = top + W * s                                       # d~ of the bottom edge
    q2 = q * q
    xi2 = xi * xi
    xq = xi2 + q2                                              # xi^2 + q^2
    eta2 = eta * eta
    r = sqrt(xq[:, None] + eta2)                               # R, (2, 2, n)
    inv_r = 1.0 / r
    # 1/(R + eta) = 1/(R + |eta|) + 2 max(-eta, 0) / (xi^2 + q^2): no cancellation
    abs_eta = absolute(eta)
    inv_r_eta = 1.0 / (r + abs_eta) + (abs_eta - eta) / (xq + (xq == 0))[:, None]
    ln_r_eta = -log((inv_r_eta[0, 0] * inv_r_eta[1, 1]) / (inv_r_eta[0, 1] * inv_r_eta[1, 0]))
    # theta = sum of atan(xi eta / (q R)); along dip atan(a) - atan(b) = atan2(a - b, 1 + ab)
    r_bot, r_top, e_bot, e_top = r[:, 0], r[:, 1], eta[0], eta[1]
    pair = atan2(xi * q * (e_bot * r_top - e_top * r_bot), q2 * (r_bot * r_top) + xi2 * (e_bot * e_top))
    theta = pair[0] - pair[1]
    if surface:
        # on the trace (q = eta_top = 0): the bottom edge's terms jump by pi (mean 0), the
        # top edge's tend to sign(xi) atan(cos / sin) from both sides (continuous)
        sign = ops.mask(xi > 0) - ops.mask(xi < 0)
        theta = where(q == 0, -trace_angle * (sign[0] - sign[1]), theta)
    r_d = r + ops.column([bottom, top])                        # R + d~
    inv_rd = 1.0 / r_d
    d_inv_rd = inv_rd[0] - inv_rd[1]                           # summed over xi, per edge
    if not flags.vertical:  # eq. (28)
        ln_rd = log((r_d[0, 0] * r_d[1, 1]) / (r_d[0, 1] * r_d[1, 0]))
        xx = sqrt(xq)                                          # X
        rx = r + xx[:, None]
        num = eta * (xx + q * c)[:, None] + (xx * s)[:, None] * rx
        xc = xi * c                                            # denominator = xi (R + X) cos
        pair = atan2(xc * (num[:, 0] * rx[:, 1] - num[:, 1] * rx[:, 0]),
                     (xc * xc) * (rx[:, 0] * rx[:, 1]) + num[:, 0] * num[:, 1])
        # at xi = 0 the numerators are >= 0 at the surface: pair = 0 (Okada's I5 = 0)
        sum_y_rd = (delta + W * c) * d_inv_rd[0] - delta * d_inv_rd[1]
        a = xi * (inv_rd[:, 0] - inv_rd[:, 1])
        i4 = mr / c * (ln_rd - s * ln_r_eta)
        i3 = mr * (sum_y_rd / c - ln_r_eta) + s / c * i4
        i5 = 2.0 * mr / c * (pair[0] - pair[1])
        i1 = -mr / c * (a[0] - a[1]) - s / c * i5
    else:  # eq. (29)
        inv_rd2 = inv_rd * inv_rd
        d_inv_rd2 = inv_rd2[0] - inv_rd2[1]
        a = xi * (inv_rd2[:, 0] - inv_rd2[:, 1])
        i1 = (-0.5 * mr) * q * (a[0] - a[1])
        i3 = (0.5 * mr) * (e_bot * d_inv_rd[0] - e_top * d_inv_rd[1]
                           + q * ((delta + W * c) * d_inv_rd2[0] - delta * d_inv_rd2[1])
                           - ln_r_eta)
        i4 = -mr * q * (d_inv_rd[0] - d_inv_rd[1])
        a = xi * (inv_rd[:, 0] - inv_rd[:, 1])
        i5 = -mr * s * (a[0] - a[1])
    i2 = -mr * ln_r_eta - i3

    ux = uy = uz = 0.0
    if flags.strike_slip or flags.tensile:
        g = inv_r_eta * inv_r                                  # 1/(R (R + eta))
        a = xi * (g[:, 0] - g[:, 1])
        xi_qg = q * (a[0] - a[1])                              # sum of xi q / (R (R + eta))
    if flags.strike_slip:  # eq. (25)
        d_g = g[0] - g[1]
        a = inv_r_eta[0] - inv_r_eta[1]
        q_inv = q * (a[0] - a[1])                              # sum of q / (R + eta)
        ux = ux - u1 * (xi_qg + theta + s * i1)
        uy = uy - u1 * (q * ((delta + W * c) * d_g[0] - delta * d_g[1]) + c * q_inv + s * i2)
        uz = uz - u1 * (q * (bottom * d_g[0] - top * d_g[1]) + s * q_inv + s * i4)
    if flags.dip_slip or flags.tensile:
        # 1/(R (R + xi)), 1/(R + xi) = 1/(R + |xi|) + 2 max(-xi, 0) / (eta^2 + q^2)
        abs_xi = absolute(xi)
        eq = eta2 + q2                                         # > 0 unless on a surface trace
        if surface:
            eq = eq + (eq == 0)
        f = inv_r * (1.0 / (r + abs_xi[:, None]) + (abs_xi - xi)[:, None] / eq)
        if surface:
            # on the trace and beyond its start (eta = q = 0, xi < 0): y~ q / (R (R + xi))
            # -> 2 sin(dip) along the surface, d~ = 0 there
            on_trace = (delta == 0) & (xi < 0)
            f[:, 1] = where(on_trace, 0.0, f[:, 1])
            d_f = f[0] - f[1]
            y_qh = (q * ((delta + W * c) * d_f[0] - delta * d_f[1])
                    + (2.0 * s) * (ops.mask(on_trace[1]) - ops.mask(on_trace[0])))
            d_qh = q * (bottom * d_f[0])
        else:
            d_f = f[0] - f[1]
            y_qh = q * ((delta + W * c) * d_f[0] - delta * d_f[1])
            d_qh = q * (bottom * d_f[0] - top * d_f[1])
    if flags.dip_slip:  # eq. (26)
        a = inv_r[0] - inv_r[1]
        ux = ux - u2 * (q * (a[0] - a[1]) - s * c * i3)
        uy = uy - u2 * (y_qh + c * theta - s * c * i1)
        uz = uz - u2 * (d_qh + s * theta - s * c * i5)
    if flags.tensile:  # eq. (27)
        a = g[0] - g[1]
        ux = ux + u3 * (q2 * (a[0] - a[1]) - s * s * i3)
        uy = uy + u3 * (-d_qh - s * (xi_qg - theta) - s * s * i1)
        uz = uz + u3 * (y_qh + c * (xi_qg - theta) - s * s * i5)
    if surface:
        corner = (delta == 0) & ((xi[0] == 0) | (xi[1] == 0))
        ux, uy, uz = (where(corner, math.nan, u) for u in (ux, uy, uz))
    return ux, uy, uz


def _terms(fault: Fault, nu: float):
    """[_Term] whose displacements sum to the fault's (none without slip or opening)."""
    cos_r, sin_r = _cos_sin_deg(fault.rake)
    common = dict(length=fault.length, width=fault.width, top=fault.depth,
                  mu_ratio=1.0 - 2.0 * nu, u1=fault.slip * cos_r, u2=fault.slip * sin_r,
                  u3=fault.opening)
    cos_d, sin_d = _cos_sin_deg(fault.dip)
    if 0.0 < cos_d < NEAR_VERTICAL_COS:
        t = cos_d / NEAR_VERTICAL_COS
        dips = [(1.0 - t, 0.0, 1.0),
                (t, NEAR_VERTICAL_COS, math.sqrt(1.0 - NEAR_VERTICAL_COS ** 2))]
    else:
        dips = [(1.0, cos_d, sin_d)]
    cos_s, sin_s = _cos_sin_deg(fault.strike)
    terms = []
    for weight, cos_d, sin_d in dips:
        k = _Constants(sin_d=sin_d, cos_d=cos_d, trace_angle=math.atan2(cos_d, sin_d), **common)
        flags = _Flags(surface=k.top == 0.0, vertical=k.cos_d == 0.0, strike_slip=k.u1 != 0.0,
                       dip_slip=k.u2 != 0.0, tensile=k.u3 != 0.0)
        if flags.strike_slip or flags.dip_slip or flags.tensile:
            frame = _Frame(fault.east, fault.north, sin_s, cos_s, 0.5 * fault.length,
                           weight / (2.0 * math.pi))
            terms.append(_Term(frame, k, flags))
    return terms


def _term_enu(ops, east, north, term: _Term):
    """(ue, un, uu) [m] of one term at 1-D float64 ``east``, ``north`` [m]."""
    frame = term.frame
    sin_s, cos_s = frame.sin_s, frame.cos_s
    de, dn = east - frame.east, north - frame.north
    # Okada's x (along strike from the start) and the offset from the top edge's line
    x = de * sin_s + dn * cos_s + frame.half_length
    delta = dn * sin_s - de * cos_s
    ux, uy, uz = _kernel(ops, x, delta, term.constants, term.flags)
    w = frame.scale
    # fault frame -> ENU: x = (sin s, cos s), y = (-cos s, sin s)
    return (ux * sin_s - uy * cos_s) * w, (ux * cos_s + uy * sin_s) * w, uz * w


def _block(ops, plan, east, north):
    """(ue, un, uu) [m] at 1-D float64 ``east``, ``north`` summed over ``plan`` ([_Term])."""
    total = (0.0, 0.0, 0.0)
    for term in plan:
        total = tuple(t + u for t, u in zip(total, _term_enu(ops, east, north, term)))
    return total


_TORCH_INHERITED = False

#: The switch of the compiled kernel (:func:`use_compiled_kernel`).
_COMPILE = False


def _after_fork_in_child():
    """Switch the compiled kernel off in a forked child.

    A forked child (e.g. a DataLoader worker) has none of torch's OpenMP threads, so
    torch ops hang there unless torch.set_num_threads(1), and so may the compiled kernel's
    OpenMP loops.
    """
    global _TORCH_INHERITED, _COMPILE
    _TORCH_INHERITED = "torch" in sys.modules
    _COMPILE = _COMPILE and not _TORCH_INHERITED


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _workers() -> int:
    """Threads for one call.

    The cores, or fewer where torch was told to use fewer (torch.set_num_threads, as
    DataLoader workers do).
    """
    torch = sys.modules.get("torch")
    cores = _cores()
    if torch is not None and hasattr(torch, "get_num_threads"):
        return max(1, min(cores, torch.get_num_threads()))
    return cores


#: The module's thread pool, one thread per core.
_POOL = LazyPool(_cores, "okada")


def _numpy_displacement(plan, east, north):
    """(3, n) float64 displacement at 1-D float64 arrays, blocks spread over the cores.

    The calling thread and up to ``_workers() - 1`` pool threads take blocks from a shared
    queue until it is empty (a core slowed by other processes simply takes fewer blocks).
    """
    n = east.shape[0]
    if not plan:  # no slip nor opening
        return np.zeros((3, n))
    out = np.empty((3, n))
    torch = _torch()
    if torch is not None and _TORCH_INHERITED and torch.get_num_threads() != 1:
        torch = None                       # forked child: numpy's own atan2
    ops = _NumpyOps(torch)
    starts = iter(range(0, n, BLOCK_POINTS))
    take = threading.Lock()

    def work():
        with np.errstate(all="ignore"):  # masked 0/0 in unused branches, NaN corners
            while True:
                with take:
                    start = next(starts, None)
                if start is None:
                    return
                stop = min(start + BLOCK_POINTS, n)
                out[:, start:stop] = _block(ops, plan, east[start:stop], north[start:stop])

    helpers = min(_workers(), -(-n // BLOCK_POINTS)) - 1
    futures = [_POOL.get().submit(work) for _ in range(helpers)]
    try:
        work()
    finally:
        for future in futures:
            future.result()
    return out


def _torch_displacement(plan, east, north):
    """(3, n) float64 displacement with torch operations (any device, autograd)."""
    torch = _torch()
    if not plan:  # no slip nor opening: zeros, still part of the autograd graph
        return torch.stack((east * 0.0,) * 3)
    ops = _TorchOps(east)
    parts = [torch.stack(_block(ops, plan, east[i:i + TORCH_BLOCK_POINTS],
                                north[i:i + TORCH_BLOCK_POINTS]))
             for i in range(0, east.shape[0], TORCH_BLOCK_POINTS)]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


# --- compiled kernel: torch.compile of _term_enu, off by default ---------------------------

#: Points per call of the compiled kernel: bounds its temporary memory (~0.2 GB at 2**20).
COMPILED_BLOCK_POINTS = 1 << 20

_COMPILED_TERMS = {}   # _Flags -> compiled (east, north, params) -> (3, n)


def _compiled_term(flags: _Flags):
    """The compiled ``(east, north, params) -> (3, n)`` ENU displacement [m] of a term.

    One function per set of flags; ``params``: the term's _Frame then _Constants as a 1-D
    float64 tensor.
    """
    fn = _COMPILED_TERMS.get(flags)
    if fn is None:
        torch = _torch()
        split = len(_Frame._fields)

        def term_enu(east, north, params):
            values = params.unbind()
            term = _Term(_Frame(*values[:split]), _Constants(*values[split:]), flags)
            return torch.stack(_term_enu(_TorchOps(east), east, north, term))

        # a code object of its own: dynamo keeps compiled graphs, and counts them against
        # its recompile limit (8), per code object, which all closures of one def share
        term_enu.__code__ = term_enu.__code__.replace()
        # numbers as tensor values and n symbolic: a new fault or point count reuses the graph
        fn = _COMPILED_TERMS.setdefault(
            flags, torch.compile(term_enu, dynamic=True, fullgraph=True))
    return fn


def _compiled_displacement(plan, east, north):
    """(3, n) float64 displacement [m] from the compiled kernel.

    At 1-D contiguous float64 tensors without grad, n >= 2 (dynamo specialises sizes 0 and
    1: another compile).
    """
    torch = _torch()
    out = east.new_zeros((3, east.shape[0]))
    blocks = -(-east.shape[0] // COMPILED_BLOCK_POINTS)   # near-equal sizes, none below 2
    parts = list(zip(out.tensor_split(blocks, dim=1), east.tensor_split(blocks),
                     north.tensor_split(blocks)))
    with torch.no_grad():                                  # dynamo guards on the grad mode
        for term in plan:
            fn = _compiled_term(term.flags)
            params = torch.tensor(term.frame + term.constants, dtype=torch.float64,
                                  device=east.device)
            for part, e, n in parts:
                # detach(): a tensor that is not a view; dynamo guards on a view's base size
                part += fn(e.detach(), n.detach(), params)
    return out


def _compiled_or_none(plan, east, north):
    """:func:`_compiled_displacement`, or None where it fails (switched off, one warning)."""
    global _COMPILE
    try:
        return _compiled_displacement(plan, east, north)
    except Exception as exc:  # no C++ compiler, unsupported platform or device, ...
        _COMPILE = False
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        warnings.warn(f"The compiled Okada kernel failed ({type(exc).__name__}: {reason}), so "
                      "the eager kernel is used from now on.", RuntimeWarning, stacklevel=3)
        return None


def use_compiled_kernel(enabled: bool = True) -> bool:
    """Switch the compiled kernel (module docstring, Performance) on or off.

    Returns whether it is now on: never where torch or its ``torch.compile`` is missing or
    unsupported on this Python, nor in a forked child that inherited torch. If compiling
    fails at a first call (no C++ compiler, ...), it is switched off with a warning.
    The environment variable ``INSAR_GNSS_3D_OKADA_COMPILE=1`` switches it on at import.
    """
    global _COMPILE
    _COMPILE = False
    if enabled and not _TORCH_INHERITED and _torch() is not None:
        try:
            from torch._dynamo import is_dynamo_supported
        except ImportError:  # a torch without torch.compile
            return False
        _COMPILE = is_dynamo_supported()
    return _COMPILE


use_compiled_kernel(os.environ.get("INSAR_GNSS_3D_OKADA_COMPILE", "0").strip() == "1")


def _writable_tensor(array):
    """A CPU tensor sharing ``array``'s memory (a copy if it is read-only: torch warns)."""
    return _torch().from_numpy(array if array.flags.writeable else array.copy())


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
        NaN only at the surface corners of a surface-breaking fault (module docstring).

    Notes
    -----
    With :func:`use_compiled_kernel` on, inputs without a gradient are computed by the
    compiled kernel (values differ from the eager kernel's by rounding, ~1e-16 of the
    peak); the first call for a new kind of fault compiles (~10-20 s).

    References
    ----------
    .. [1] Okada, Y. (1985), BSSA 75(4), 1135-1154, eq. (24)-(30), doi:10.1785/BSSA0750041135.
    .. [2] Okada, Y. (1992), BSSA 82(2), 1018-1040 (singular cases), doi:10.1785/BSSA0820021018.
    """
    if not -1.0 < nu < 0.5:
        raise ValueError(f"Poisson's ratio must lie in (-1, 0.5), got {nu}.")
    if isinstance(faults, Fault):
        faults = [faults]
    faults = list(faults)
    if not faults:
        raise ValueError("surface_displacement needs at least one fault.")
    for fault in faults:
        if not isinstance(fault, Fault):
            raise TypeError(f"faults must be Fault objects, got {type(fault).__name__}.")
    plan = [term for fault in faults for term in _terms(fault, nu)]

    if not _is_tensor(east):
        east, north = np.asarray(east), np.asarray(north)
        if east.shape != north.shape:
            raise ValueError(f"east and north must have the same shape, got {east.shape} and {north.shape}.")
        dtype = np.result_type(east.dtype, north.dtype)
        if not np.issubdtype(dtype, np.floating):
            dtype = np.dtype(np.float64)
        east64 = np.ascontiguousarray(east, dtype=np.float64).reshape(-1)
        north64 = np.ascontiguousarray(north, dtype=np.float64).reshape(-1)
        out = None
        if _COMPILE and east64.size >= 2:
            out = _compiled_or_none(plan, _writable_tensor(east64), _writable_tensor(north64))
        out = _numpy_displacement(plan, east64, north64) if out is None else out.numpy()
        return tuple(component.reshape(east.shape).astype(dtype, copy=False) for component in out)

    torch = _torch()
    if east.shape != north.shape:
        raise ValueError(f"east and north must have the same shape, got {tuple(east.shape)} "
                         f"and {tuple(north.shape)}.")
    dtype = east.dtype if east.is_floating_point() else torch.float64
    shape = east.shape
    east64, north64 = east.reshape(-1).to(torch.float64), north.reshape(-1).to(torch.float64)
    no_grad = not (torch.is_grad_enabled() and (east.requires_grad or north.requires_grad))
    out = None
    if _COMPILE and no_grad and east64.shape[0] >= 2 and east.device.type in ("cpu", "cuda"):
        out = _compiled_or_none(plan, east64.detach().contiguous(), north64.detach().contiguous())
    if out is None and no_grad and east.device.type == "cpu":
        out = torch.from_numpy(_numpy_displacement(
            plan, east64.detach().contiguous().numpy(), north64.detach().contiguous().numpy()))
    elif out is None:
        out = _torch_displacement(plan, east64, north64)
    return tuple(component.reshape(shape).to(dtype) for component in out)
