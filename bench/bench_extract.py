"""End-to-end cost of extractdisplacement's core path: prepare + tiled network + write back.

``run()`` is called by ``bench/run_bench.py``; ``python bench/bench_extract.py`` runs it alone.

Two cases, each in its own subprocess so that the peak resident memory (``VmHWM`` of
/proc/self/status, which counts GDAL's and torch's allocations, unlike tracemalloc, and
starts afresh at exec, unlike ``ru_maxrss``, which keeps the parent's peak) belongs to that
case alone:

* ``1k``: a 1000 x 1000 pixel scene at 1 km (UTM), 2 tracks with every acquisition of a
  12-day revisit, DEM and LOS rasters on the same grid, a GNSS network at ~30 km spacing,
  the default (full-size, untrained) network: the working grid is the input grid, so the
  figure is the cost of preparation and of the network. Reported: wall time per stage, the
  time spent inside the network's forward pass and the share of the time outside it
  (goal: under half).
* ``10k``: the same scene at 100 m (10000 x 10000 pixels per band, 4 epochs per track, DEM
  and LOS at 100 m too): the warp to the 1 km working grid and the write-back must stream,
  so the peak memory stays bounded (goal: under 2 GB).

Inputs are written once into a temporary folder (about 5 GB for ``10k``) and removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZE = 1000
PIXEL_M = 1000.0
FINE = 10


def _scene_files(folder: Path):
    """Write the 1 km scene (synthetic sampler, real physics and noise) and its GNSS arrays."""
    import numpy as np

    from insar_gnss_3d.core.geometry import Grid
    from insar_gnss_3d.core.raster import crs_wkt_from_epsg, write_raster
    from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler, scene_arrays

    config = SceneConfig(size_px=SIZE, pixel_m=PIXEL_M, revisit_days=(12,), station_spacing_m=(30e3, 30e3),
                         max_stations=5000, length_m=(100e3, 300e3), width_m=(50e3, 150e3),
                         correlation_length_m=(20e3, 40e3), max_displacement_m=(0.5, 0.5),
                         sea_probability=0.0, frame_edge_probability=0.0, track_dropout_probability=0.0)
    arrays = scene_arrays(SceneSampler(config, seed=11).sample(1), 0)
    grid = Grid(200_000.0, 4_100_000.0, PIXEL_M, SIZE, SIZE, crs_wkt_from_epsg(32653))
    start = np.datetime64("2024-01-01")
    paths = {}
    for t, key in enumerate(("asc", "desc")):
        dates = [str(start + int(d)) for d in arrays.acq_days[t]]
        paths[key] = str(folder / f"{key}.tif")
        write_raster(paths[key], grid, arrays.insar_m[t], dates)
        paths[f"los_{key}"] = str(folder / f"los_{key}.tif")
        write_raster(paths[f"los_{key}"], grid, arrays.los[t], ("east", "north", "up"))
    paths["dem"] = str(folder / "dem.tif")
    write_raster(paths["dem"], grid, arrays.dem_m[None], ("elevation_m",))
    xy = arrays.gnss_xy_m.astype(np.float64)
    np.savez(folder / "gnss.npz", dates=start + np.arange(arrays.gnss_m.shape[1]), enu=arrays.gnss_m,
             x=grid.x0 + xy[:, 0], y=grid.y0 + xy[:, 1])
    return paths


def _fine_files(paths, folder: Path, epochs=4):
    """The same scene at PIXEL_M / FINE, written by GDAL's warper (streaming, no Python arrays)."""
    from osgeo import gdal

    fine = {}
    options = dict(xRes=PIXEL_M / FINE, yRes=PIXEL_M / FINE, resampleAlg="bilinear", srcNodata="nan",
                   dstNodata="nan", multithread=True, warpMemoryLimit=256 * 2 ** 20,
                   creationOptions=["TILED=YES", "BIGTIFF=YES"])
    for key, path in paths.items():
        ds = gdal.Open(path)
        bands = list(range(1, ds.RasterCount + 1))
        if key in ("asc", "desc"):
            n = ds.RasterCount
            bands = sorted({1, n // 3 + 1, 2 * n // 3 + 1, n})[:epochs]
        src = gdal.Translate("", ds, format="VRT", bandList=bands)
        for i, b in enumerate(bands):
            src.GetRasterBand(i + 1).SetDescription(ds.GetRasterBand(b).GetDescription())
        fine[key] = str(folder / f"fine_{key}.tif")
        gdal.Warp(fine[key], src, **options)
        out = gdal.Open(fine[key], gdal.GA_Update)
        for i, b in enumerate(bands):
            out.GetRasterBand(i + 1).SetDescription(ds.GetRasterBand(b).GetDescription())
        out = None
    return fine


def _case(paths_json: str, gnss_npz: str, out_path: str):
    """One end-to-end run (in a subprocess); prints a JSON line of figures."""
    import numpy as np
    import torch
    from osgeo import gdal

    from insar_gnss_3d.core import prepare
    from insar_gnss_3d.core.model import DualBranchNet, ModelConfig
    from insar_gnss_3d.core.synthetic import SceneConfig

    paths = json.loads(paths_json)
    g = np.load(gnss_npz)
    scene = SceneConfig()                                  # the default recipe: 16 epochs, 1 km
    torch.manual_seed(0)
    net = DualBranchNet(ModelConfig(epochs=scene.model_epochs, gnss_days=scene.gnss_days)).eval()

    class Timed(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.seconds, self.calls = inner, 0.0, 0
            self.config = inner.config          # tiled inference reads the architecture

        def gnss_prior(self, inputs, height, width):
            return self.inner.gnss_prior(inputs, height, width)

        def forward(self, inputs):
            t0 = time.perf_counter()
            out = self.inner(inputs)
            self.seconds += time.perf_counter() - t0
            self.calls += 1
            return out

    model = Timed(net)
    names = [f"S{i}" for i in range(len(g["x"]))]
    peaks = {}
    phase = ["start"]

    def watch():                     # resident memory of each stage, sampled every 20 ms
        while True:
            with open("/proc/self/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024.0
            peaks[phase[0]] = max(peaks.get(phase[0], 0.0), rss)
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()
    t0 = time.perf_counter()
    phase[0] = "prepare"
    asc = prepare.TrackSource("INSAR_ASC", (paths["asc"],), paths["los_asc"])
    desc = prepare.TrackSource("INSAR_DESC", (paths["desc"],), paths["los_desc"])
    prepared = prepare.prepare_scene(asc, desc, paths["dem"], g["dates"], g["enu"], g["x"], g["y"], names, scene)
    t1 = time.perf_counter()
    phase[0] = "network"
    result = prepare.run_model(prepared, model, tile_px=128, overlap_px=32)
    t2 = time.perf_counter()
    phase[0] = "write"
    grid, tracks, stations = prepared.grid, prepared.tracks, len(prepared.stations)
    del prepared                     # as the algorithm does: only the result is needed now
    prepare.write_result(result, grid, paths["asc"], out_path, tracks)
    t3 = time.perf_counter()
    with open("/proc/self/status") as f:
        rss_mb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024.0
    print(json.dumps({"prepare_s": t1 - t0, "infer_s": t2 - t1, "write_s": t3 - t2, "total_s": t3 - t0,
                      "rss_mb_by_stage": {k: round(v) for k, v in peaks.items()},
                      "forward_s": model.seconds, "tiles": model.calls, "stations": stations,
                      "working_grid": [grid.width, grid.height],
                      "input_pixels": gdal.Open(paths["asc"]).RasterXSize,
                      "threads": torch.get_num_threads(), "peak_rss_mb": rss_mb}))


def _run_case(paths, gnss, out_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "build" / "plugins"))
    code = ("import sys; sys.path.insert(0, %r); import bench_extract as b; b._case(*sys.argv[1:])"
            % str(Path(__file__).parent))
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(paths), str(gnss), str(out_path)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout + proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(fine: bool = True):
    """Both cases; prints and returns the figures.

    ``BENCH_EXTRACT_DIR=<folder>`` keeps the inputs there (and reuses them on the next run)
    instead of a temporary folder.
    """
    keep = os.environ.get("BENCH_EXTRACT_DIR")
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        folder = Path(keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        return _run_in(folder, fine, reuse=bool(keep))


def _run_in(folder: Path, fine: bool, reuse: bool):
    results = {}
    names = ("asc", "desc", "los_asc", "los_desc", "dem")
    paths = {k: str(folder / f"{k}.tif") for k in names}
    if not (reuse and all(os.path.exists(p) for p in paths.values()) and (folder / "gnss.npz").exists()):
        t0 = time.perf_counter()
        paths = _scene_files(folder)
        print(f"1k inputs written in {time.perf_counter() - t0:.0f} s")
    r = _run_case(paths, folder / "gnss.npz", folder / "out_1k.tif")
    r["outside_forward_share"] = 1.0 - r["forward_s"] / r["total_s"]
    results["1k"] = r
    print(f"1000 x 1000 px at 1 km, {r['stations']} GNSS stations, {r['tiles']} tiles of 128 px, "
          f"{r['threads']} threads: total {r['total_s']:.1f} s = prepare {r['prepare_s']:.1f} + "
          f"network {r['infer_s']:.1f} (forward {r['forward_s']:.1f}) + write {r['write_s']:.1f}; "
          f"outside the forward pass {100 * r['outside_forward_share']:.0f} %; peak RSS "
          f"{r['peak_rss_mb']:.0f} MB {r['rss_mb_by_stage']}")
    if fine:
        big = {k: str(folder / f"fine_{k}.tif") for k in names}
        if not (reuse and all(os.path.exists(p) for p in big.values())):
            t0 = time.perf_counter()
            big = _fine_files(paths, folder)
            print(f"10k inputs written in {time.perf_counter() - t0:.0f} s")
        r = _run_case(big, folder / "gnss.npz", folder / "out_10k.tif")
        r["outside_forward_share"] = 1.0 - r["forward_s"] / r["total_s"]
        results["10k"] = r
        print(f"10000 x 10000 px at 100 m (4 epochs per track, DEM and LOS at 100 m): total "
              f"{r['total_s']:.1f} s = prepare {r['prepare_s']:.1f} + network {r['infer_s']:.1f} + "
              f"write {r['write_s']:.1f}; peak RSS {r['peak_rss_mb']:.0f} MB (goal < 2048 MB) "
              f"{r['rss_mb_by_stage']}")
    return results


if __name__ == "__main__":
    run(fine="--no-fine" not in sys.argv)
