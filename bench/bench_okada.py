"""Okada speed: ``core.okada.surface_displacement`` against pyrocko's compiled DC3D.

``run()`` is called by ``bench/run_bench.py``; ``python bench/bench_okada.py`` runs it alone.
One fault (the DESIGN.md example: 40 x 25 km thrust, strike 200, dip 15, top at 5 km, 1 m
of slip), 1,000,000 observation points spread over 200 x 200 km, float64, CPU. Timed in
the same process, alternately, best of ``repeats``:

* ours, numpy arrays in (blocks on a thread pool, one worker per core);
* ours, CPU torch tensors in (the same numpy kernel on zero-copy views);
* ours, the torch kernel that tensors on a GPU or needing gradients take, run on the CPU;
* ours, the same kernel compiled by ``torch.compile`` (inductor), numpy arrays in (switched
  on only for this row; its first call, printed, includes the compile: cold, or warm from
  inductor's on-disk cache of an earlier run);
* pyrocko ``modelling.okada_ext.okada`` (Okada 1992 DC3D in C with OpenMP, one thread per
  core and one thread; it also returns the nine displacement derivatives, which DC3D
  computes anyway).

Points per second (wall clock) and per CPU-second (process CPU time, all threads) are both
printed: on a machine shared with other work the second is the steadier comparison.

Conventions (checked, not assumed: the maximum difference is printed and must be below
1e-10 of the peak on the timed field and on three mechanisms of a second fault, for the
eager and the compiled kernel; the latter compiles three more kinds of fault for it):
pyrocko's source is ``(north, east, depth, strike, dip, al1, al2, aw1, aw2)`` with the
reference point at our top-edge centre, ``al`` along strike in [-L/2, L/2] and ``aw`` up-dip
in [-W, 0]; dislocations ``(slip cos rake, slip sin rake, opening)``; receivers and
displacements are north-east-down, so ``up = -down``; lambda = mu gives nu = 0.25. Dip 90
is avoided because pyrocko turns it into 89.99.
"""

from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np

POINTS = 1_000_000


def _points(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-100e3, 100e3, n), rng.uniform(-100e3, 100e3, n)


def _pyrocko_kernel():
    """pyrocko's compiled Okada, or None with the reason."""
    try:
        from pyrocko.modelling import okada_ext
    except ImportError as exc:
        return None, f"{exc} (make bench installs it with pip)"
    return okada_ext, None


def _pyrocko_displacement(okada_ext, fault, east, north, nu=0.25, threads=0):
    """(ue, un, uu) of our Fault from pyrocko's DC3D (conventions in the module docstring)."""
    mu = 32e9
    lam = 2.0 * mu * nu / (1.0 - 2.0 * nu)
    patch = np.array([[fault.north, fault.east, fault.depth, fault.strike, fault.dip,
                       -fault.length / 2.0, fault.length / 2.0, -fault.width, 0.0]])
    rake = math.radians(fault.rake)
    disl = np.array([[fault.slip * math.cos(rake), fault.slip * math.sin(rake), fault.opening]])
    receivers = np.ascontiguousarray(np.stack([north, east, np.zeros_like(east)], axis=1))
    out = okada_ext.okada(patch, disl, receivers, lam, mu, nthreads=threads)
    return out[:, 1], out[:, 0], -out[:, 2]


def _timed(fn):
    """(wall seconds, process CPU seconds over all threads, result)."""
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, result


def _check_conventions(okada_ext, fault_class, surface_displacement):
    """Largest |ours - pyrocko| / peak over three mechanisms of an oblique fault."""
    east, north = _points(20_000, seed=1)
    worst = 0.0
    for slip in (dict(rake=0.0, slip=1.0), dict(rake=90.0, slip=1.0),
                 dict(rake=0.0, slip=0.0, opening=1.0), dict(rake=-120.0, slip=2.0, opening=0.5)):
        fault = fault_class(east=3e3, north=-7e3, depth=2e3, strike=123.0, dip=61.0, length=15e3,
                      width=9e3, **slip)
        ours = np.array(surface_displacement(fault, east, north))
        theirs = np.array(_pyrocko_displacement(okada_ext, fault, east, north))
        worst = max(worst, float(np.abs(ours - theirs).max() / np.abs(ours).max()))
    return worst


