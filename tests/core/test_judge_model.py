"""The shipping rule of scripts/judge_model.py, line by line."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from judge_model import verdict  # noqa: E402


def _result(targets, mean, illapel=None):
    out = {"seeds": {"777": {"targets_met": targets, "mean_of_medians": mean}}}
    if illapel:
        out["illapel"] = dict(zip(("los_residual_m", "noise_m", "leave_one_out_m"), illapel))
    return out


def test_a_candidate_ships_only_when_every_line_holds():
    base = _result(7, 0.5282)
    good = verdict(_result(9, 0.5250, (0.033, 0.021, 0.105)), base, 0.111)
    assert [holds for _, holds in good] == [True, True, True, True]
    # one target fewer, a mean 0.006 lower, a track missed by noise + 25 mm, a worse leave-one-out
    bad = verdict(_result(7, 0.5221, (0.046, 0.021, 0.1265)), base, 0.111)
    assert [holds for _, holds in bad] == [False, False, False, False]
    assert "126.5 mm <= 111.0 mm" in bad[3][0]
    # without Illapel figures only the synthetic lines are judged
    assert len(verdict(_result(9, 0.53), base, 0.111)) == 2


def test_the_mean_over_stations_is_a_line_when_both_hold_them():
    base = dict(_result(7, 0.5282), illapel={"leave_one_out_by_station_m": {"A": 0.100, "B": 0.090, "C": 0.300}})
    ill = {"los_residual_m": 0.033, "noise_m": 0.021, "leave_one_out_m": 0.105}
    cand = dict(_result(9, 0.53), illapel=dict(ill, leave_one_out_by_station_m={"A": 0.14, "B": 0.095, "C": 0.26}))
    lines = verdict(cand, base, 0.111)
    assert len(lines) == 5 and lines[4] == ("Illapel leave-one-out mean of 3 stations 165.0 mm <= 163.3 mm", False)
    cand["illapel"]["leave_one_out_by_station_m"]["C"] = 0.25
    assert verdict(cand, base, 0.111)[4][1]                           # 161.7 mm: holds
    assert len(verdict(dict(_result(9, 0.53), illapel=ill), base, 0.111)) == 4   # no per-station errors


def test_station_changes_names_the_stations_that_moved():
    from judge_model import station_changes

    base = {"illapel": {"leave_one_out_by_station_m": {"A": 0.100, "B": 0.090, "C": 0.300}}}
    cand = {"illapel": {"leave_one_out_by_station_m": {"A": 0.140, "B": 0.095, "C": 0.260}}}
    text = station_changes(cand, base)
    assert "mean 3-D error 163.3 -> 165.0 mm" in text
    assert "worse by > 20 mm: A +40;" in text and "better: C -40" in text and "B" not in text.split("A +40")[1]
    # an older judgement without per-station errors: nothing to say
    assert station_changes(cand, {"illapel": {"leave_one_out_m": 0.1}}) is None


def test_a_code_change_around_the_same_weights_needs_no_fewer_targets_on_every_seed():
    base = {"seeds": {"777": {"targets_met": 10, "mean_of_medians": 0.5293},
                      "0": {"targets_met": 12, "mean_of_medians": 0.5754}}}
    cand = {"seeds": {"777": {"targets_met": 10, "mean_of_medians": 0.5327},
                      "0": {"targets_met": 13, "mean_of_medians": 0.5761}}}
    assert not verdict(cand, base, 0.111)[0][1]                      # new weights: 10 is not more than 10
    lines = verdict(cand, base, 0.111, same_weights=True)
    assert [text for text, _ in lines][::2] == ["targets met 10 >= 10 (seed 777)", "targets met 13 >= 12 (seed 0)"]
    assert all(holds for _, holds in lines)
    cand["seeds"]["0"]["targets_met"] = 11
    assert not verdict(cand, base, 0.111, same_weights=True)[2][1]
