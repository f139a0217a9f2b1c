"""The whole pipeline, as a user runs it: every stage through ``qgis_process``.

``make demo`` runs ``scripts/demo.py --output build/demo``:

1. ``synthesizescene`` on the real topography of central Kyushu
   (``resources/dem/kyushu_srtm_500m.tif``) with a fixed seed and a clearly visible event
   (largest displacement component 0.3 m): InSAR ascending + descending time series, LOS
   vectors, DEM, daily GNSS series, the fault and the truth;
2. ``extractdisplacement``: the CNN (the bundled model, ``resources/models/insar_gnss_3d.pt``);
3. ``decomposelos``: the classical ascending/descending decomposition (east, up);
4. ``interpolategnss``: the classical GNSS interpolation (east, north, up), and
   ``combineinsargnss``: the joint InSAR + GNSS least squares (east, north, up);
5. ``evaluatedisplacement`` of each of the four against the truth (mSSIM, RMSE);
6. one HTML page, ``report.html``, with the maps and the table of scores, and
   ``summary.json`` with the same numbers.

``--quick`` draws a smaller scene (40 km square instead of 96 km) for the tests; ``--model
PATH`` uses that model file instead of the bundled one. Without the bundled model and
without ``--model`` the demo says so and exits with status 2. Every stage's ``qgis_process``
log is kept in ``<output>/logs/``.

    .venv/bin/python scripts/demo.py --output build/demo [--quick] [--model PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QGIS_PROCESS = REPO / "build" / "bin" / "qgis_process"
BUNDLED_MODEL = REPO / "resources" / "models" / "insar_gnss_3d.pt"
DEM = REPO / "resources" / "dem" / "kyushu_srtm_500m.tif"
#: A shallow Mw 6.7 thrust near the centre of the 96 km scene (sharp near field).
SEED = 1
MAX_DISPLACEMENT_M = 0.3
PIXEL_M = 1000.0
#: Half side of the --quick scene [m] (the full scene: synthesizescene's 96 km default).
QUICK_HALF_SIZE_M = 20e3
COMPONENTS = ("EAST", "NORTH", "UP")
#: Compared methods: key -> (label in the report, algorithm that made the field).
METHODS = {
    "cnn": ("CNN", "extractdisplacement"),
    "decomposition": ("asc/desc decomposition", "decomposelos"),
    "interpolation": ("GNSS interpolation", "interpolategnss"),
    "joint": ("joint least squares", "combineinsargnss"),
}
SCENE_RASTERS = ("INSAR_ASC", "INSAR_DESC", "LOS_ASC", "LOS_DESC", "DEM_OUT", "TRUTH")

if str(REPO / "build" / "plugins") not in sys.path:
    sys.path.insert(0, str(REPO / "build" / "plugins"))


class StageError(RuntimeError):
    """A qgis_process stage failed; the message says which and where its log is."""


# ----------------------------------------------------------------------------- set-up


def choose_model(model_arg, bundled=BUNDLED_MODEL):
    """The model file to use: ``--model`` or the bundled one; SystemExit(2) with advice if none."""
    if model_arg is not None:
        path = Path(model_arg).resolve()
        if not path.is_file():
            raise SystemExit(f"demo: the model file {path} (--model) does not exist.")
        return path
    if not Path(bundled).is_file():
        raise SystemExit(
            f"demo: the bundled model {bundled} does not exist yet, so the CNN cannot run.\n"
            "  Train one (hours on a CPU, minutes on a GPU):\n"
            f"    {sys.executable} -m insar_gnss_3d.core.train --output {bundled}\n"
            "  or give any model file from 'Train model' (insargnss3d:trainmodel):\n"
            "    scripts/demo.py --model PATH   (make demo DEMO_ARGS='--model PATH')")
    return Path(bundled)


def quick_extent(dem_path=DEM, half_m=QUICK_HALF_SIZE_M):
    """``xmin,xmax,ymin,ymax [EPSG:...]`` of a square around the DEM's centre."""
    from osgeo import gdal, osr
    ds = gdal.Open(str(dem_path))
    gt = ds.GetGeoTransform()
    cx = gt[0] + gt[1] * ds.RasterXSize / 2
    cy = gt[3] + gt[5] * ds.RasterYSize / 2
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    srs.AutoIdentifyEPSG()
    epsg = srs.GetAuthorityCode(None)
    return f"{cx - half_m:.0f},{cx + half_m:.0f},{cy - half_m:.0f},{cy + half_m:.0f} [EPSG:{epsg}]"


