"""core.benchmark: the paper's evaluation (CNN vs asc/desc decomposition vs GNSS interpolation).

The model is an untrained tiny network (the tests check the plumbing and the bookkeeping, not
the skill); scenes are 32 x 32 pixels.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from insar_gnss_3d.core import benchmark as B  # noqa: N812 (short name for many calls)
from insar_gnss_3d.core.geometry import los_unit_vector

REPO = Path(__file__).resolve().parents[2]


def untrained_model(path):
    """A tiny untrained network (32 x 32 scenes, 4 epochs, width 8) saved as a model file."""
    from insar_gnss_3d.core.model import DualBranchNet, ModelConfig
    from insar_gnss_3d.core.modelfile import save_model
    from insar_gnss_3d.core.synthetic import SceneConfig

    scene = SceneConfig(size_px=32, model_epochs=4, max_stations=12)
    save_model(str(path), DualBranchNet(ModelConfig(epochs=4, width=8, gnss_width=8)), scene, {})
    return str(path)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return untrained_model(tmp_path_factory.mktemp("bench") / "tiny.pt")


@pytest.fixture(scope="module")
def two_scenes(model_path):
    calls, kept = [], []
    rows = B.run_benchmark(model_path, 2, 5, "cpu", lambda f, m: calls.append((f, m)), None,
                           on_scene=kept.append)
    return rows, calls, kept


def test_rows_cover_every_scene_component_and_method(two_scenes):
    rows, calls, kept = two_scenes
    assert len(rows) == 2 * 3 * len(B.METHODS)
    assert all(tuple(r) == B.COLUMNS for r in rows)
    keys = {(r["scene"], r["component"], r["method"]) for r in rows}
    assert keys == {(s, c, m) for s in (0, 1) for c in B.COMPONENTS for m in B.METHODS}
    assert [f for f, _ in calls] == [0.5, 1.0]
    assert "scene 2/2" in calls[-1][1]


def test_scores_are_those_of_the_fields(two_scenes):
    from insar_gnss_3d.core.metrics import rmse, ssim
    rows, _, kept = two_scenes
    for result in kept:
        truth = result.truth
        assert result.max_abs_m == pytest.approx(float(np.abs(truth).max()))
        for r in result.rows:
            k = B.COMPONENTS.index(r["component"])
            pred = result.predictions[r["method"]][k]
            assert r["max_abs_truth_m"] == pytest.approx(float(np.abs(truth[k]).max()))
            assert r["max_abs_scene_m"] == pytest.approx(result.max_abs_m)
            assert r["rmse_m"] == pytest.approx(rmse(pred, truth[k]), nan_ok=True)
            if np.isfinite(pred).any():
                t64 = truth[k].astype(np.float64)
                data_range = float(t64.max() - t64.min())
                assert r["mssim"] == pytest.approx(ssim(pred, truth[k], data_range=data_range))
                assert r["coverage"] == pytest.approx(np.isfinite(pred).mean())


def test_decomposition_never_gives_north_and_cnn_covers_everything(two_scenes):
    rows, _, kept = two_scenes
    for r in rows:
        if r["method"] == "decomposition" and r["component"] == "north":
            assert math.isnan(r["mssim"]) and math.isnan(r["rmse_m"]) and r["coverage"] == 0.0
        if r["method"] in ("cnn", "interpolation"):
            assert math.isfinite(r["mssim"]) and r["coverage"] == 1.0
    for result in kept:
        assert not np.isfinite(result.predictions["decomposition"][1]).any()


def test_same_seed_same_scenes_other_seed_other_scenes(model_path, two_scenes):
    rows, _, _ = two_scenes
    again = B.run_benchmark(model_path, 1, 5, "cpu", None, None)
    assert len(again) == 3 * len(B.METHODS)
    for a, b in zip(again, rows[:3 * len(B.METHODS)]):
        assert (a["scene"], a["component"], a["method"]) == (b["scene"], b["component"], b["method"])
        for key in ("mssim", "rmse_m", "max_abs_truth_m", "coverage"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9, nan_ok=True)
    other = B.run_benchmark(model_path, 1, 6, "cpu", None, None)
    assert other[0]["max_abs_scene_m"] != rows[0]["max_abs_scene_m"]


def test_cancel_raises_before_the_next_scene(model_path):
    seen = []
    with pytest.raises(B.BenchmarkCancelled, match="after 1 of 3"):
        B.run_benchmark(model_path, 3, 0, "cpu", lambda f, m: seen.append(f), lambda: len(seen) >= 1)
    assert seen == [pytest.approx(1 / 3)]


def test_overrides_that_change_the_network_input_are_refused(model_path):
    with pytest.raises(ValueError, match="model_epochs"):
        B.run_benchmark(model_path, 1, 0, "cpu", None, None, {"model_epochs": 8})
    with pytest.raises(ValueError, match="Unknown scene options"):
        B.run_benchmark(model_path, 1, 0, "cpu", None, None, {"turbulence": 1})
    with pytest.raises(ValueError, match="Unknown generator recipe"):
        B.recipe_options("gentle")


def test_named_recipes_draw_the_same_scenes_whatever_the_model_trained_on():
    """A model trained on 128 px scenes with one track dropped in half of them is judged on the
    same scenes as one trained on the defaults; only the network's inputs come from the model."""
    from insar_gnss_3d.core.configs import SceneConfig

    plain = SceneConfig(model_epochs=8)
    other = SceneConfig(model_epochs=8, size_px=128, track_dropout_probability=0.5,
                        turbulence_sigma_m=(0.02, 0.05), heterogeneous_slip_fraction=0.5)
    for name in B.RECIPES:
        overrides, _ = B.recipe_options(name)
        a, b = B.scene_for(plain, overrides), B.scene_for(other, overrides)
        assert (a == b) == (name != "model"), name
        assert a.model_epochs == b.model_epochs == 8
    assert B.scene_for(other, B.recipe_options("classic")[0]).size_px == 64
    assert B.scene_for(other, B.recipe_options("model")[0]) == other
    with pytest.raises(ValueError, match="pixel_m"):
        B.scene_for(plain, {"pixel_m": 500.0})


