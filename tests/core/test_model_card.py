"""scripts/model_card.py: the README's model table comes from the campaign's history.json."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _card():
    spec = importlib.util.spec_from_file_location("model_card", REPO / "scripts" / "model_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _point(session, seen, minutes, val):
    return {"session": session, "scenes_seen": seen, "minutes": minutes, "train_loss": None if seen == 0 else 0.5,
            "val_loss": val, "val_mssim_east": 0.61, "val_mssim_north": 0.62, "val_mssim_up": 0.735}


def test_table_has_the_first_point_and_each_session_end(tmp_path):
    history = {"parameters": 728259, "recipe": {"validation_samples": 64},
               "points": [_point(1, 0, 0.0, 0.40), _point(1, 16000, 15.0, 0.36), _point(1, 30000, 30.2, 0.35),
                          _point(2, 46000, 45.0, 0.345), _point(2, 61000, 60.4, 0.34)]}
    table = _card().markdown_table(history).splitlines()
    rows = [line for line in table if line.startswith("| ") and "scenes seen" not in line]
    assert [r.split(" | ")[1] for r in rows] == ["0", "30,000", "61,000"]
    assert rows[0].split(" | ")[3] == "—"                          # no training loss before training
    assert "0.3400" in rows[-1] and "0.735" in rows[-1]
    assert "61,000 scenes seen, 60.4 wall minutes of training in 2 sessions" in table[-1]
    assert len(_card().markdown_table(history, every=True).splitlines()) == 2 + 5 + 2
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history))
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "model_card.py"), "--history", str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[:5] == table[:5]
    assert rows[0].endswith("| — |")                                # older points name no validation seed
    history["points"][-1]["validation_seed"] = 2031
    assert _card().markdown_table(history).splitlines()[4].endswith("| 2031 |")


def test_an_older_summed_training_loss_is_marked_not_compared():
    old = dict(_point(1, 16000, 15.0, 0.46), train_loss=None, train_total_legacy=-0.5708, val_nll=-1.56)
    new = dict(_point(2, 30000, 30.0, 0.45), train_loss=0.44, train_nll=-1.5, val_nll=-1.55)
    table = _card().markdown_table({"parameters": 1, "points": [old, new]}).splitlines()
    rows = [line for line in table if line.startswith("| ") and "scenes seen" not in line]
    assert rows[0].split(" | ")[3] == "(-0.5708*)" and rows[1].split(" | ")[3] == "0.4400"
    assert rows[1].split(" | ")[5] == "-1.500"                      # the training NLL, its own column
    assert any(line.startswith("\\* written before") for line in table)
    plain = _card().markdown_table({"parameters": 1, "points": [new]})
    assert "written before" not in plain