def output_paths(out: Path) -> dict:
    """Every file the demo writes, by key."""
    scene = out / "scene"
    paths = {k: scene / f"{k.lower().replace('_out', '')}.tif" for k in SCENE_RASTERS}
    paths.update(GNSS=scene / "gnss.gpkg", FAULT=scene / "fault.gpkg",
                 report=out / "report.html", summary=out / "summary.json", logs=out / "logs")
    for key in METHODS:
        paths[key] = out / f"{key}.tif"
        paths[f"evaluation_{key}"] = out / f"evaluation_{key}.html"
    return paths


def clear_previous(paths: dict):
    """Remove the files a previous run left (GeoPackages are not overwritten in place)."""
    for key, path in paths.items():
        if key == "logs":
            shutil.rmtree(path, ignore_errors=True)
            continue
        for p in (path, path.with_suffix(".qml")):
            if p.exists():
                p.unlink()


# ----------------------------------------------------------------------------- stages


def _tail(text: str, lines: int = 12) -> str:
    keep = [line for line in text.splitlines()
            if line.strip() and not line.startswith(("QStandardPaths", "<string>"))]
    return "\n".join("    " + line for line in keep[-lines:])


def run_stage(name: str, algorithm: str, params, logs: Path) -> dict:
    """Run ``insargnss3d:<algorithm>`` through qgis_process; returns its results.

    ``params`` is a list of ``(KEY, value)`` pairs (a key may repeat, as list parameters do
    on the command line). The full output goes to ``logs/<name>.log``.
    """
    args = [str(QGIS_PROCESS), "run", f"insargnss3d:{algorithm}", "--json", "--"]
    args += [f"{key}={value}" for key, value in params]
    print(f"  {name:<28}", end="", flush=True)
    start = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True)
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    log.write_text(" ".join(args) + "\n\n" + proc.stdout + "\n" + proc.stderr, encoding="utf-8")
    parsed = None
    if "{" in proc.stdout:
        try:
            parsed = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            parsed = None
    if proc.returncode != 0 or parsed is None or "results" not in parsed:
        print("failed")
        raise StageError(f"{name} (insargnss3d:{algorithm}) failed with exit status "
                         f"{proc.returncode}; full log in {log}:\n{_tail(proc.stdout + proc.stderr)}")
    print(f"{time.monotonic() - start:5.1f} s")
    return parsed["results"]


def _number(value) -> float:
    """A score from qgis_process JSON (NaN may come as null)."""
    return float("nan") if value is None else float(value)


def run_pipeline(paths: dict, model: Path, quick: bool, device: str, seed: int) -> dict:
    """The six stages; returns the scores ``{method: {MSSIM_EAST: ..., RMSE_UP: ...}}``."""
    logs = paths["logs"]
    for p in (paths["TRUTH"].parent, logs):
        p.mkdir(parents=True, exist_ok=True)
    scene = [("SEED", seed), ("DEM", DEM), ("PIXEL_SIZE", PIXEL_M),
             ("MAX_DISPLACEMENT_M", MAX_DISPLACEMENT_M), ("START_DATE", "2024-01-01")]
    if quick:
        scene.append(("EXTENT", quick_extent()))
    scene += [(k, paths[k]) for k in SCENE_RASTERS + ("GNSS", "FAULT")]
    run_stage("1 synthesizescene", "synthesizescene", scene, logs)

    tracks = [(k, paths[k]) for k in ("INSAR_ASC", "INSAR_DESC", "LOS_ASC", "LOS_DESC")]
    run_stage("2 extractdisplacement", "extractdisplacement",
              tracks + [("INSAR_UNITS", "m"), ("DEM", paths["DEM_OUT"]), ("GNSS", paths["GNSS"]),
                        ("MODEL", model), ("DEVICE", device), ("OUTPUT", paths["cnn"])], logs)
    run_stage("3 decomposelos", "decomposelos",
              tracks + [("INSAR_UNITS", "m"), ("OUTPUT", paths["decomposition"])], logs)
    run_stage("4 interpolategnss", "interpolategnss",
              [("GNSS", paths["GNSS"]), ("REFERENCE", paths["INSAR_ASC"]),
               ("OUTPUT", paths["interpolation"])], logs)
    run_stage("4b combineinsargnss", "combineinsargnss",
              tracks + [("INSAR_UNITS", "m"), ("GNSS", paths["GNSS"]), ("OUTPUT", paths["joint"])], logs)
    scores = {}
    for i, key in enumerate(METHODS):
        results = run_stage(f"5{'abcd'[i]} evaluate {key}", "evaluatedisplacement",
                            [("PREDICTION", paths[key]), ("TRUTH", paths["TRUTH"]),
                             ("REPORT", paths[f"evaluation_{key}"])], logs)
        scores[key] = {f"{kind}_{c}": _number(results.get(f"{kind}_{c}"))
                       for kind in ("MSSIM", "RMSE") for c in COMPONENTS}
    return scores