def run(points=POINTS, repeats=3):
    """Time the paths; print and return the figures (points per second, ratios, differences)."""
    import torch

    from insar_gnss_3d.core import okada
    from insar_gnss_3d.core.okada import Fault, surface_displacement

    fault = Fault(east=0.0, north=0.0, depth=5e3, strike=200.0, dip=15.0, length=40e3,
                  width=25e3, rake=90.0, slip=1.0)
    east, north = _points(points)
    te, tn = torch.from_numpy(east), torch.from_numpy(north)
    pyrocko, why_not = _pyrocko_kernel()
    cores = okada._workers()

    def torch_kernel():
        with torch.no_grad():
            return okada._torch_displacement(okada._terms(fault, 0.25), te, tn)

    def switched(fn):
        """fn with the compiled kernel on (off again afterwards: the other rows are eager)."""
        def on(*args):
            assert okada.use_compiled_kernel(True)
            try:
                return fn(*args)
            finally:
                okada.use_compiled_kernel(False)
        return on

    paths = {
        "ours numpy": lambda: np.array(surface_displacement(fault, east, north)),
        "ours torch (CPU tensors)": lambda: torch.stack(surface_displacement(fault, te, tn)).numpy(),
        "ours torch kernel (GPU/autograd path, on CPU)": lambda: torch_kernel().numpy(),
    }
    was_compiled = okada._COMPILE
    compiled_name = "ours compiled (torch.compile, inductor)"
    compiled_note = "skipped, torch.compile is not supported here"
    if okada.use_compiled_kernel(True):
        from torch._dynamo.utils import counters

        okada.use_compiled_kernel(False)
        compiled = switched(lambda: np.array(surface_displacement(fault, east, north)))
        hits = counters["inductor"]["fxgraph_cache_hit"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first_call = _timed(compiled)[0]           # compiles: time of the first call
        warm = counters["inductor"]["fxgraph_cache_hit"] > hits
        compiled_note = (f"first call {first_call:.1f} s "
                         f"({'warm, from inductor on-disk cache' if warm else 'cold compile'})")
        failed = [w.message for w in caught if "compiled Okada kernel" in str(w.message)]
        if failed:
            compiled_note = f"skipped, {failed[0]}"
        else:
            paths[compiled_name] = compiled
    peers = []
    if pyrocko is not None:
        for threads in sorted({cores, 1}, reverse=True):
            name = f"pyrocko DC3D (C, OpenMP, {threads} thread{'s' if threads > 1 else ''})"
            paths[name] = (lambda t=threads: np.array(
                _pyrocko_displacement(pyrocko, fault, east, north, threads=t)))
            peers.append(name)
    for fn in paths.values():  # warm-up: imports, thread pool, page faults
        fn()
    wall = {name: [] for name in paths}
    cpu = {name: [] for name in paths}
    fields = {}
    for _ in range(repeats):  # alternate so every path sees the same machine state
        for name, fn in paths.items():
            w, c, fields[name] = _timed(fn)
            wall[name].append(w)
            cpu[name].append(c)
    result = {"points": points, "cores": cores, "torch_threads": torch.get_num_threads()}
    peak = float(np.abs(fields["ours numpy"]).max())
    print(f"Okada surface displacement, {points:,} points, float64, one fault, CPU with "
          f"{cores} core(s) (load average {os.getloadavg()[0]:.1f}); best of {repeats}:")
    for name in paths:
        rate, cpu_rate = points / min(wall[name]), points / min(cpu[name])
        diff = float(np.abs(fields[name] - fields["ours numpy"]).max())
        result[name] = {"points_per_s": rate, "points_per_cpu_s": cpu_rate, "max_abs_diff_m": diff}
        print(f"  {name:47s} {rate / 1e6:6.2f} M points/s  ({cpu_rate / 1e6:5.2f} M per CPU-s)"
              f"  max |diff| to ours numpy {diff:.1e} m (peak {peak:.3f} m)")
    if compiled_name in paths:
        result[compiled_name]["first_call_s"] = first_call
    print(f"  {compiled_name}: {compiled_note}")
    if pyrocko is None:
        print(f"  pyrocko: skipped, cannot import pyrocko.modelling.okada_ext: {why_not}")
        okada.use_compiled_kernel(was_compiled)
        return result
    # against pyrocko's best: fastest wall clock, and fewest CPU-seconds (OpenMP threads
    # that wait at a barrier on a busy machine burn CPU, so one thread is its best there)
    best_wall = min(min(wall[p]) for p in peers)
    best_cpu = min(min(cpu[p]) for p in peers)
    ours = ("ours numpy", "ours torch (CPU tensors)", compiled_name)
    for name in [name for name in ours if name in paths]:
        ratio = best_wall / min(wall[name])
        cpu_ratio = best_cpu / min(cpu[name])
        result[f"ratio {name} / pyrocko"] = ratio
        result[f"cpu ratio {name} / pyrocko"] = cpu_ratio
        print(f"  {name} is {ratio:.1f}x as fast as pyrocko's best ({cpu_ratio:.1f}x per CPU-second)")
    worst = _check_conventions(pyrocko, Fault, surface_displacement)
    timed = max(result[p]["max_abs_diff_m"] for p in peers) / peak
    result["max_relative_diff_to_pyrocko"] = max(worst, timed)
    verdict = "identical to rounding" if max(worst, timed) < 1e-10 else "DIFFERENT"
    print(f"  ours vs pyrocko: max |diff| / peak {timed:.1e} on the timed field, {worst:.1e} over "
          f"strike-slip, dip-slip, tensile and oblique slip on a 61-deg fault -> {verdict}")
    if compiled_name in paths:
        seconds, _, worst = _timed(lambda: _check_conventions(pyrocko, Fault,
                                                              switched(surface_displacement)))
        timed = max(float(np.abs(fields[compiled_name] - fields[p]).max()) for p in peers) / peak
        result["max_relative_diff_compiled_to_pyrocko"] = max(worst, timed)
        verdict = "identical to rounding" if max(worst, timed) < 1e-10 else "DIFFERENT"
        print(f"  ours compiled vs pyrocko: max |diff| / peak {timed:.1e} on the timed field, "
              f"{worst:.1e} over the four mechanisms ({seconds:.1f} s with their compiles) "
              f"-> {verdict}")
    okada.use_compiled_kernel(was_compiled)
    return result


if __name__ == "__main__":
    import sys
    from pathlib import Path

    plugins = Path(__file__).resolve().parents[1] / "build" / "plugins"
    sys.path.insert(0, str(plugins))
    run()
