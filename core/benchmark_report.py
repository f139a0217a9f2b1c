"""The benchmark's figures and HTML report (:mod:`.benchmark` scores; this module draws).

The paper's figure (mSSIM against the maximum displacement, one panel per component), the
calibration of the CNN's standard deviation, example maps of chosen scenes and the
self-contained HTML page that holds them with the summary table.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from .benchmark import (COMPONENTS, METHODS, SIGNAL_THRESHOLD_M, SceneResult, by_displacement, calibration, summarize)


_STYLE = {"cnn": ("#d62728", "o", "CNN (InSAR + GNSS, data-consistent)"),
          "network": ("#ff9896", ".", "network before the consistency step"),
          "decomposition": ("#1f77b4", "s", "asc/desc decomposition"),
          "interpolation": ("#2ca02c", "^", "GNSS interpolation"),
          "joint": ("#9467bd", "D", "joint InSAR + GNSS least squares")}



def calibration_figure(rows: Sequence[dict], threshold_m: float = SIGNAL_THRESHOLD_M):
    """Bars: fraction of pixels within 1 and 2 sigma per component, with the Gaussian targets."""
    from .report import new_figure

    cal = calibration(rows, threshold_m)
    fig = new_figure(5.5, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(COMPONENTS))
    for k, (label, target) in enumerate((("within 1 sigma", 0.683), ("within 2 sigma", 0.954))):
        ax.bar(x + (k - 0.5) * 0.38, [cal[c][k] for c in COMPONENTS], 0.36, label=label)
        ax.axhline(target, color=f"C{k}", ls="--", lw=1)
    ax.set_xticks(x, COMPONENTS)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of pixels")
    ax.set_title(f"Calibration of the CNN's std (scenes > {1e3 * threshold_m:g} mm; dashed: Gaussian)")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def mssim_figure(rows: Sequence[dict]):
    """The paper's figure: mSSIM against the component's max |truth| (log x), E / N / U panels.

    Every method's scenes as points, with the median in logarithmic bins as a line.
    """
    from .report import new_figure

    fig = new_figure(13.0, 4.2)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, comp in zip(axes, COMPONENTS):
        xs_all = [r["max_abs_truth_m"] for r in rows if r["component"] == comp and r["max_abs_truth_m"] > 0]
        edges = (np.logspace(math.log10(min(xs_all)), math.log10(max(xs_all)), 9)
                 if xs_all and max(xs_all) > min(xs_all) else None)
        for method in METHODS:
            color, marker, label = _STYLE[method]
            sel = [r for r in rows if r["component"] == comp and r["method"] == method
                   and math.isfinite(r["mssim"]) and r["max_abs_truth_m"] > 0]
            if not sel:
                if method == "decomposition" and comp == "north":
                    ax.text(0.03, 0.03, "decomposition: north not resolved", transform=ax.transAxes,
                            fontsize=8, color=color)
                continue
            x = np.array([r["max_abs_truth_m"] for r in sel]) * 1e3
            y = np.array([r["mssim"] for r in sel])
            ax.scatter(x, y, s=12, c=color, marker=marker, alpha=0.45, linewidths=0, label=label)
            if edges is not None and len(sel) >= 4:
                idx = np.digitize(x / 1e3, edges[1:-1])
                centres, medians = [], []
                for b in range(len(edges) - 1):
                    if (idx == b).sum() >= 2:
                        centres.append(1e3 * math.sqrt(edges[b] * edges[b + 1]))
                        medians.append(float(np.median(y[idx == b])))
                ax.plot(centres, medians, color=color, lw=2)
        ax.set_xscale("log")
        ax.set_title(f"{comp}", fontsize=11)
        ax.set_xlabel(f"max |{comp} truth| [mm]")
        ax.grid(True, which="both", alpha=0.3)
        ax.axhline(1.0, color="0.5", lw=0.8)
    axes[0].set_ylabel("mSSIM")
    axes[0].legend(fontsize=8, loc="lower right")
    return fig


def example_figure(result: SceneResult):
    """Truth / CNN / decomposition / interpolation maps of one scene (rows E, N, U) [mm]."""
    from .report import new_figure

    fields = [("truth", result.truth)] + [(m, result.predictions[m]) for m in METHODS]
    n = result.truth.shape[-1]
    extent = (0, n * result.pixel_m / 1e3, -n * result.pixel_m / 1e3, 0)
    fig = new_figure(13.0, 9.0)
    axes = fig.subplots(3, len(fields))
    for i, comp in enumerate(COMPONENTS):
        t = result.truth[i] * 1e3
        limit = float(np.nanpercentile(np.abs(t), 99)) or 1.0
        for j, (name, data) in enumerate(fields):
            ax = axes[i, j]
            image = ax.imshow(np.ma.masked_invalid(data[i] * 1e3), cmap="RdBu_r", vmin=-limit, vmax=limit,
                              extent=extent, interpolation="nearest")
            title = f"{comp}: {name}"
            if name != "truth":
                r = next(r for r in result.rows if r["method"] == name and r["component"] == comp)
                title += "" if math.isnan(r["mssim"]) else f" (mSSIM {r['mssim']:.2f})"
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=7)
            if not np.isfinite(data[i]).any():
                ax.text(0.5, 0.5, "not resolved", transform=ax.transAxes, ha="center", va="center")
            if i == 2:
                ax.set_xlabel("km", fontsize=8)
            if j == 0:
                ax.set_ylabel("km", fontsize=8)
            if j == len(fields) - 1:
                fig.colorbar(image, ax=axes[i, :].tolist(), shrink=0.85).set_label("mm", fontsize=8)
    return fig


class ExampleKeeper:
    """Keeps, for each target displacement, the scene whose max |truth| is nearest (log scale).

    Pass its :meth:`__call__` as ``on_scene``; memory stays at ``len(targets_m)`` scenes.
    """

    def __init__(self, targets_m=(0.005, 0.05, 0.5)):
        self.targets_m = tuple(targets_m)
        self.best: Dict[float, tuple] = {}

    def __call__(self, result: SceneResult):
        """Offer a scene."""
        if not result.max_abs_m > 0:
            return
        for target in self.targets_m:
            distance = abs(math.log(result.max_abs_m / target))
            if target not in self.best or distance < self.best[target][0]:
                self.best[target] = (distance, result)

    @property
    def examples(self) -> List[SceneResult]:
        """The kept scenes, distinct, by increasing displacement."""
        unique = {r.index: r for _, r in self.best.values()}
        return sorted(unique.values(), key=lambda r: r.max_abs_m)


def report_html(rows: Sequence[dict], examples: Sequence[SceneResult] = (), meta: Optional[dict] = None,
                threshold_m: float = SIGNAL_THRESHOLD_M) -> str:
    """Self-contained HTML page: the mSSIM figure, the summary table, example maps, the recipe."""
    from .report import figure_html, html_document, html_table, paragraph

    meta = dict(meta or {})
    summary = summarize(rows, threshold_m)
    table_rows = []
    groups = {}
    for s in summary:
        groups.setdefault((s["subset"], s["method"]), {})[s["component"]] = s
    for (subset, method), comps in groups.items():
        table_rows.append([subset, method, comps["east"]["scenes"]]
                          + [comps[c]["median_mssim"] for c in COMPONENTS]
                          + [1e3 * comps[c]["median_rmse_m"] for c in COMPONENTS]
                          + ["" if math.isnan(comps[c]["cnn_wins"]) else f"{100 * comps[c]['cnn_wins']:.0f} %"
                             for c in COMPONENTS]
                          + ["/".join(str(comps[c]["scored"]) for c in COMPONENTS)])
    header = (["scenes", "method", "n"] + [f"median mSSIM {c}" for c in COMPONENTS]
              + [f"median RMSE {c} [mm]" for c in COMPONENTS] + [f"CNN better ({c})" for c in COMPONENTS]
              + ["scored E/N/U"])
    parts = [paragraph(f"{key}: {value}") for key, value in meta.items()]
    parts += [
        "<h2>mSSIM against maximum displacement</h2>",
        figure_html(mssim_figure(rows), "mSSIM against maximum displacement, east, north, up"),
        paragraph("One point per scene and method; lines: medians in logarithmic bins. mSSIM: "
                  "Wang et al. (2004) mean SSIM, Gaussian window sigma 1.5 px, data range = max - "
                  "min of the truth component, pixels where the method has no value left out "
                  "(see coverage in the table file). x: the largest |truth| of that component.",
                  "note"),
    ]
    bins = by_displacement(rows)
    if bins:
        methods = list(bins[0]["median_mssim"])
        peers = [m for m in methods if m != "cnn"]
        parts += [html_table(["largest |displacement| [mm]", "scenes"]
                             + [f"{m} {c}" for m in methods for c in COMPONENTS]
                             + [f"CNN better than {m} (E/N/U)" for m in peers],
                             [[f"> {1e3 * b['low_m']:g}" if math.isinf(b["high_m"])
                               else f"{1e3 * b['low_m']:g}-{1e3 * b['high_m']:g}", b["scenes"]]
                              + [v for m in methods for v in b["median_mssim"][m]]
                              + ["/".join("-" if math.isnan(w) else f"{100 * w:.0f}" for w in b["cnn_wins"][m])
                                 + f" % of {b['scored'][m]}" for m in peers] for b in bins],
                             float_format=".2f"),
                  paragraph("The same curve in numbers: median mSSIM of the scenes whose largest |displacement| "
                            "of any component falls in each bin, each method over the scenes it scored "
                            "(interpolation needs three stations), and the share of those where the CNN is "
                            "better.", "note")]
    parts += [
        "<h2>Summary</h2>", html_table(header, table_rows, float_format=".3f"),
        paragraph(f"Medians over the scenes where the method gave a value ('scored'); "
                  f"'{1e3 * threshold_m:g} mm' selects scenes whose largest |displacement| of any "
                  "component exceeds it. 'CNN better' = share of scored scenes where the CNN's "
                  "mSSIM exceeds the method's. The decomposition neglects north (never scored) "
                  "and needs both tracks; it uses each track's last minus first acquisition, "
                  "referenced to the GNSS stations' net motion projected on the LOS. The GNSS "
                  "interpolation is a thin-plate spline of the stations' net displacements "
                  "(median of the last 7 days minus the first 7). The joint peer is the per-pixel "
                  "weighted least squares of both tracks (every acquisition fitted with the GNSS "
                  "network's time function, offset and ramp referenced to GNSS, noise from the fit's "
                  "residual) and a kriging prior of the stations with its standard deviation.", "note"),
    ]
    cal = calibration(rows, threshold_m)
    head = calibration(rows, threshold_m, method="network")
    if any(math.isfinite(v[0]) for v in cal.values()):
        table = [["CNN output (std bands)", c, *cal[c]] for c in COMPONENTS]
        if any(math.isfinite(v[0]) for v in head.values()):
            table += [["network alone (std head)", c, *head[c]] for c in COMPONENTS]
        parts += ["<h2>Calibration of the CNN's standard deviation</h2>",
                  figure_html(calibration_figure(rows, threshold_m), "calibration of the standard deviation"),
                  html_table(["std of", "component", "within 1 sigma", "within 2 sigma"], table,
                             float_format=".3f"),
                  paragraph("Fraction of pixels whose |CNN - truth| lies within one and two of the "
                            "output's standard deviations (east_std, north_std, up_std), pooled over "
                            "the scenes above the threshold; 0.683 and 0.954 for a calibrated "
                            "Gaussian. 'network alone': the network's field before the data-consistency "
                            "step against its std head's sigma.", "note")]
    if examples:
        parts.append("<h2>Example scenes</h2>")
        for ex in examples:
            parts.append(paragraph(f"Scene {ex.index}: max |truth| {1e3 * ex.max_abs_m:.1f} mm"
                                   + (f" ({'; '.join(ex.notes)})" if ex.notes else "")))
            parts.append(figure_html(example_figure(ex), f"maps of scene {ex.index}"))
    return html_document("InSAR-GNSS 3D benchmark", parts)