def test_stress_recipe_uses_real_relief_and_both_tracks(model_path):
    overrides, dem = B.recipe_options("stress")
    kept = []
    rows = B.run_benchmark(model_path, 2, 1, "cpu", None, None, overrides, dem_path=dem, on_scene=kept.append)
    for result in kept:   # no track dropout: the decomposition has data somewhere
        assert np.isfinite(result.predictions["decomposition"][[0, 2]]).any()
    assert all(math.isfinite(r["mssim"]) for r in rows if r["method"] == "decomposition"
               and r["component"] != "north")


def test_one_track_runs_score_the_same_scenes_without_the_other_track(model_path):
    overrides, dem = B.recipe_options("stress")              # no track dropout: both tracks drawn
    both, asc = [], []
    B.run_benchmark(model_path, 1, 1, "cpu", None, None, overrides, dem_path=dem, on_scene=both.append)
    B.run_benchmark(model_path, 1, 1, "cpu", None, None, overrides, dem_path=dem, on_scene=asc.append,
                    tracks="asc")
    assert np.array_equal(both[0].truth, asc[0].truth)
    # one track: no decomposition, and the joint peer still gives a field
    assert np.isfinite(both[0].predictions["decomposition"]).any()
    assert not np.isfinite(asc[0].predictions["decomposition"]).any()
    assert np.isfinite(asc[0].predictions["joint"]).any()
    with pytest.raises(ValueError, match="tracks must be one of"):
        B.run_benchmark(model_path, 1, 1, "cpu", None, None, tracks="ascending")


def test_dem_for_scenes_on_the_bundled_dem():
    dem, grid = B.dem_for_scenes(B.KYUSHU_DEM, 1000.0)
    assert dem.shape == (grid.height, grid.width)
    assert grid.pixel_size == 1000.0
    assert "32652" in grid.crs_wkt or "UTM zone 52N" in grid.crs_wkt
    assert 180 < grid.width < 230 and 200 < grid.height < 240     # 2 x 2 degrees at 33 N
    assert np.isfinite(dem).all() and dem.min() == 0.0            # sea = 0 m
    assert 1000.0 < dem.max() < 2000.0                            # Kuju / Aso: ~1700 m at 1 km
    assert 0.2 < (dem > 0).mean() < 0.8


