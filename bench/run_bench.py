"""Run every ``bench/bench_*.py`` module's ``run()`` in turn (``make bench``).

Each module times our code against a named peer in the same process and prints its own
figures and ratios. ``python bench/run_bench.py okada ssim`` runs only the modules whose
names contain one of the words. Exit status 1 if a module failed (the others still run).
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _importable():
    """Make ``import insar_gnss_3d`` work without ``make`` having exported PYTHONPATH."""
    plugins = REPO / "build" / "plugins"
    if (plugins / "insar_gnss_3d").exists() and str(plugins) not in sys.path:
        sys.path.insert(0, str(plugins))


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"bench_modules.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    """Run the selected bench modules; return the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    _importable()
    paths = sorted(HERE.glob("bench_*.py"))
    if words:
        paths = [p for p in paths if any(w in p.stem for w in words)]
    if not paths:
        print(f"no bench module matches {words}", file=sys.stderr)
        return 1
    failed = []
    for path in paths:
        print(f"== {path.stem} ==", flush=True)
        start = time.perf_counter()
        try:
            _load(path).run()
        except Exception:  # one broken bench must not hide the others' figures
            traceback.print_exc()
            failed.append(path.stem)
        print(f"   ({time.perf_counter() - start:.1f} s)\n", flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
