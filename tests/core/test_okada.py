"""core.okada: Okada (1985) Table 2, physical identities, singular points, types, input checks."""

import math
import re
import warnings
from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from insar_gnss_3d.core import okada
from insar_gnss_3d.core.okada import Fault, surface_displacement

# ---------------------------------------------------------------------------------------
# Okada (1985) Table 2, "check list for numerical calculations"
# ---------------------------------------------------------------------------------------

_L, _W = 3.0, 2.0
#: case: (x, y, d, dip) in Okada's frame; rows strike-slip, dip-slip, tensile; columns ux, uy, uz
TABLE2 = {
    2: ((2.0, 3.0, 4.0, 70.0),
        ((-8.689e-3, -4.298e-3, -2.747e-3),
         (-4.682e-3, -3.527e-2, -3.564e-2),
         (-2.660e-4, +1.056e-2, +3.214e-3))),
    3: ((0.0, 0.0, 4.0, 90.0),
        ((0.0, +5.253e-3, 0.0),
         (0.0, 0.0, 0.0),
         (+1.223e-2, 0.0, -1.606e-2))),
    4: ((0.0, 0.0, 4.0, -90.0),
        ((0.0, -1.303e-3, 0.0),
         (0.0, 0.0, 0.0),
         (+3.507e-3, 0.0, -7.740e-3))),
}
_MECHANISMS = ("strike-slip", "dip-slip", "tensile")


def _table2_fault(case, mechanism):
    """Our Fault for an Okada (1985) Table 2 case (L = 3, W = 2, lambda = mu).

    Okada's frame has x along strike, y 90 deg counter-clockwise from it, the origin above
    the start of the fault's bottom edge, whose depth is d; the fault dips towards -y. With
    strike = 90 deg, x = east and y = north, and the top edge's centre is at
    ``east = L/2, north = W cos(dip)``, depth ``d - W sin(dip)``:
    ``Fault(east=L/2, north=W*cos(dip), depth=d-W*sin(dip), strike=90, dip=dip, length=L,
    width=W)``. Strike-slip is rake 0, dip-slip rake 90 (slip 1), tensile opening 1.

    Case 4 (Okada's dip = -90 deg, d = 4) is the fault between depths 4 and 6 with the
    dip direction reversed: our vertical fault with bottom depth d = 6 (top depth 4) and
    strike-slip rake 180 (the reversed strike direction). Its dip-slip and tensile parts
    are unchanged by the reversal (dip-slip is zero at the origin; opening is symmetric).
    """
    (_x, _y, d, dip) = TABLE2[case][0]
    if dip < 0:
        dip, d = -dip, d + _W
        strike_slip_rake = 180.0
    else:
        strike_slip_rake = 0.0
    cos_d, sin_d = math.cos(math.radians(dip)), math.sin(math.radians(dip))
    if dip == 90.0:
        cos_d, sin_d = 0.0, 1.0
    slip = dict(rake=strike_slip_rake, slip=1.0, opening=0.0)
    if mechanism == "dip-slip":
        slip = dict(rake=90.0, slip=1.0, opening=0.0)
    elif mechanism == "tensile":
        slip = dict(rake=0.0, slip=0.0, opening=1.0)
    return Fault(east=_L / 2, north=_W * cos_d, depth=d - _W * sin_d, strike=90.0, dip=dip,
                 length=_L, width=_W, **slip)


@pytest.mark.parametrize("case", sorted(TABLE2))
@pytest.mark.parametrize("row", range(3), ids=_MECHANISMS)
def test_okada_1985_table2(case, row):
    """ux, uy, uz equal Table 2 to its 4 significant digits (nu = 0.25)."""
    (x, y, _d, _dip), rows = TABLE2[case]
    fault = _table2_fault(case, _MECHANISMS[row])
    got = np.array(surface_displacement(fault, np.array([x]), np.array([y]), nu=0.25))[:, 0]
    assert_allclose(got, rows[row], rtol=5e-4, atol=5e-7)


# ---------------------------------------------------------------------------------------
# physics any correct implementation obeys
# ---------------------------------------------------------------------------------------

MEGATHRUST = Fault(east=0.0, north=0.0, depth=5e3, strike=200.0, dip=15.0, length=40e3,
                   width=25e3, rake=90.0, slip=1.0)