def test_reference_to_gnss_removes_the_track_offset_exactly():
    h = w = 20
    pixel = 1000.0
    unit = np.stack([np.full((h, w), v) for v in los_unit_vector(-12.0, 39.0)])
    yy, xx = np.mgrid[0:h, 0:w]
    truth = np.stack([1e-3 * xx, -5e-4 * yy, 2e-3 * np.ones((h, w))])
    los = (unit * truth).sum(0)
    xy = np.array([[2500.0, -3500.0], [15500.0, -12500.0], [60e3, -5e3]])   # the last is outside
    rows, cols = (-xy[:, 1] // pixel).astype(int), (xy[:, 0] // pixel).astype(int)
    net = np.stack([truth[:, min(r, h - 1), min(c, w - 1)] for r, c in zip(rows, cols)])
    net[2] = 99.0                              # outside the scene: must not be used
    referenced, note = B.reference_to_gnss(los + 0.037, unit, net, xy, pixel)
    assert note == ""
    assert_allclose(referenced, los, atol=1e-12)
    # no station inside: the median is removed and the note says so
    referenced, note = B.reference_to_gnss(los + 0.037, unit, net[2:], xy[2:], pixel)
    assert "median" in note
    assert np.nanmedian(referenced) == pytest.approx(0.0, abs=1e-12)


def test_summary_medians_and_win_rates():
    rows = []
    for scene, (scene_max, cnn, dec, itp) in enumerate([(0.002, 0.1, 0.2, 0.3), (0.05, 0.9, 0.5, 0.6),
                                                        (0.2, 0.8, 0.7, 0.95)]):
        for comp in B.COMPONENTS:
            for method, value in (("cnn", cnn), ("decomposition", float("nan") if comp == "north" else dec),
                                  ("interpolation", itp)):
                rows.append({"scene": scene, "component": comp, "max_abs_truth_m": scene_max,
                             "method": method, "mssim": value, "rmse_m": 0.001 * (scene + 1),
                             "max_abs_scene_m": scene_max, "coverage": 1.0})
    s = {(x["subset"], x["method"], x["component"]): x for x in B.summarize(rows)}
    assert s["all", "cnn", "east"]["median_mssim"] == pytest.approx(0.8)
    assert s["max > 10 mm", "cnn", "east"]["median_mssim"] == pytest.approx(0.85)
    assert s["max > 10 mm", "cnn", "east"]["scenes"] == 2
    assert s["all", "decomposition", "east"]["cnn_wins"] == pytest.approx(2 / 3)
    assert s["all", "interpolation", "up"]["cnn_wins"] == pytest.approx(1 / 3)
    assert s["all", "decomposition", "north"]["scored"] == 0
    assert math.isnan(s["all", "decomposition", "north"]["median_mssim"])
    assert math.isnan(s["all", "cnn", "east"]["cnn_wins"])
    text = B.summary_text(B.summarize(rows))
    assert "max > 10 mm" in text and "interpolation" in text


def test_csv_round_trip_and_atomic_write(two_scenes, tmp_path):
    rows, _, _ = two_scenes
    path = str(tmp_path / "t.csv")
    B.write_csv(path, rows)
    assert not os.path.exists(path + ".part")
    with open(path) as f:
        assert f.readline().strip() == ",".join(B.COLUMNS)
    back = B.read_csv(path)
    assert len(back) == len(rows)
    for a, b in zip(back, rows):
        assert a["scene"] == b["scene"] and a["method"] == b["method"]
        assert a["mssim"] == pytest.approx(b["mssim"], rel=1e-5, nan_ok=True)


def test_report_embeds_the_figure_summary_and_examples(two_scenes):
    rows, _, kept = two_scenes
    from insar_gnss_3d.core import benchmark_report as report

    keeper = report.ExampleKeeper()
    for result in kept:
        keeper(result)
    assert 1 <= len(keeper.examples) <= 2
    text = report.report_html(rows, keeper.examples, {"Model": "tiny.pt"})
    # the mSSIM figure, the calibration figure, one map per example
    assert text.count("data:image/png;base64,") == 2 + len(keeper.examples)
    assert "median mSSIM east" in text and "max &gt; 10 mm" in text and "tiny.pt" in text
    assert "Calibration of the CNN" in text
    assert "largest |displacement| [mm]" in text and "<td>100-300</td>" in text    # scene 2 has 281 mm


def test_by_displacement_gives_each_bin_its_scenes_medians():
    """Scenes binned by their largest |displacement|; medians per method and component;
    scenes below the first edge and methods that scored nothing are left out / NaN."""
    rows = []
    for scene, (max_m, score) in enumerate([(0.005, 0.9), (0.02, 0.2), (0.025, 0.4), (0.5, 0.8), (5.0, 0.7)]):
        for comp in B.COMPONENTS:
            rows.append({"scene": scene, "component": comp, "method": "cnn", "max_abs_scene_m": max_m,
                         "mssim": score + (0.1 if comp == "up" else 0.0)})
            rows.append({"scene": scene, "component": comp, "method": "joint", "max_abs_scene_m": max_m,
                         "mssim": float("nan") if max_m > 1 else score - 0.1})
    bins = B.by_displacement(rows, methods=("cnn", "joint"))
    spans = [(b["low_m"], b["high_m"], b["scenes"]) for b in bins]
    assert spans == [(0.01, 0.03, 2), (0.3, 1.0, 1), (3.0, math.inf, 1)]
    assert_allclose(bins[0]["median_mssim"]["cnn"], (0.3, 0.3, 0.4))
    assert_allclose(bins[0]["median_mssim"]["joint"], (0.2, 0.2, 0.2))
    assert all(math.isnan(v) for v in bins[2]["median_mssim"]["joint"])
    assert bins[0]["cnn_wins"]["joint"] == (1.0, 1.0, 1.0) and bins[2]["scored"] == {"cnn": 1, "joint": 0}
    assert all(math.isnan(w) for w in bins[0]["cnn_wins"]["cnn"] + bins[2]["cnn_wins"]["joint"])
    text = B.by_displacement_text(bins)
    assert "10-30 mm" in text and "> 3000 mm" in text and "0.30/0.30/0.40 (2)" in text
    assert "0.20/0.20/0.20 (2; 100/100/100 %)" in text


def test_calibration_counts_the_cnn_pixels_within_its_std(two_scenes):
    rows, _, _ = two_scenes
    cal = B.calibration(rows, threshold_m=0.0)
    for comp in B.COMPONENTS:
        low, high = cal[comp]
        assert 0.0 <= low <= high <= 1.0
    cnn = [r for r in rows if r["method"] == "cnn"]
    assert all(0.0 <= r["within_1sigma"] <= r["within_2sigma"] <= 1.0 for r in cnn)
    assert all(np.isnan(r["within_1sigma"]) for r in rows if r["method"] != "cnn")


def test_core_benchmark_imports_without_qgis():
    code = "import sys; sys.modules['qgis'] = None; import insar_gnss_3d.core.benchmark"
    env = dict(os.environ, PYTHONPATH=str(REPO / "build" / "plugins"))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_command_line_prints_the_summary(model_path, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "build" / "plugins"))
    csv_path, html_path = tmp_path / "cli.csv", tmp_path / "cli.html"
    proc = subprocess.run([sys.executable, "-m", "insar_gnss_3d.core.benchmark", "--model", model_path,
                           "--scenes", "2", "--seed", "3", "--device", "cpu", "--csv", str(csv_path),
                           "--report", str(html_path)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    header, *lines = proc.stdout.strip().split("\n")
    assert "east mSSIM" in header and "up RMSE" not in header
    assert [line.split()[0:2] for line in lines[:len(B.METHODS)]] == [["all", m] for m in B.METHODS]
    assert len(B.read_csv(str(csv_path))) == 2 * 3 * len(B.METHODS)
    assert "data:image/png;base64," in html_path.read_text()


#: A generator without any noise, steps only, 6-day revisit (the first acquisition always
#: precedes the onset, the last follows it), no holes, no sea, no dropped track.
NOISE_FREE = {"turbulence_sigma_m": (0.0, 0.0), "stratified_m_per_m": 0.0, "ramp_m_per_m": 0.0,
              "epoch_offset_m": 0.0, "decorrelated_fraction": (0.0, 0.0), "sea_probability": 0.0,
              "frame_edge_probability": 0.0, "track_dropout_probability": 0.0, "slow_slip_fraction": 0.0,
              "revisit_days": (6,), "gnss_white_h_m": (0.0, 0.0), "gnss_white_v_m": (0.0, 0.0),
              "gnss_rw_h_m_per_sqrt_day": (0.0, 0.0), "gnss_rw_v_m_per_sqrt_day": (0.0, 0.0),
              "gnss_common_mode_m": (0.0, 0.0), "gnss_gap_fraction": (0.0, 0.0)}


def test_noise_free_decomposition_is_exact_up_to_the_north_leak(model_path):
    """East/up of the decomposition = truth + north x (Wright et al. 2004 leak terms).

    The tolerance (3e-4 of the peak) is the bilinear sampling of the InSAR at the stations
    that ties each track to GNSS.
    """
    from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler, scene_arrays

    scene = SceneConfig.from_dict({**SceneConfig(size_px=32, model_epochs=4, max_stations=12).to_dict(),
                                   **NOISE_FREE})
    arrays = scene_arrays(SceneSampler(scene, seed=11).sample(1), 0)
    net = B.net_displacement(arrays)
    field, notes = B.decomposition_field(arrays, net, scene.pixel_m)
    assert notes == []
    (e_a, n_a, u_a), (e_d, n_d, u_d) = arrays.los[0], arrays.los[1]
    det = e_a * u_d - e_d * u_a
    east, north, up = arrays.truth_m.astype(np.float64)
    scale = np.abs(arrays.truth_m).max()
    assert_allclose(field[0], east + north * (n_a * u_d - n_d * u_a) / det, atol=3e-4 * scale)
    assert_allclose(field[2], up + north * (e_a * n_d - e_d * n_a) / det, atol=3e-4 * scale)
    assert np.isnan(field[1]).all()


def test_noise_free_joint_fits_both_tracks_and_beats_the_north_leak(model_path):
    """The joint peer on noise-free data: both tracks fitted exactly, east/up far closer to the
    truth than the decomposition (whose north leak it removes with the GNSS prior)."""
    from insar_gnss_3d.core.synthetic import SceneConfig, SceneSampler, scene_arrays

    scene = SceneConfig.from_dict({**SceneConfig(size_px=32, model_epochs=4, max_stations=12).to_dict(),
                                   **NOISE_FREE})
    arrays = scene_arrays(SceneSampler(scene, seed=11).sample(1), 0)
    net = B.net_displacement(arrays)
    field, notes = B.joint_field(arrays, net, scene.pixel_m)
    decomposition, _ = B.decomposition_field(arrays, net, scene.pixel_m)
    assert np.isfinite(field).all()
    scale = np.abs(arrays.truth_m).max()
    err = np.sqrt(np.mean((field - arrays.truth_m) ** 2, axis=(1, 2))) / scale
    dec = np.sqrt(np.mean((decomposition - arrays.truth_m)[[0, 2]] ** 2, axis=(1, 2))) / scale
    assert err[0] < 2e-3 and err[2] < 3e-3 and err[1] < 2e-2
    assert np.all(err[[0, 2]] < 0.2 * dec)
    for t in range(2):
        predicted = (arrays.los[t] * field).sum(0)
        residual = arrays.insar_m[t][-1] - arrays.insar_m[t][0] - predicted
        assert np.std(residual) < 1e-4 * scale
