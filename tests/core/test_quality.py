"""Training-range and exceedance warnings of an extraction; the uncertainty checked at left-out stations."""

import numpy as np
import pytest

from insar_gnss_3d.core.quality import exceedance_warnings, range_warnings
from insar_gnss_3d.core.synthetic import SceneConfig


def test_a_scene_inside_the_training_ranges_gives_no_warning():
    xy = np.array([[x, -y] for x in (10e3, 35e3, 60e3) for y in (10e3, 35e3, 60e3)])
    notes = range_warnings(SceneConfig(), (64, 64), 1000.0, xy, np.full((9, 3), 0.1), [np.full((64, 64), 0.2)])
    assert notes == []


def test_large_scene_large_motion_and_few_stations_are_warned_about():
    xy = np.array([[100e3, -100e3], [110e3, -101e3]])
    notes = range_warnings(SceneConfig(), (400, 300), 1000.0, xy, np.array([[2.0, 0, 0], [0.5, 0, 0]]),
                           [np.full((400, 300), 0.1)])
    text = " ".join(n.text for n in notes)
    assert all(n.level == "warning" for n in notes)
    assert "6.2 times the model's training scenes" in text
    assert "2.00 m, exceeds the largest the model was trained on (1 m)" in text
    assert "Only 2 GNSS station(s)" in text


def test_stations_without_a_displacement_do_not_count_as_informing_the_scene():
    # nine stations on a 25 km grid, six of whose series give no net displacement (NaN):
    # three inform the scene, as in a layer where most stations have data at one end only
    xy = np.array([[x, -y] for x in (10e3, 35e3, 60e3) for y in (10e3, 35e3, 60e3)])
    net = np.full((9, 3), 0.1)
    net[3:] = np.nan
    assert range_warnings(SceneConfig(), (64, 64), 1000.0, xy, net, [np.full((64, 64), 0.2)]) == []
    net[1:] = np.nan
    text = " ".join(n.text for n in range_warnings(SceneConfig(), (64, 64), 1000.0, xy, net,
                                                   [np.full((64, 64), 0.2)]))
    assert "Only 1 GNSS station(s) with a displacement over the window inform the scene" in text


def test_output_beyond_twice_the_observations_is_warned_about():
    out = np.zeros((3, 10, 10))
    out[2, 5, 5] = 5.5
    notes = exceedance_warnings(out, np.array([[0.3, 0.2, 1.8]]), [np.full((10, 10), 1.0)])
    assert len(notes) == 1 and "|up| reaches 5.50 m" in notes[0].text
    assert exceedance_warnings(out * 0.5, np.array([[0.3, 0.2, 1.8]]), []) == []


def test_quality_html_embeds_the_station_arrows_and_json_round_trips(tmp_path):
    import json

    from insar_gnss_3d.core.quality import write_quality

    quality = {"notes": [{"level": "warning", "text": "far too large"}],
               "tracks": [{"track": "descending", "used": True, "noise_m": 0.02, "los_residual_rms_m": 0.03,
                           "reference": {"offset_m": np.float64(0.01)}}],
               "stations": [{"station": "A", "x_m": 1e3, "y_m": -2e3, "gnss_m": [0.1, 0.2, 0.05],
                             "residual_m": [0.01, -0.02, 0.0]},
                            {"station": "B", "x_m": 30e3, "y_m": -20e3, "gnss_m": [-0.1, 0.05, -0.02],
                             "residual_m": [0.01, 0.0, 0.0]}]}
    html = (tmp_path / "q.html")
    write_quality(str(html), quality)
    text = html.read_text()
    assert text.count("data:image/png;base64,") == 1 and "far too large" in text and "30.0" in text
    back = json.loads(open(write_quality(str(tmp_path / "q.json"), quality)).read())
    assert back["tracks"][0]["reference"]["offset_m"] == 0.01
    assert not list(tmp_path.glob("*.part"))


def test_coverage_at_stations_counts_components_within_their_sigma():
    from insar_gnss_3d.core.crossval import coverage_at_stations

    rows = [{"method": "cnn", "observed_m": [0.0, 0.0, 0.0], "predicted_m": [0.5, 1.5, 2.5],
             "predicted_std_m": [1.0, 1.0, 1.0]},
            {"method": "joint", "observed_m": [1.0, 1.0, 1.0], "predicted_m": [1.0, 1.0, 9.0],
             "predicted_std_m": [0.1, float("nan"), 0.1]},
            {"method": "interpolation", "observed_m": [0.0, 0.0, 0.0], "predicted_m": [1.0, 1.0, 1.0],
             "predicted_std_m": [float("nan")] * 3}]
    cov = coverage_at_stations(rows)
    assert cov["cnn"] == (pytest.approx(1 / 3), pytest.approx(2 / 3), 3)
    assert cov["joint"] == (0.5, 0.5, 2)                # the NaN component is not counted
    assert np.isnan(cov["interpolation"][0]) and cov["interpolation"][2] == 0


