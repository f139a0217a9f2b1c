"""Real example: the 2015 Mw 8.3 Illapel (Chile) earthquake, one descending Sentinel-1 track.

Data (``resources/real/illapel_2015/``, MIT licence of GTDef, provenance in its README):
1247 quadtree points of the coseismic descending LOS (interferogram 2015-08-24 / 2015-09-17)
and the coseismic offsets of 14 GNSS stations.

How the points become what ``extractdisplacement`` reads (documented choices):

* **InSAR**: the quadtree points are interpolated linearly (Delaunay triangles,
  ``scipy.interpolate.griddata``) onto a 2 km grid in UTM 19S, NaN outside the triangles
  and farther than :data:`MAX_GAP_M` from any point; two epochs, 2015-08-24 (zero) and
  2015-09-17 (the LOS), as a 2-band raster with the dates as band descriptions.
* **LOS**: the constant ground-to-satellite unit vector of the file (E 0.634, N -0.170,
  U 0.755), a 3-band raster on the same grid.
* **DEM**: none is shipped for Chile; a sea-level DEM (the stratified delay of one
  coseismic pair is small against metres of motion).
* **GNSS**: a 121-day daily series per station from 2015-07-20: zero before the event day
  (2015-09-16), the offset after, plus white noise of the station's stated sigma (seeded),
  so that the series' scatter carries the sigma.

Run ``PYTHONPATH=build/plugins .venv/bin/python scripts/illapel_example.py [--loo]``; it
prints the LOS residual of each method against the track, the largest |output| against the
largest observation and, with ``--loo``, the leave-one-station-out 3-D errors of the stations
within 150 km of the largest offset.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "resources" / "real" / "illapel_2015"
#: Grid of the input rasters [m] and the largest distance to a quadtree point kept [m].
PIXEL_M = 2000.0
MAX_GAP_M = 20e3
EVENT = np.datetime64("2015-09-16")
WINDOW_START = np.datetime64("2015-07-20")
EPOCHS = ("2015-08-24", "2015-09-17")
LOS_UNIT = (0.634, -0.170, 0.755)
UTM_EPSG = 32719
#: Stations whose leave-one-out error is judged: within this distance of the largest offset.
LOO_RADIUS_M = 150e3


def read_csv(path):
    """Rows of a CSV file as dicts."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _to_utm(lon, lat):
    from osgeo import osr
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(4326)
    dst.ImportFromEPSG(UTM_EPSG)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    t = osr.CoordinateTransformation(src, dst)
    xy = np.array([t.TransformPoint(float(a), float(b))[:2] for a, b in zip(lon, lat)])
    return xy[:, 0], xy[:, 1]


def build_inputs(folder):
    """Rasters and GNSS arrays of the example in ``folder``; returns a dict of paths and arrays."""
    from scipy.interpolate import griddata
    from scipy.spatial import cKDTree

    from insar_gnss_3d.core.geometry import Grid
    from insar_gnss_3d.core.raster import crs_wkt_from_epsg, write_raster

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    points = read_csv(DATA / "insar_dsc.csv")
    lon = np.array([float(p["lon"]) for p in points])
    lat = np.array([float(p["lat"]) for p in points])
    los_m = np.array([float(p["los_m"]) for p in points])
    px, py = _to_utm(lon, lat)
    grid = Grid.from_extent(px.min() - PIXEL_M, py.min() - PIXEL_M, px.max() + PIXEL_M, py.max() + PIXEL_M,
                            PIXEL_M, crs_wkt=crs_wkt_from_epsg(UTM_EPSG))
    gx, gy = grid.centres()
    field = griddata(np.c_[px, py], los_m, (gx, gy), method="linear")
    gap, _ = cKDTree(np.c_[px, py]).query(np.c_[gx.ravel(), gy.ravel()])
    field[gap.reshape(field.shape) > MAX_GAP_M] = np.nan
    covered = np.isfinite(field)
    insar = np.stack([np.where(covered, 0.0, np.nan), field]).astype(np.float32)
    unit = np.stack([np.where(covered, c, np.nan) for c in LOS_UNIT]).astype(np.float32)
    paths = {"INSAR_DESC": str(folder / "illapel_dsc_los.tif"), "LOS_DESC": str(folder / "illapel_dsc_unit.tif"),
             "DEM": str(folder / "illapel_sea_level_dem.tif")}
    write_raster(paths["INSAR_DESC"], grid, insar, EPOCHS)
    write_raster(paths["LOS_DESC"], grid, unit, ("east", "north", "up"), unit="")
    write_raster(paths["DEM"], grid, np.zeros((1, grid.height, grid.width), np.float32), ("elevation",))

    stations = read_csv(DATA / "gnss.csv")
    names = [s["station"] for s in stations]
    sx, sy = _to_utm([s["lon"] for s in stations], [s["lat"] for s in stations])
    offset = np.array([[float(s[k]) for k in ("de_m", "dn_m", "du_m")] for s in stations])
    sigma = np.array([[float(s[k]) for k in ("se_m", "sn_m", "su_m")] for s in stations])
    dates = WINDOW_START + np.arange(121)
    after = (dates >= EVENT)[None, :, None]
    rng = np.random.default_rng(2015)
    enu = np.where(after, offset[:, None, :], 0.0) + rng.normal(0.0, 1.0, (len(names), 121, 3)) * sigma[:, None, :]
    return {**paths, "dates": dates, "enu_m": enu, "x": sx, "y": sy, "stations": names, "offset_m": offset,
            "points_xy_m": np.c_[px, py], "points_los_m": los_m}