# ----------------------------------------------------------------------------- report


def read_bands(path):
    """(3, H, W) float64 of a displacement raster and its geotransform."""
    from osgeo import gdal
    ds = gdal.Open(str(path))
    if ds is None:
        raise StageError(f"{path} cannot be read.")
    bands = ds.ReadAsArray().astype("float64")[:3]                 # east, north, up (std bands after)
    return bands, ds.GetGeoTransform(), (ds.RasterXSize, ds.RasterYSize)


def read_stations(path):
    """(x, y) of each GNSS station (first feature of each) in the layer's CRS."""
    from osgeo import ogr
    ds = ogr.Open(str(path))
    layer = ds.GetLayer(0)
    seen = {}
    for feature in layer:
        name = feature.GetField("station")
        if name not in seen:
            geom = feature.GetGeometryRef()
            seen[name] = (geom.GetX(), geom.GetY())
    return list(seen.values())


def read_fault(path):
    """The fault's attributes and the outline of its surface projection [(x, y), ...]."""
    from osgeo import ogr
    ds = ogr.Open(str(path))
    feature = ds.GetLayer(0).GetNextFeature()
    attributes = {feature.GetFieldDefnRef(i).GetName(): feature.GetField(i)
                  for i in range(feature.GetFieldCount())}
    ring = feature.GetGeometryRef().GetGeometryRef(0)
    return attributes, [ring.GetPoint_2D(i) for i in range(ring.GetPointCount())]


def maps_figure(fields: dict, extent_km, stations_km, fault_km, unit: str, scale: float):
    """Rows truth + methods, columns east/north/up; one colour scale per component."""
    import numpy as np
    from insar_gnss_3d.core.report import new_figure

    rows = list(fields)
    fig = new_figure(11.0, 2.9 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), 3, squeeze=False)
    truth = fields["truth"][1] * scale
    for j, comp in enumerate(("east", "north", "up")):
        finite = np.abs(truth[j][np.isfinite(truth[j])])
        limit = float(np.percentile(finite, 99)) if finite.size else 1.0
        limit = limit or 1.0
        for i, key in enumerate(rows):
            label, data = fields[key][0], fields[key][1][j] * scale
            ax = axes[i, j]
            image = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu_r", vmin=-limit, vmax=limit,
                              extent=extent_km, interpolation="nearest")
            ax.plot(*zip(*fault_km), color="k", lw=0.8)
            ax.plot(*zip(*stations_km), "^", ms=3.5, mfc="none", mec="k", mew=0.6)
            ax.set_xlim(extent_km[0], extent_km[1])
            ax.set_ylim(extent_km[2], extent_km[3])
            ax.set_title(f"{label}: {comp}", fontsize=9)
            ax.tick_params(labelsize=7)
            if not np.isfinite(data).any():
                ax.text(0.5, 0.5, "not resolved", transform=ax.transAxes, ha="center", va="center",
                        bbox={"fc": "white", "ec": "none"})
            if i == len(rows) - 1:
                ax.set_xlabel("UTM easting [km]", fontsize=8)
            if j == 0:
                ax.set_ylabel("northing [km]", fontsize=8)
        fig.colorbar(image, ax=list(axes[:, j]), shrink=0.6, location="bottom").set_label(
            f"{comp} [{unit}]", fontsize=8)
    return fig