def test_megathrust_uplift_seaward_subsidence_landward():
    """1 m of thrust on a 15-deg megathrust striking 200 deg: landward is the dip direction,
    to the right of strike (azimuth 290 deg). Uplift over the fault, the largest between
    the trench (top edge) and the bottom edge; subsidence landward of the down-dip end,
    the deepest beyond the bottom edge's surface projection; the hanging wall moves
    seaward (up-dip) above the fault."""
    landward = math.radians(MEGATHRUST.strike + 90.0)
    horizontal_width = MEGATHRUST.width * math.cos(math.radians(MEGATHRUST.dip))   # 24.1 km
    s = np.linspace(-30e3, 80e3, 221)                         # distance landward of the trench
    ue, un, uu = surface_displacement(MEGATHRUST, s * math.sin(landward), s * math.cos(landward))
    landward_motion = ue * math.sin(landward) + un * math.cos(landward)
    over_updip = (s >= 0) & (s <= 0.5 * horizontal_width)
    assert np.all(uu[over_updip] > 0.05)
    assert 0 <= s[np.argmax(uu)] < horizontal_width
    assert 0.2 < uu.max() < 1.0                               # decimetres for 1 m of slip
    assert horizontal_width < s[np.argmin(uu)] < horizontal_width + 20e3
    assert uu[np.argmin(np.abs(s - (horizontal_width + 10e3)))] < -0.05
    over_fault = (s > 0) & (s < horizontal_width)
    assert np.all(landward_motion[over_fault] < -0.1)         # towards the trench


def test_far_field_decays_as_inverse_square():
    """|u| ~ r^-2 far from a small fault (a point source): log-log slope of the
    azimuthal RMS between 200 and 800 km is -2."""
    r = np.geomspace(200e3, 800e3, 12)
    azimuth = np.radians(np.arange(0.0, 360.0, 10.0))
    rr, aa = np.meshgrid(r, azimuth)
    for slip in (dict(rake=60.0, slip=1.0), dict(rake=0.0, slip=0.0, opening=1.0)):
        fault = Fault(east=0.0, north=0.0, depth=10e3, strike=30.0, dip=45.0, length=5e3,
                      width=5e3, **slip)
        u = np.array(surface_displacement(fault, rr * np.sin(aa), rr * np.cos(aa)))
        rms = np.sqrt((u ** 2).sum(axis=0).mean(axis=0))
        slope = np.polyfit(np.log(r), np.log(rms), 1)[0]
        assert abs(slope + 2.0) < 0.05, slope


def _grid(half=30e3, n=41):
    e, n_ = np.meshgrid(np.linspace(-half, half, n), np.linspace(-half, half, n) + 0.37)
    return e, n_


def test_mirror_symmetry_vertical_strike_slip():
    """Vertical strike-slip fault along north through the origin. Across its plane
    (east -> -east): ue symmetric, un and uu antisymmetric. Across the perpendicular
    bisector (north -> -north): ue and uu antisymmetric, un symmetric."""
    fault = Fault(east=0.0, north=0.0, depth=2e3, strike=0.0, dip=90.0, length=20e3,
                  width=10e3, rake=0.0, slip=1.0)
    e, n = _grid()
    ue, un, uu = surface_displacement(fault, e, n)
    me, mn, mu = surface_displacement(fault, -e, n)
    atol = 1e-12 * np.abs(un).max()
    assert_allclose(me, ue, rtol=1e-10, atol=atol)
    assert_allclose(mn, -un, rtol=1e-10, atol=atol)
    assert_allclose(mu, -uu, rtol=1e-10, atol=atol)
    be, bn, bu = surface_displacement(fault, e, -n)
    assert_allclose(be, -ue, rtol=1e-10, atol=atol)
    assert_allclose(bn, un, rtol=1e-10, atol=atol)
    assert_allclose(bu, -uu, rtol=1e-10, atol=atol)