def run_example(folder, loo: bool = False, device: str = "cpu", model_path: str = "",
                working_pixel_m: float = 0.0) -> dict:
    """The one-track extraction, the joint peer and (``loo``) the leave-one-out check; figures."""
    from insar_gnss_3d.core import prepare
    from insar_gnss_3d.core.runtime import BUNDLED_MODEL
    from insar_gnss_3d.core.consistency import consistent_extraction
    from insar_gnss_3d.core.crossval import (coverage_at_stations, joint_on_prepared, leave_one_out, median_errors,
                                             nearest_to_largest)
    from insar_gnss_3d.core.joint import los_residual_rms
    from insar_gnss_3d.core.modelfile import load_model

    inputs = build_inputs(folder)
    model, scene, _ = load_model(model_path or BUNDLED_MODEL)
    desc = prepare.TrackSource("INSAR_DESC", (inputs["INSAR_DESC"],), inputs["LOS_DESC"])
    pixel_m = working_pixel_m or prepare.working_pixel_m(scene, inputs["INSAR_DESC"], "INSAR_DESC")
    grid = prepare.working_grid(inputs["INSAR_DESC"], pixel_m, "INSAR_DESC")
    if prepare.grid_epsg(grid) != UTM_EPSG:
        raise RuntimeError(f"working grid in EPSG:{prepare.grid_epsg(grid)}, expected {UTM_EPSG}")
    prepared = prepare.prepare_scene(None, desc, inputs["DEM"], inputs["dates"], inputs["enu_m"],
                                     inputs["x"], inputs["y"], inputs["stations"], scene, grid=grid)
    network, network_std = prepare.run_model(prepared, model, device=device, with_std=True)
    output, quality, notes = consistent_extraction(prepared, network, scene, network_std_m=network_std)
    joint = joint_on_prepared(prepared, scene)
    track = next(t for t in quality["tracks"] if t.get("used"))
    joint_track = next(t for t in joint.quality["tracks"] if t.get("used"))
    observed = float(max(np.abs(inputs["offset_m"]).max(), np.nanmax(np.abs(inputs["points_los_m"]))))
    los_change = prepared.insar_epochs_m[1, -1] - prepared.insar_epochs_m[1, 0]
    figures = {
        "working_grid_px": [grid.width, grid.height],
        "working_grid_m": [grid.width * grid.pixel_size, grid.height * grid.pixel_size],
        "stations_used": len(prepared.stations),
        "noise_estimate_m": track["noise_m"],
        "los_residual_rms_m": {"cnn": track["los_residual_rms_m"], "joint": joint_track["los_residual_rms_m"],
                               "network_before_consistency": los_residual_rms(network, los_change, prepared.los[1])},
        "largest_observed_m": observed,
        "largest_output_m": quality["largest_output_m"],
        "largest_network_m": quality["largest_network_m"],
        "warnings": [n["text"] for n in quality["notes"] if n["level"] == "warning"],
        "information": [n["text"] for n in quality["notes"] if n["level"] == "info"],
        "station_agreement": next((n["text"] for n in quality["notes"] if n["text"].startswith("GNSS:")), ""),
        "notes": notes,
    }
    if loo:
        indices = nearest_to_largest(prepared, within_m=LOO_RADIUS_M)
        rows = leave_one_out(prepared, model, scene, indices, device=device)
        figures["leave_one_out"] = rows
        figures["leave_one_out_median_m"] = median_errors(rows)
        figures["leave_one_out_within_sigma"] = coverage_at_stations(rows)
    return figures


def main(argv=None):
    """Command line: print the figures as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default="", help="folder for the rasters (default: a temporary folder)")
    p.add_argument("--loo", action="store_true", help="also the leave-one-station-out check (minutes)")
    p.add_argument("--model", default="", help="model file (default: the bundled model)")
    p.add_argument("--pixel-m", type=float, default=0.0,
                   help="working pixel size [m] (default: the model's choice, prepare.working_pixel_m)")
    args = p.parse_args(argv)
    folder = args.output or tempfile.mkdtemp(prefix="illapel_")
    os.makedirs(folder, exist_ok=True)
    figures = run_example(folder, loo=args.loo, model_path=args.model, working_pixel_m=args.pixel_m)
    json.dump(figures, sys.stdout, indent=1, default=float)
    print()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "build" / "plugins"))
    main()
