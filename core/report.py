"""Self-contained HTML reports: matplotlib figures embedded as base64 PNG, small tables.

One file, no side files, opens in any browser and in QGIS's results viewer. Matplotlib is
used through :class:`matplotlib.figure.Figure` (no pyplot state, no GUI backend), so this
works headless and from Processing's worker threads.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import Iterable, Optional, Sequence

import numpy as np

from .runtime import AtomicPath

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 75em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.7em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } .note { color: #555; font-size: 0.9em; }
"""


def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure not registered with pyplot (safe headless and in threads)."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width_in, height_in), layout="constrained")


def figure_to_base64_png(fig, dpi: int = 100) -> str:
    """PNG bytes of a figure as a base64 string."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_html(fig, alt: str, dpi: int = 100) -> str:
    """``<img>`` element embedding the figure as a data URI."""
    data = figure_to_base64_png(fig, dpi=dpi)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _cell(value, float_format: str) -> str:
    if isinstance(value, (float, np.floating)):
        return "NaN" if math.isnan(value) else format(float(value), float_format)
    return html.escape(str(value))


def html_table(header: Sequence[str], rows: Iterable[Sequence], float_format: str = ".4g") -> str:
    """A table; floats formatted with ``float_format``, NaN written as NaN, text escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v, float_format)}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paragraph(text: str, css_class: Optional[str] = None) -> str:
    """An escaped paragraph."""
    cls = f' class="{css_class}"' if css_class else ""
    return f"<p{cls}>{html.escape(text)}</p>"


def html_document(title: str, parts: Sequence[str]) -> str:
    """A complete HTML page: the title as <h1>, then the given HTML fragments."""
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_html(path: str, text: str) -> str:
    """Write ``text`` to ``path`` atomically (``.part`` then rename); returns ``path``.

    The folder is created when missing.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with AtomicPath(path) as part, open(part, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def comparison_figure(truth, prediction, names: Sequence[str], extent=None, unit: str = "m",
                      scale: float = 1.0):
    """Figure with one row per component: truth, prediction, residual (prediction - truth).

    Parameters
    ----------
    truth, prediction : numpy.ndarray, shape (K, H, W)
        Components on the same grid; NaN = no data (drawn transparent).
    names : sequence of str
        Component names (row titles).
    extent : tuple, optional
        ``(xmin, xmax, ymin, ymax)`` for axis labels (e.g. km in the raster CRS).
    unit, scale : str, float
        Values are multiplied by ``scale`` and labelled with ``unit`` (e.g. 1000, "mm").

    Notes
    -----
    Truth and prediction share one symmetric diverging colour scale per component (99th
    percentile of |truth|, or of |prediction| when the truth is flat), so colours compare
    directly; the residual has its own symmetric scale.
    """
    truth = np.asarray(truth, dtype=np.float64) * scale
    prediction = np.asarray(prediction, dtype=np.float64) * scale
    k = truth.shape[0]
    fig = new_figure(11.0, 3.2 * k)
    axes = np.atleast_2d(fig.subplots(k, 3, squeeze=False))
    for i in range(k):
        residual = prediction[i] - truth[i]
        limit = _limit(truth[i]) or _limit(prediction[i]) or 1.0
        rlimit = _limit(residual) or limit
        for j, (data, title, lim) in enumerate(((truth[i], "truth", limit),
                                                (prediction[i], "prediction", limit),
                                                (residual, "residual", rlimit))):
            ax = axes[i, j]
            image = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu_r", vmin=-lim, vmax=lim,
                              extent=extent, interpolation="nearest")
            ax.set_title(f"{names[i]}: {title}", fontsize=10)
            ax.tick_params(labelsize=7)
            if not np.isfinite(data).any():
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
            fig.colorbar(image, ax=ax, shrink=0.85).set_label(unit, fontsize=8)
    return fig


def _limit(values) -> float:
    """99th percentile of |finite values|, 0.0 when none (or all zero)."""
    finite = np.abs(values[np.isfinite(values)])
    return float(np.percentile(finite, 99)) if finite.size else 0.0