def scores_rows(scores: dict):
    """Rows of the score table: method, mSSIM E/N/U, RMSE E/N/U [mm]."""
    rows = []
    for key, (label, algorithm) in METHODS.items():
        s = scores[key]
        rows.append([f"{label} ({algorithm})"] + [s[f"MSSIM_{c}"] for c in COMPONENTS]
                    + [1e3 * s[f"RMSE_{c}"] for c in COMPONENTS])
    return rows


def write_report(paths: dict, scores: dict, meta: dict):
    """report.html: the event, the score table, the maps, links to every file."""
    import html
    import numpy as np
    from insar_gnss_3d.core.report import (figure_html, html_document, html_table, paragraph,
                                           write_html)

    truth, gt, size = read_bands(paths["TRUTH"])
    fields = {"truth": ("truth", truth)}
    for key, (label, _) in METHODS.items():
        data, gt_m, size_m = read_bands(paths[key])
        if size_m != size or any(abs(a - b) > 1e-6 for a, b in zip(gt, gt_m)):
            raise StageError(f"{paths[key]} is not on the truth's grid; the maps would not compare.")
        fields[key] = (label, data)
    fault, outline = read_fault(paths["FAULT"])
    stations = read_stations(paths["GNSS"])
    inside = sum(gt[0] <= x <= gt[0] + gt[1] * size[0] and gt[3] + gt[5] * size[1] <= y <= gt[3]
                 for x, y in stations)
    extent_km = (gt[0] / 1e3, (gt[0] + gt[1] * size[0]) / 1e3, (gt[3] + gt[5] * size[1]) / 1e3, gt[3] / 1e3)
    big = float(np.nanmax(np.abs(truth)))
    unit, scale = ("mm", 1e3) if big < 0.1 else (("cm", 1e2) if big < 1.0 else ("m", 1.0))
    fig = maps_figure(fields, extent_km, [(x / 1e3, y / 1e3) for x, y in stations],
                      [(x / 1e3, y / 1e3) for x, y in outline], unit, scale)
    fig.savefig(str(paths["report"].parent / "maps.png"), dpi=72)   # for the README

    duration = ("a step (earthquake)" if fault['duration_days'] <= 1
                else f"{fault['duration_days']} days of slow slip")
    event = (f"Mw {fault['mw']:.2f} thrust: strike {fault['strike_deg']:.0f}°, dip "
             f"{fault['dip_deg']:.0f}°, rake {fault['rake_deg']:.0f}°, slip {fault['slip_m']:.2f} m "
             f"on a {fault['length_km']:.0f} x {fault['width_km']:.0f} km fault whose top edge is "
             f"{fault['top_depth_km']:.1f} km deep; onset {fault['onset_date']}, "
             f"{duration}; "
             f"largest displacement component {fault['max_displacement_m']:.3f} m.")
    header = (["method", "mSSIM east", "mSSIM north", "mSSIM up", "RMSE east [mm]",
               "RMSE north [mm]", "RMSE up [mm]"])
    links = "".join(
        f'<li><a href="{html.escape(os.path.relpath(paths[k], paths["report"].parent))}">'
        f"{html.escape(text)}</a></li>"
        for k, text in [("evaluation_cnn", "CNN evaluation (truth, prediction, residual maps)"),
                        ("evaluation_decomposition", "decomposition evaluation"),
                        ("evaluation_interpolation", "interpolation evaluation"),
                        ("cnn", "CNN displacement (GeoTIFF, bands east, north, up)"),
                        ("decomposition", "decomposition (GeoTIFF, north = NaN)"),
                        ("interpolation", "interpolation (GeoTIFF)"),
                        ("TRUTH", "truth (GeoTIFF)"), ("INSAR_ASC", "InSAR ascending"),
                        ("INSAR_DESC", "InSAR descending"), ("GNSS", "GNSS daily positions"),
                        ("FAULT", "fault"), ("logs", "qgis_process logs")])
    parts = [
        paragraph(f"Synthetic scene (seed {meta['seed']}) on the SRTM topography of central "
                  f"Kyushu: {size[0]} x {size[1]} pixels of {gt[1]:g} m; {inside} GNSS stations "
                  f"inside it (triangles) and {len(stations) - inside} around it; the surface "
                  "projection of the fault in black."),
        paragraph(event),
        paragraph(f"Model: {meta['model']}; device {meta['device']}; made "
                  f"{meta['date']} in {meta['seconds']:.0f} s, every stage through qgis_process."),
        "<h2>Scores against the truth</h2>", html_table(header, scores_rows(scores), ".3f"),
        paragraph("mSSIM: mean SSIM (Wang et al. 2004), 1 = identical maps; data range = max - "
                  "min of the truth component. RMSE over pixels valid in both. The "
                  "decomposition resolves no north (NaN) and leaks north motion into up; "
                  "the interpolation sees only wavelengths longer than the station spacing.",
                  "note"),
        f"<h2>Maps [{unit}]</h2>", figure_html(fig, "truth and the four methods, east north up"),
        "<h2>Files</h2>", f"<ul>{links}</ul>",
    ]
    write_html(str(paths["report"]), html_document("InSAR-GNSS 3D demo: CNN vs classical peers", parts))
    return fault