def test_station_agreement_counts_components_within_two_combined_sigmas():
    from insar_gnss_3d.core.quality import station_agreement_notes, station_z

    def station(residual_mm, sigma_mm=3.0, output_std_mm=4.0):
        return {"station": "S", "gnss_m": [0.1, 0.1, 0.1], "residual_m": [1e-3 * r for r in residual_mm],
                "sigma_m": [1e-3 * sigma_mm] * 3, "output_std_m": [1e-3 * output_std_mm] * 3}

    # combined sigma 5 mm: 9 mm is within two, 11 mm is not
    np.testing.assert_allclose(station_z(station([9.0, -11.0, 0.0])), [1.8, 2.2, 0.0])
    good = station_agreement_notes([station([9.0, -11.0, 0.0]), station([1.0, 2.0, 3.0])])
    assert len(good) == 1 and good[0].level == "info"
    assert "5 of 6 station components" in good[0].text and "east/north/up 5.0/6.5/1.5 mm" in good[0].text
    bad = station_agreement_notes([station([30.0, -40.0, 12.0]), station([1.0, 2.0, 3.0])])
    assert bad[0].level == "warning" and "3 of 6" in bad[0].text and "combineinsargnss" in bad[0].text
    # a station without sigmas (older files) and a NaN component are left out; none usable: no note
    assert station_agreement_notes([{"station": "X", "gnss_m": [0, 0, 0], "residual_m": [1.0, 1.0, 1.0]}]) == []
    nan = station([float("nan"), 1.0, 1.0])
    assert "2 of 2 station components" in station_agreement_notes([nan])[0].text


def test_a_track_too_few_stations_could_deramp_is_named_with_the_ramp_it_may_keep():
    from insar_gnss_3d.core.joint import JointResult
    from insar_gnss_3d.core.quality import extraction_quality

    field = np.zeros((3, 32, 32))
    tracks = [{"track": "ascending", "used": True, "noise_m": 0.01, "los_residual_rms_m": 0.012,
               "ramp_noise_m": 0.034, "reference": {"method": "offset", "stations_used": 1}},
              {"track": "descending", "used": True, "noise_m": 0.01, "los_residual_rms_m": 0.011,
               "ramp_noise_m": 0.0, "reference": {"method": "offset+ramp", "stations_used": 6}}]
    joint = JointResult(field, field + 0.01, field, field + 0.01,
                        {"tracks": tracks, "stations": [], "time_function": "step"})
    quality = extraction_quality(SceneConfig(), (32, 32), 1000.0, field, joint, [np.zeros((2, 32, 32))] * 2,
                                 np.zeros((0, 2)))
    ramp_notes = [n["text"] for n in quality["notes"] if "ramp" in n["text"]]
    assert ramp_notes == ["ascending track: 1 GNSS station(s) on it, too few to fit its ramp; the ramp it may "
                          "keep (~34.0 mm RMS over the scene, measured where the network predicts little "
                          "motion) widens the std bands."]


def test_a_track_that_peaks_at_the_edge_of_its_coverage_is_reported():
    from insar_gnss_3d.core.quality import gap_peak_notes

    asc = ("ascending",)
    y, x = np.mgrid[0:40, 0:40]
    bump = 0.5 * np.exp(-((x - 20.0) ** 2 + (y - 18.0) ** 2) / 50.0)        # 0.5 m LOS at (18, 20)
    assert gap_peak_notes([bump], asc, [0.005]) == []                             # peak observed, inside
    holed = bump.copy()
    holed[15:19, 18:23] = np.nan                                             # the near field lost
    notes = gap_peak_notes([holed, bump], ("ascending", "descending"), [0.005, 0.005])
    assert len(notes) == 1 and notes[0].level == "info"
    assert notes[0].text.startswith("ascending track:") and "a gap in its coverage" in notes[0].text
    far = bump.copy()
    far[30:35, 2:8] = np.nan                                                 # a gap away from the peak
    assert gap_peak_notes([far], asc, [0.005]) == []
    assert gap_peak_notes([holed], asc, [0.2]) == []                             # a peak within 3 noise + 20 mm
    edge = 0.5 * np.exp(-((x - 39.0) ** 2 + (y - 18.0) ** 2) / 50.0)        # peaks on the scene's border
    assert "the scene's border" in gap_peak_notes([edge], asc, [float("nan")])[0].text
    assert gap_peak_notes([np.full((5, 5), np.nan)], asc, [0.005]) == []


def test_quality_html_shows_the_fitted_source_and_its_share(tmp_path):
    from insar_gnss_3d.core.quality import write_quality
    from insar_gnss_3d.core.source_fit import source_fault

    source = {"east_m": 20e3, "north_m": -12e3, "top_depth_m": 3e3, "strike_deg": 20.0, "dip_deg": 18.0,
              "length_m": 40e3, "width_m": 22e3, "rake_deg": 95.0, "slip_m": 1.5, "moment_magnitude": 7.0,
              "explained": 0.97, "misfit": 1.1, "prior_weight": 0.74}
    quality = {"notes": [], "tracks": [], "source": source,
               "stations": [{"station": "A", "x_m": 1e3, "y_m": -2e3, "gnss_m": [0.1, 0.2, 0.05],
                             "residual_m": [0.01, -0.02, 0.0]}]}
    text = open(write_quality(str(tmp_path / "q.html"), quality)).read()
    assert "Elastic source fitted to the output" in text
    assert "<td>7.0</td>" in text and "<td>74.0</td>" in text and "<td>40.0</td>" in text
    fault = source_fault(source)
    assert fault.length == 40e3 and abs(fault.moment_magnitude - 7.0) < 0.01
