"""The README's model-section table, read from a training campaign's ``history.json``.

``make train`` (``python -m insar_gnss_3d.core.train --model-dir resources/models --minutes N``)
writes ``resources/models/history.json``: one record per validation point (session, scenes
seen, wall minutes, train and validation loss (the same L1 + SSIM terms), validation mSSIM
east/north/up on the campaign's fixed validation scenes; for a network with a std head its
Gaussian NLL in training and validation and the fractions of errors within one and two
sigma; the seed of the validation scenes, so that points on other scenes are not compared).
This prints, as Markdown, the first point and the end of every session (``--all``: every
point), then one summary line, so the README quotes the history instead of numbers typed by
hand:

    .venv/bin/python scripts/model_card.py [--history resources/models/history.json] [--all]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

DEFAULT_HISTORY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "resources", "models", "history.json")
COLUMNS = (("session", "session", "{}"), ("scenes_seen", "scenes seen", "{:,}"),
           ("minutes", "wall min", "{:.1f}"), ("train_loss", "train loss", "{:.4f}"),
           ("val_loss", "val loss", "{:.4f}"), ("train_nll", "train NLL", "{:.3f}"),
           ("val_mssim_east", "val mSSIM E", "{:.3f}"),
           ("val_mssim_north", "val mSSIM N", "{:.3f}"), ("val_mssim_up", "val mSSIM U", "{:.3f}"),
           ("val_nll", "std head NLL", "{:.3f}"), ("val_within_1sigma", "within 1 sigma", "{:.3f}"),
           ("val_within_2sigma", "within 2 sigma", "{:.3f}"),
           ("validation_seed", "validation seed", "{}"))


def selected_points(points, every=False):
    """All points, or the first one and the last one of each session."""
    if every or not points:
        return list(points)
    keep = [0] + [i for i in range(len(points))
                  if i + 1 == len(points) or points[i + 1].get("session") != points[i].get("session")]
    return [points[i] for i in sorted(set(keep))]


def markdown_table(history: dict, every: bool = False) -> str:
    """Markdown table (header, separator, one row per selected point) plus a summary line."""
    points = history.get("points", [])
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    legacy = False
    for p in selected_points(points, every):
        cells = []
        for key, _, fmt in COLUMNS:
            value = p.get(key)
            if key == "train_loss" and value is None and p.get("train_total_legacy") is not None:
                legacy = True                  # the old sum of both terms: not comparable to val loss
                cells.append(f"({p['train_total_legacy']:.4f}*)")
                continue
            cells.append("—" if value is None else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    if legacy:
        lines.append("")
        lines.append("\\* written before the history kept the training loss's terms apart: L1 + SSIM plus "
                     "the std head's weighted NLL, not comparable to the validation loss.")
    if points:
        last = points[-1]
        lines.append("")
        counted = (f"{history['all_parameters']:,} parameters ({history.get('parameters', 0):,} trained in "
                   "the last session)" if "all_parameters" in history
                   else f"{history.get('parameters', 0):,} trainable parameters")
        sessions = last.get("session", 1)
        plural = "s" if sessions != 1 else ""
        lines.append(f"{counted}; {last['scenes_seen']:,} scenes seen, "
                     f"{last['minutes']:.1f} wall minutes of training in {sessions} session{plural}; "
                     f"validation: {history.get('recipe', {}).get('validation_samples', '?')} fixed-seed "
                     f"scenes of the training recipe.")
    return "\n".join(lines)


def main(argv=None):
    """Command line: print the table of ``--history``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--history", default=DEFAULT_HISTORY, help="history.json of a campaign")
    p.add_argument("--all", action="store_true", help="every validation point, not only session ends")
    args = p.parse_args(argv)
    if not os.path.exists(args.history):
        sys.exit(f"{args.history} does not exist yet: run `make train` first.")
    with open(args.history) as f:
        history = json.load(f)
    print(markdown_table(history, every=args.all))


if __name__ == "__main__":
    main()