def print_table(scores: dict):
    """The score table on stdout."""
    print(f"\n{'method':<26}{'mSSIM E':>9}{'N':>7}{'U':>7}   {'RMSE E':>8}{'N':>8}{'U':>8} [mm]")
    for row in scores_rows(scores):
        label = row[0].split(" (")[0]
        m = "".join(f"{v:>7.3f}" if math.isfinite(v) else f"{'NaN':>7}" for v in row[1:4])
        r = "".join(f"{v:>8.1f}" if math.isfinite(v) else f"{'NaN':>8}" for v in row[4:])
        print(f"{label:<26}  {m}   {r}")


# ----------------------------------------------------------------------------- main


def build_parser():
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="InSAR-GNSS 3D demo: synthetic Kyushu scene -> CNN and classical peers -> "
                    "scores and one HTML report, every stage through qgis_process.")
    parser.add_argument("--output", default=str(REPO / "build" / "demo"),
                        help="folder for every output (default build/demo)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a {2 * QUICK_HALF_SIZE_M / 1e3:.0f} km scene instead of 96 km (tests)")
    parser.add_argument("--model", help="model file (default: the bundled resources/models/insar_gnss_3d.pt)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="device of the CNN (default auto: CUDA when available)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"scene seed (default {SEED})")
    return parser


def main(argv=None):
    """Run the demo; returns the exit status."""
    args = build_parser().parse_args(argv)
    model = choose_model(args.model)
    if not os.access(QGIS_PROCESS, os.X_OK):
        raise SystemExit(f"demo: {QGIS_PROCESS} is missing; run 'make setup' first.")
    out = Path(args.output).resolve()
    paths = output_paths(out)
    clear_previous(paths)
    print(f"InSAR-GNSS 3D demo ({'quick, ' if args.quick else ''}seed {args.seed}, model {model}):")
    start = time.monotonic()
    try:
        scores = run_pipeline(paths, model, args.quick, args.device, args.seed)
        print(f"  {'6 report':<28}", end="", flush=True)
        meta = {"seed": args.seed, "model": str(model), "device": args.device,
                "date": datetime.date.today().isoformat(), "seconds": time.monotonic() - start}
        fault = write_report(paths, scores, meta)
        print("done")
    except StageError as exc:
        print(f"\ndemo: {exc}", file=sys.stderr)
        return 1
    summary = {"seed": args.seed, "quick": args.quick, "model": str(model), "device": args.device,
               "event": fault, "scores": scores,
               "outputs": {k: str(v) for k, v in paths.items()}}
    paths["summary"].write_text(json.dumps(summary, indent=2, allow_nan=True), encoding="utf-8")
    print_table(scores)
    print(f"\nReport:  {paths['report']}\nRasters: {out} (cnn.tif, decomposition.tif, "
          f"interpolation.tif, joint.tif, scene/truth.tif, ...)\nNumbers: {paths['summary']}\n"
          f"Logs:    {paths['logs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