def test_mirror_symmetry_dip_slip_and_opening():
    """A dipping fault along north, centred on north = 0: thrust and opening are
    symmetric under north -> -north (ue, uu even, un odd). A vertical opening crack (a
    dike) is symmetric across its plane (ue odd, un and uu even)."""
    e, n = _grid()
    for slip in (dict(rake=90.0, slip=1.0), dict(rake=0.0, slip=0.0, opening=1.0)):
        fault = Fault(east=0.0, north=0.0, depth=1e3, strike=0.0, dip=35.0, length=20e3,
                      width=10e3, **slip)
        ue, un, uu = surface_displacement(fault, e, n)
        be, bn, bu = surface_displacement(fault, e, -n)
        atol = 1e-12 * np.abs(uu).max()
        assert_allclose(be, ue, rtol=1e-10, atol=atol)
        assert_allclose(bn, -un, rtol=1e-10, atol=atol)
        assert_allclose(bu, uu, rtol=1e-10, atol=atol)
    dike = Fault(east=0.0, north=0.0, depth=1e3, strike=0.0, dip=90.0, length=20e3,
                 width=10e3, rake=0.0, slip=0.0, opening=1.0)
    ue, un, uu = surface_displacement(dike, e, n)
    me, mn, mu = surface_displacement(dike, -e, n)
    atol = 1e-12 * np.abs(uu).max()
    assert_allclose(me, -ue, rtol=1e-10, atol=atol)
    assert_allclose(mn, un, rtol=1e-10, atol=atol)
    assert_allclose(mu, uu, rtol=1e-10, atol=atol)


def _rotate(east, north, angle_deg):
    """Rotate points (or vectors) clockwise by ``angle_deg`` (azimuth += angle)."""
    a = math.radians(angle_deg)
    return (east * math.cos(a) + north * math.sin(a), -east * math.sin(a) + north * math.cos(a))


@pytest.mark.parametrize("angle", [37.0, 90.0, 211.5])
def test_rotation_rotates_the_displacement(angle):
    """Turning the fault (strike and position) and the points by the same angle about the
    origin turns the displacement vector by that angle; uu is unchanged."""
    fault = Fault(east=3e3, north=-2e3, depth=4e3, strike=20.0, dip=50.0, length=15e3,
                  width=8e3, rake=-60.0, slip=1.5, opening=0.3)
    rng = np.random.default_rng(1)
    e, n = rng.uniform(-40e3, 40e3, (2, 500))
    ue, un, uu = surface_displacement(fault, e, n)
    fe, fn = _rotate(fault.east, fault.north, angle)
    turned = replace(fault, east=fe, north=fn, strike=(fault.strike + angle) % 360.0)
    re_, rn = _rotate(e, n, angle)
    te, tn, tu = surface_displacement(turned, re_, rn)
    xe, xn = _rotate(ue, un, angle)
    atol = 1e-12 * np.abs(uu).max()
    assert_allclose(te, xe, rtol=1e-9, atol=atol)
    assert_allclose(tn, xn, rtol=1e-9, atol=atol)
    assert_allclose(tu, uu, rtol=1e-9, atol=atol)


def test_linear_in_slip_and_superposition():
    """u is linear in slip and opening, a rake splits into its strike- and dip-slip parts,
    and a list of faults gives the sum of their displacements."""
    rng = np.random.default_rng(2)
    e, n = rng.uniform(-50e3, 50e3, (2, 400))
    base = Fault(east=1e3, north=2e3, depth=3e3, strike=135.0, dip=40.0, length=20e3,
                 width=10e3, rake=70.0, slip=1.0, opening=0.2)
    u1 = np.array(surface_displacement(base, e, n))
    u25 = np.array(surface_displacement(base.scaled(-2.5), e, n))
    scale = np.abs(u1).max()
    assert_allclose(u25, -2.5 * u1, rtol=1e-12, atol=1e-14 * scale)
    rake = math.radians(base.rake)
    parts = [replace(base, rake=0.0, slip=math.cos(rake), opening=0.0),
             replace(base, rake=90.0, slip=math.sin(rake), opening=0.0),
             replace(base, rake=0.0, slip=0.0, opening=base.opening)]
    summed = sum(np.array(surface_displacement(p, e, n)) for p in parts)
    assert_allclose(np.array(surface_displacement(parts, e, n)), summed, rtol=1e-12,
                    atol=1e-14 * scale)
    assert_allclose(summed, u1, rtol=1e-10, atol=1e-13 * scale)
    other = Fault(east=-20e3, north=5e3, depth=0.0, strike=300.0, dip=80.0, length=8e3,
                  width=4e3, rake=180.0, slip=0.7)
    both = np.array(surface_displacement([base, other], e, n))
    assert_allclose(both, u1 + np.array(surface_displacement(other, e, n)), rtol=1e-12,
                    atol=1e-14 * scale)


# ---------------------------------------------------------------------------------------
# numpy and torch
# ---------------------------------------------------------------------------------------

