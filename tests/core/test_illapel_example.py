"""The real Illapel 2015 example: one descending track, 14 GNSS offsets, a scene 8x the
training tiles. The output must agree with the track and stay bounded, with warnings."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "illapel_example.py"


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("illapel_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_example(tmp_path_factory.mktemp("illapel"))


def test_output_agrees_with_the_track_within_its_noise(figures):
    rms = figures["los_residual_rms_m"]
    assert rms["cnn"] <= figures["noise_estimate_m"] + 0.020
    # the consistency step is what brings it there: the raw network misses by more
    assert rms["network_before_consistency"] > 2 * rms["cnn"]


def test_output_never_exceeds_twice_the_largest_observation(figures):
    assert max(figures["largest_output_m"]) <= 2.0 * figures["largest_observed_m"]
    assert figures["largest_observed_m"] == pytest.approx(2.1681, abs=1e-4)   # EMAT east


def test_out_of_range_scene_is_warned_about(figures):
    """The warnings follow the bundled model's trained ranges: a scene more than twice its
    largest training scene, more displacement than it was trained on."""
    from insar_gnss_3d.core.modelfile import load_model
    from insar_gnss_3d.core.quality import EXTENT_FACTOR
    from insar_gnss_3d.core.runtime import BUNDLED_MODEL

    scene = load_model(BUNDLED_MODEL)[1]
    text = " ".join(figures["warnings"])
    side_m = max(figures["working_grid_m"])
    trained_m = scene.size_px * max(scene.pixel_m, scene.pixel_m_range[1])
    assert side_m > 500e3                                   # 256 x 542 km
    assert ("times the model's training scenes" in text) == (side_m > EXTENT_FACTOR * trained_m)
    too_large = figures["largest_observed_m"] > scene.max_displacement_m[1]
    assert ("exceeds the largest the model was trained on" in text) == too_large
    assert figures["stations_used"] == 14
    assert np.isfinite(figures["noise_estimate_m"]) and figures["noise_estimate_m"] > 0


def test_the_peak_at_the_coast_is_noted(figures):
    """Illapel slipped offshore: the track's largest LOS change lies where its data stop (the sea)."""
    gap = [w for w in figures["information"] if "lies at a gap in its coverage" in w]
    assert len(gap) == 1 and gap[0].startswith("descending track:")


def test_no_elastic_source_is_fitted_to_one_track(figures):
    """One descending track over an offshore rupture cannot pin a source's geometry: the
    step says so and blends none in."""
    note = [n for n in figures["notes"] if "elastic source" in n]
    assert len(note) == 1 and note[0].startswith("no elastic source fitted: with one track")