FAULTS = [
    MEGATHRUST,
    Fault(east=2e3, north=-1e3, depth=0.0, strike=33.0, dip=60.0, length=12e3, width=6e3,
          rake=-30.0, slip=2.0, opening=0.5),
    Fault(east=0.0, north=0.0, depth=1e3, strike=90.0, dip=90.0, length=10e3, width=5e3,
          rake=180.0, slip=1.0, opening=0.2),
    Fault(east=0.0, north=0.0, depth=2e3, strike=10.0, dip=0.0, length=10e3, width=8e3,
          rake=0.0, slip=0.0, opening=1.0),
]


@pytest.mark.parametrize("fault", FAULTS, ids=["megathrust", "surface", "vertical", "sill"])
def test_numpy_and_torch_agree(fault):
    """float64: numpy, CPU tensors (numpy kernel on zero-copy views) and the torch kernel
    (a tensor that requires grad, as on a GPU) agree to 1e-12 of the peak."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    e, n = rng.uniform(-60e3, 60e3, (2, 20000))
    ref = np.array(surface_displacement(fault, e, n))
    peak = np.abs(ref).max()
    cpu = surface_displacement(fault, torch.from_numpy(e), torch.from_numpy(n))
    assert all(isinstance(c, torch.Tensor) and c.dtype == torch.float64 for c in cpu)
    assert_allclose(torch.stack(cpu).numpy(), ref, rtol=1e-12, atol=1e-12 * peak)
    te = torch.from_numpy(e).requires_grad_()
    graph = surface_displacement(fault, te, torch.from_numpy(n))
    assert_allclose(torch.stack(graph).detach().numpy(), ref, rtol=1e-12, atol=1e-12 * peak)
    graph[2].sum().backward()                                 # autograd through the kernel
    assert te.grad is not None and torch.isfinite(te.grad).all()


def test_types_shapes_and_dtypes():
    """numpy in -> numpy out of the input's shape and float dtype (integers -> float64);
    torch in -> torch out, same dtype and device; float32 is computed in float64."""
    torch = pytest.importorskip("torch")
    fault = FAULTS[1]
    e, n = np.meshgrid(np.linspace(-20e3, 20e3, 31), np.linspace(-15e3, 25e3, 17))
    ref = np.array(surface_displacement(fault, e, n))
    assert ref.shape == (3,) + e.shape
    out32 = surface_displacement(fault, e.astype(np.float32), n.astype(np.float32))
    assert all(c.dtype == np.float32 and c.shape == e.shape for c in out32)
    ref32 = np.array(surface_displacement(fault, e.astype(np.float32).astype(np.float64),
                                          n.astype(np.float32).astype(np.float64)))
    assert_allclose(np.array(out32), ref32, rtol=1e-6, atol=1e-7 * np.abs(ref32).max())
    ints = surface_displacement(fault, e.astype(np.int64), n.astype(np.int64))
    assert all(c.dtype == np.float64 for c in ints)
    scalar = surface_displacement(fault, 1234.5, -678.9)
    assert all(np.ndim(c) == 0 for c in scalar)
    assert_allclose(np.array(scalar), np.array(surface_displacement(
        fault, np.array([1234.5]), np.array([-678.9])))[:, 0], rtol=1e-14)
    t32 = surface_displacement(fault, torch.tensor(e, dtype=torch.float32),
                               torch.tensor(n, dtype=torch.float32))
    assert all(isinstance(c, torch.Tensor) and c.dtype == torch.float32 and
               c.shape == e.shape and c.device.type == "cpu" for c in t32)
    assert_allclose(torch.stack(t32).numpy(), ref32, rtol=1e-6, atol=1e-7 * np.abs(ref32).max())
    tint = surface_displacement(fault, torch.tensor(e).long(), torch.tensor(n).long())
    assert all(c.dtype == torch.float64 for c in tint)
    empty = surface_displacement(fault, np.zeros((0, 3)), np.zeros((0, 3)))
    assert all(c.shape == (0, 3) for c in empty)


def test_fault_without_slip_gives_zeros():
    """Zero slip and opening: zeros from every path (numpy, CPU tensors, autograd)."""
    torch = pytest.importorskip("torch")
    fault = replace(FAULTS[0], slip=0.0)
    e = np.linspace(-5e3, 5e3, 11)
    assert np.array_equal(np.array(surface_displacement(fault, e, e)), np.zeros((3, 11)))
    t, zeros = torch.from_numpy(e), torch.zeros(3, 11, dtype=torch.float64)
    assert torch.equal(torch.stack(surface_displacement(fault, t, t)), zeros)
    graph = surface_displacement(fault, t.clone().requires_grad_(), t)
    assert torch.equal(torch.stack(graph).detach(), zeros)


def test_many_points_in_blocks_match_small_calls():
    """Large inputs (split into blocks over a thread pool) give the values of separate
    small calls (to rounding: vectorised transcendental functions may round an element
    differently in a vector lane and in a loop's tail)."""
    rng = np.random.default_rng(4)
    e, n = rng.uniform(-80e3, 80e3, (2, 50001))
    whole = np.array(surface_displacement(FAULTS, e, n))
    pieces = np.concatenate([np.array(surface_displacement(FAULTS, e[i:i + 777], n[i:i + 777]))
                             for i in range(0, e.size, 777)], axis=1)
    assert_allclose(whole, pieces, rtol=1e-12, atol=1e-15 * np.nanmax(np.abs(whole)), equal_nan=True)


_FORK_CHILD = r"""
import os, sys
import numpy as np
sys.path.insert(0, {plugins!r})
from insar_gnss_3d.core.okada import Fault, surface_displacement
fault = Fault(east=0.0, north=0.0, depth=5e3, strike=200.0, dip=15.0, length=40e3,
              width=25e3, rake=90.0, slip=1.0)
e, n = np.random.default_rng(0).uniform(-1e5, 1e5, (2, 100000))
parent = np.array(surface_displacement(fault, e, n))        # thread pool and torch in use
for threads in (None, 1):                                   # plain fork; DataLoader-style
    pid = os.fork()
    if pid == 0:
        if threads is not None:
            import torch
            torch.set_num_threads(threads)
        child = np.array(surface_displacement(fault, e, n))
        same = np.allclose(child, parent, rtol=1e-12, atol=1e-14 * np.abs(parent).max())
        os._exit(0 if same else 3)
    assert os.waitpid(pid, 0)[1] == 0
print("ok")
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_usable_in_forked_children():
    """After a fork (multiprocessing, DataLoader workers) the parent's thread pool and
    torch's OpenMP threads are gone: the call must neither hang nor change its values."""
    import subprocess
    import sys
    from pathlib import Path

    plugins = str(Path(__file__).resolve().parents[2] / "build" / "plugins")
    proc = subprocess.run([sys.executable, "-c", _FORK_CHILD.format(plugins=plugins)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# ---------------------------------------------------------------------------------------
# compiled kernel (torch.compile): two flag combinations in all, each ~10-20 s of compile
# where inductor's on-disk cache is empty
# ---------------------------------------------------------------------------------------

#: buried, dipping, strike-slip, dip-slip and opening: eq. (28), no trace terms
OBLIQUE = Fault(east=3e3, north=-7e3, depth=2e3, strike=123.0, dip=61.0, length=15e3,
                width=9e3, rake=-120.0, slip=2.0, opening=0.5)
#: surface-breaking, vertical, all three mechanisms: eq. (29), trace and corners
SURFACE_VERTICAL = replace(OBLIQUE, depth=0.0, dip=90.0)


@pytest.fixture
def compiled(monkeypatch):
    """The compiled kernel switched on (skip where torch.compile is unavailable); the
    switch is restored afterwards."""
    pytest.importorskip("torch")
    monkeypatch.setattr(okada, "_COMPILE", okada._COMPILE)
    if not okada.use_compiled_kernel(True):
        pytest.skip("torch.compile is not supported here")


def _compiled_and_eager(faults, e, n):
    """(compiled, eager numpy) displacement as (3, ...) arrays; the switch is left on."""
    okada.use_compiled_kernel(False)
    eager = np.array(surface_displacement(faults, e, n))
    assert okada.use_compiled_kernel(True)
    return np.array(surface_displacement(faults, e, n)), eager


def _trace_and_random_points(fault, count=20000, seed=6):
    """Random points, then points on the surface trace, its prolongations and the corners."""
    rng = np.random.default_rng(seed)
    e, n = rng.uniform(-30e3, 30e3, (2, count))
    t = np.linspace(-12e3, 12e3, 97)                          # along strike through the ends
    s = math.radians(fault.strike)
    corners = np.array(fault.surface_corners())
    return (np.concatenate([e, fault.east + t * math.sin(s), corners[:, 0]]),
            np.concatenate([n, fault.north + t * math.cos(s), corners[:, 1]]))


@pytest.mark.slow
@pytest.mark.parametrize("fault", [OBLIQUE, SURFACE_VERTICAL],
                         ids=["buried-oblique", "surface-vertical"])
def test_compiled_kernel_equals_eager(compiled, fault):
    """The compiled kernel gives the eager numpy kernel's values to 1e-12 of the peak,
    NaN at the same points (a surface-breaking fault's corners), on and off the trace."""
    e, n = _trace_and_random_points(fault)
    got, eager = _compiled_and_eager(fault, e, n)
    assert np.isnan(eager).any() == (fault.depth == 0)
    assert np.array_equal(np.isnan(got), np.isnan(eager))
    assert_allclose(got, eager, rtol=0, atol=1e-12 * np.nanmax(np.abs(eager)), equal_nan=True)


@pytest.mark.slow
def test_compiled_kernel_new_fault_and_point_count_do_not_recompile(compiled, monkeypatch):
    """After one call, other faults of the same kind (among them Okada 1985 Table 2 case 2
    with the three mechanisms at once: the sum of its rows), other point counts, blocks
    and tensor shapes reuse the compiled graph (dynamo's unique_graphs count) and are right."""
    torch = pytest.importorskip("torch")
    from torch._dynamo.utils import counters

    e, n = _trace_and_random_points(OBLIQUE, count=1000)
    _compiled_and_eager(OBLIQUE, e, n)
    graphs = counters["stats"]["unique_graphs"]
    (x, y, _d, _dip), rows = TABLE2[2]
    case2 = replace(_table2_fault(2, "strike-slip"), rake=45.0, slip=math.sqrt(2.0), opening=1.0)
    got = np.array(surface_displacement(case2, np.full(2, x), np.full(2, y)))  # 1 would be eager
    assert_allclose(got.T, np.tile(np.sum(rows, axis=0), (2, 1)), rtol=5e-4, atol=2e-6)
    monkeypatch.setattr(okada, "COMPILED_BLOCK_POINTS", 1000)   # 3 blocks of 834 or 833
    other = Fault(east=-5e3, north=4e3, depth=4e3, strike=310.0, dip=35.0, length=8e3,
                  width=5e3, rake=30.0, slip=1.3, opening=0.2)
    rng = np.random.default_rng(7)
    for shape in [(2501,), (7,), (40, 31)]:
        e, n = rng.uniform(-30e3, 30e3, (2,) + shape)
        got, eager = _compiled_and_eager([other, OBLIQUE], e, n)
        assert_allclose(got, eager, rtol=0, atol=1e-12 * np.abs(eager).max())
    tensors = surface_displacement(other, torch.from_numpy(e), torch.from_numpy(n))
    assert_allclose(torch.stack(tensors).numpy(), np.array(surface_displacement(other, e, n)),
                    rtol=0, atol=1e-15)
    assert counters["stats"]["unique_graphs"] == graphs


def test_failing_compile_falls_back_to_eager_with_one_warning(compiled, monkeypatch):
    """Where torch.compile fails (no C++ compiler, unsupported platform), the call warns
    once, returns the eager values and the compiled kernel stays off."""
    torch = pytest.importorskip("torch")

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(okada, "_COMPILED_TERMS", {})
    monkeypatch.setattr(torch, "compile", no_compiler)
    e, n = _trace_and_random_points(OBLIQUE, count=1000)
    okada.use_compiled_kernel(False)
    eager = np.array(surface_displacement(OBLIQUE, e, n))
    assert okada.use_compiled_kernel(True)
    with pytest.warns(RuntimeWarning, match=r"no C\+\+ compiler found.*eager kernel is used"):
        got = np.array(surface_displacement(OBLIQUE, e, n))
    assert_array_equal(got, eager)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_array_equal(np.array(surface_displacement(OBLIQUE, e, n)), eager)


_SWITCH_CHILD = r"""
import os, sys
sys.path.insert(0, {plugins!r})
from insar_gnss_3d.core import okada
print(okada._COMPILE, "torch" in sys.modules)
pid = os.fork()
if pid == 0:                        # with torch inherited (OpenMP may hang after a fork): off
    inherited = "torch" in sys.modules
    os._exit(3 if okada._COMPILE or (inherited and okada.use_compiled_kernel(True)) else 0)
assert os.waitpid(pid, 0)[1] == 0
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_compile_switch_from_environment_and_off_in_forked_children():
    """INSAR_GNSS_3D_OKADA_COMPILE=1 switches the compiled kernel on at import (otherwise
    it is off and torch not imported); a forked child that inherited torch never uses it."""
    pytest.importorskip("torch")
    import os
    import subprocess
    import sys
    from pathlib import Path

    plugins = str(Path(__file__).resolve().parents[2] / "build" / "plugins")
    for value, expected in (("1", "True True"), ("0", "False False")):
        env = {**os.environ, "INSAR_GNSS_3D_OKADA_COMPILE": value}
        proc = subprocess.run([sys.executable, "-c", _SWITCH_CHILD.format(plugins=plugins)],
                              capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0 and proc.stdout.strip() == expected, proc.stderr


# ---------------------------------------------------------------------------------------
# vertical faults and singular points
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("slip", [dict(rake=0.0, slip=1.0), dict(rake=90.0, slip=1.0),
                                  dict(rake=0.0, slip=0.0, opening=1.0)],
                         ids=_MECHANISMS)
def test_dip_90_exact_and_continuous(slip):
    """Dip 90 is computed as 90 (eq. 29) and the field is smooth through it: the change
    from dip 90 - d to 90 is proportional to d from d = 0.1 deg down to 1e-6 deg (no step
    at the switch between eq. 28 and eq. 29, no cancellation blow-up near vertical)."""
    fault = Fault(east=0.0, north=0.0, depth=2e3, strike=30.0, dip=90.0, length=20e3,
                  width=10e3, **slip)
    rng = np.random.default_rng(5)
    e, n = rng.uniform(-30e3, 30e3, (2, 3000))
    vertical = np.array(surface_displacement(fault, e, n))
    assert np.isfinite(vertical).all()
    peak = np.abs(vertical).max()
    close = np.array(surface_displacement(replace(fault, dip=89.9999), e, n))
    assert_allclose(close, vertical, rtol=0, atol=1e-5 * peak)
    rates = [np.abs(np.array(surface_displacement(replace(fault, dip=90.0 - d), e, n))
                    - vertical).max() / (peak * d)
             for d in (1e-1, 1e-2, 1e-3, 2e-4, 1e-4, 1e-5, 1e-6)]
    assert_allclose(rates, rates[2], rtol=0.01)


@pytest.mark.parametrize("strike", [90.0, 30.0, 0.0, 247.0])
@pytest.mark.parametrize("dip", [60.0, 90.0])
@pytest.mark.parametrize("slip", [dict(rake=0.0, slip=1.0), dict(rake=90.0, slip=1.0),
                                  dict(rake=0.0, slip=0.0, opening=1.0)],
                         ids=_MECHANISMS)
def test_surface_trace_is_mean_of_both_sides(strike, dip, slip):
    """Points on the trace of a surface-breaking fault get the mean of the values 1 mm on
    either side, finite; the jump across the trace is the slip vector (hanging wall, on
    the right of strike, minus footwall) or the opening."""
    fault = Fault(east=1e3, north=-2e3, depth=0.0, strike=strike, dip=dip, length=10e3,
                  width=5e3, **slip)
    t = np.linspace(-4.5e3, 4.5e3, 19)                       # along the trace, not its ends
    cos_s, sin_s = math.cos(math.radians(strike)), math.sin(math.radians(strike))
    e0, n0 = fault.east + t * sin_s, fault.north + t * cos_s
    step = 1e-3                                               # towards the dip direction
    right = np.array(surface_displacement(fault, e0 + step * cos_s, n0 - step * sin_s))
    left = np.array(surface_displacement(fault, e0 - step * cos_s, n0 + step * sin_s))
    on = np.array(surface_displacement(fault, e0, n0))
    assert np.isfinite(on).all()
    assert_allclose(on, (right + left) / 2, rtol=0, atol=1e-5)
    rake, d = math.radians(fault.rake), math.radians(dip)
    along = np.array([sin_s, cos_s, 0.0])
    updip = np.array([-cos_s * math.cos(d), sin_s * math.cos(d), math.sin(d)])
    normal = np.array([cos_s * math.sin(d), -sin_s * math.sin(d), math.cos(d)])  # to the hanging wall
    jump = fault.slip * (math.cos(rake) * along + math.sin(rake) * updip) + fault.opening * normal
    assert_allclose((right - left).T, np.broadcast_to(jump, (t.size, 3)), rtol=0, atol=1e-5)


GRID_FAULTS = {
    "buried-dipping": Fault(east=0.0, north=0.0, depth=2e3, strike=90.0, dip=30.0,
                            length=10e3, width=8e3, rake=45.0, slip=1.0, opening=0.3),
    "buried-vertical": Fault(east=0.0, north=0.0, depth=2e3, strike=0.0, dip=90.0,
                             length=10e3, width=8e3, rake=45.0, slip=1.0, opening=0.3),
    "sill": Fault(east=0.0, north=0.0, depth=1e3, strike=90.0, dip=0.0, length=10e3,
                  width=8e3, rake=45.0, slip=1.0, opening=0.3),
    "surface-dipping": Fault(east=0.0, north=0.0, depth=0.0, strike=90.0, dip=60.0,
                             length=10e3, width=8e3, rake=45.0, slip=1.0, opening=0.3),
    "surface-vertical": Fault(east=0.0, north=0.0, depth=0.0, strike=0.0, dip=90.0,
                              length=10e3, width=8e3, rake=45.0, slip=1.0, opening=0.3),
    "surface-oblique": Fault(east=0.0, north=0.0, depth=0.0, strike=30.0, dip=45.0,
                             length=10e3, width=8e3, rake=45.0, slip=1.0, opening=0.3),
}


@pytest.mark.parametrize("name", sorted(GRID_FAULTS))
def test_no_nan_on_grid_through_corners(name):
    """A dense grid whose lines pass through the surface projections of all four corners
    (and the trace, its prolongations, the lines xi = 0 and eta = 0) is finite everywhere
    except, for a surface-breaking fault, exactly at its two surface corners, where the
    displacement has no limit and NaN is returned."""
    fault = GRID_FAULTS[name]
    corners = np.array(fault.surface_corners())
    if fault.strike % 90 == 0:
        xs = np.unique(np.concatenate([np.linspace(-20e3, 20e3, 161), corners[:, 0]]))
        ys = np.unique(np.concatenate([np.linspace(-20e3, 20e3, 161), corners[:, 1]]))
        e, n = (a.ravel() for a in np.meshgrid(xs, ys))
    else:  # oblique: the grid in the fault's own axes, rotated
        a = np.unique(np.concatenate([np.linspace(-20e3, 20e3, 161), [-5e3, 5e3]]))
        b = np.unique(np.concatenate([np.linspace(-20e3, 20e3, 161), [0.0]]))
        along, right = (g.ravel() for g in np.meshgrid(a, b))
        s = math.radians(fault.strike)
        e = along * math.sin(s) + right * math.cos(s)
        n = along * math.cos(s) - right * math.sin(s)
        e, n = np.append(e, corners[:, 0]), np.append(n, corners[:, 1])
    u = np.array(surface_displacement(fault, e, n))
    bad = ~np.isfinite(u).all(axis=0)
    if fault.depth > 0:
        assert not bad.any()
    else:
        top = corners[:2]
        at_corner = np.zeros_like(bad)
        for ce, cn in top:
            at_corner |= np.hypot(e - ce, n - cn) < 1e-6
        assert at_corner.any()
        assert np.array_equal(bad, at_corner)
        assert np.isnan(u[:, at_corner]).all()
    assert np.abs(u[:, ~bad]).max() < 10.0                  # metres for a 1 m slip


# ---------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------

_GOOD = dict(east=0.0, north=0.0, depth=1e3, strike=0.0, dip=45.0, length=1e3, width=1e3,
             rake=0.0, slip=1.0)


@pytest.mark.parametrize("changes, words", [
    (dict(depth=-1.0), "-1.0"),
    (dict(dip=95.0), "95.0"),
    (dict(dip=-5.0), "-5.0"),
    (dict(length=0.0), "0.0 m"),
    (dict(width=-3.0), "-3.0 m"),
    (dict(strike=float("nan")), "strike must be a finite number, got nan"),
    (dict(slip=float("inf")), "slip must be a finite number, got inf"),
    (dict(opening=float("-inf")), "opening must be a finite number, got -inf"),
    (dict(dip=0.0, depth=0.0), "depth 0 m"),
])
def test_invalid_fault_raises_value_error_naming_the_value(changes, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        Fault(**{**_GOOD, **changes})


def test_invalid_call_arguments():
    fault = Fault(**_GOOD)
    e = np.zeros(3)
    with pytest.raises(ValueError, match=re.escape("0.5")):
        surface_displacement(fault, e, e, nu=0.5)
    with pytest.raises(ValueError, match="same shape"):
        surface_displacement(fault, e, np.zeros(4))
    with pytest.raises(ValueError, match="at least one fault"):
        surface_displacement([], e, e)
    with pytest.raises(TypeError, match="dict"):
        surface_displacement([_GOOD], e, e)
