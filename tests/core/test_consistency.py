"""The data-consistency step and degenerate GNSS networks, on the bundled model (no QGIS).

The network's field is made consistent with the tracks; with two or three nearly collinear
stations, one station or none, the output stays bounded by what was observed and shows no
seam where tiles meet (the GNSS prior is one scene-wide field)."""

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from insar_gnss_3d.core import prepare
from insar_gnss_3d.core.consistency import consistent_extraction, consistent_field, smooth_nan
from insar_gnss_3d.core.joint import dead_zone_observation, solve_tracks
from insar_gnss_3d.core.modelfile import load_model
from insar_gnss_3d.core.runtime import BUNDLED_MODEL

_spec = importlib.util.spec_from_file_location("helpers_scenes",
                                               Path(__file__).resolve().parents[1] / "helpers_scenes.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


@pytest.fixture(scope="module")
def bundled():
    return load_model(BUNDLED_MODEL)[:2]


def scene96_sources():
    return helpers.sample_scene(seed=4, size_px=96, max_displacement_m=(0.3, 0.3)).sources


@pytest.fixture(scope="module")
def scene96(bundled, tmp_path_factory):
    _, scene = bundled
    arrays = helpers.sample_scene(seed=4, size_px=96, max_displacement_m=(0.3, 0.3))
    paths = helpers.write_scene(arrays, tmp_path_factory.mktemp("consistency") / "scene96")
    asc = prepare.TrackSource("INSAR_ASC", (paths["INSAR_ASC"],), paths["LOS_ASC"])
    desc = prepare.TrackSource("INSAR_DESC", (paths["INSAR_DESC"],), paths["LOS_DESC"])
    g = paths["gnss"]
    prepared = prepare.prepare_scene(asc, desc, paths["DEM"], g["dates"], g["enu_m"], g["x"], g["y"],
                                     g["stations"], scene, units="m")
    return prepared, arrays.truth_m


def test_dead_zone_keeps_a_prior_within_the_noise_and_moves_it_by_the_excess():
    unit = np.array([0.6, -0.1, 0.78])
    prior = np.zeros((3, 1, 3))
    los = np.array([[0.005, 0.030, -0.050]])
    got = dead_zone_observation(los, unit, 0.01, prior, 1.0)
    np.testing.assert_allclose(got, [[0.0, 0.020, -0.040]], atol=1e-12)


def test_the_std_covers_the_bias_of_a_track_that_the_dead_zone_clipped():
    """A track looking straight up, a prior 0.5 m off (a network that missed the near field)
    and loose (2 m): the dead zone moves each observation 3 noise units towards the prior, so
    the estimate is biased by 3 s beside its noise s. Its standard deviation must cover that:
    s sqrt(1 + 3^2) (95 % of the errors within two sigma), not the s sqrt(1 + 3^2 / 3) of an
    estimate that may sit anywhere in the zone (84 %), which stays where the prior fits."""
    rng = np.random.default_rng(3)
    noise, width, shape = 0.01, 3.0, (200, 200)
    truth = np.zeros((3,) + shape)
    unit = np.array([0.0, 0.0, 1.0])
    los = truth[2] + rng.normal(0.0, noise, shape)
    prior = truth.copy()
    prior[2, :100] += 0.5                          # misses the track: clipped
    prior[2, 100:] += rng.uniform(-width * noise, width * noise, (100, 200)) * 0.5    # within the zone
    estimate, std, _ = solve_tracks([(los, unit, noise)], prior, np.full((3,) + shape, 2.0), width,
                                    scale_prior=False)
    z = np.abs(estimate[2] - truth[2]) / std[2]
    clipped = np.abs(los - prior[2]) > width * noise
    assert clipped[:100].all() and clipped[100:].mean() < 0.05
    np.testing.assert_allclose(std[2][clipped], noise * np.sqrt(1 + width ** 2), rtol=1e-3)
    np.testing.assert_allclose(std[2][~clipped], noise * np.sqrt(1 + width ** 2 / 3), rtol=1e-3)
    assert float((z[:100] <= 2).mean()) > 0.95
    assert float((z[100:] <= 2).mean()) > 0.95


def test_a_scene_without_any_insar_keeps_the_networks_field_and_sigma():
    """Both tracks empty (a synthetic scene of partial frames, decorrelation and dropout can
    be): nothing to be consistent with, so the network's field and sigma stand, and the notes
    say why, instead of the step failing."""
    h, w = 8, 10
    network = np.random.default_rng(0).normal(size=(3, h, w)) * 0.1
    los = np.zeros((2, 3, h, w))
    los[:, 2] = 1.0
    gnss = np.zeros((2, 121, 3))
    gnss[:, 60:, 0] = 0.05
    xy_m = np.array([[1000.0, -2000.0], [5000.0, -6000.0]])
    result = consistent_field(network, np.full((2, 5, h, w), np.nan), los, np.linspace(0.0, 120.0, 5), gnss, xy_m,
                              1000.0, network_std_m=np.full((3, h, w), 0.02))
    assert np.allclose(result.estimate_m, network) and np.allclose(result.std_m, 0.02)
    assert result.notes[:2] == ["no ascending data", "no descending data"]
    assert not any(t["used"] for t in result.quality["tracks"])


def test_the_extraction_fits_each_track_with_its_acquisition_days(bundled, tmp_path):
    """The files' acquisition dates come back as the generator's days, and fitting the time
    function through them (as the epochs were interpolated) lowers each track's noise estimate."""
    from insar_gnss_3d.core.synthetic import model_epoch_days

    net, scene = bundled
    arrays = helpers.sample_scene(seed=4, size_px=64, max_displacement_m=(0.5, 0.5))
    paths = helpers.write_scene(arrays, tmp_path / "scene")
    asc = prepare.TrackSource("INSAR_ASC", (paths["INSAR_ASC"],), paths["LOS_ASC"])
    desc = prepare.TrackSource("INSAR_DESC", (paths["INSAR_DESC"],), paths["LOS_DESC"])
    g = paths["gnss"]
    prepared = prepare.prepare_scene(asc, desc, paths["DEM"], g["dates"], g["enu_m"], g["x"], g["y"],
                                     g["stations"], scene, units="m")
    days = prepared.acquisition_days()
    for k in range(2):
        assert np.array_equal(days[k], np.asarray(arrays.acq_days[k], dtype=np.float64))
    network = prepare.run_model(prepared, net, tile_px=64, overlap_px=0)
    args = (network, prepared.insar_epochs_m, prepared.los, model_epoch_days(scene), prepared.gnss_m,
            prepared.gnss_xy_m, prepared.grid.pixel_size)
    noise = [[t["series_noise_m"] for t in consistent_field(*args, acquisition_days=a).quality["tracks"]]
             for a in (days, None)]
    assert all(with_days < without for with_days, without in zip(*noise)), noise
    # crossvalidate's joint peer reduces the series the same way
    from insar_gnss_3d.core.crossval import joint_on_prepared
    peer = [t["series_noise_m"] for t in joint_on_prepared(prepared, scene).quality["tracks"]]
    assert peer == pytest.approx(noise[0], rel=1e-9)


def test_smoothing_ignores_nan_and_keeps_constants():
    field = np.full((1, 20, 20), 2.0)
    field[0, 5:8, 5:8] = np.nan
    out = smooth_nan(field, 2.0)
    assert np.isnan(out[0, 6, 6]) and np.allclose(out[np.isfinite(out)], 2.0)


def _with_stations(prepared, index):
    index = np.asarray(index, dtype=int)
    return dataclasses.replace(prepared, gnss_m=prepared.gnss_m[index], gnss_xy_m=prepared.gnss_xy_m[index],
                               stations=[prepared.stations[i] for i in index])


def _collinear(prepared, count):
    """``count`` stations closest to a west-east line through the scene centre."""
    xy = prepared.gnss_xy_m
    h = prepared.grid.height * prepared.grid.pixel_size
    order = np.argsort(np.abs(xy[:, 1] + h / 2))
    return list(order[:count])


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_degenerate_networks_give_a_bounded_output(bundled, scene96, count):
    net, scene = bundled
    prepared, truth = scene96
    sub = _with_stations(prepared, _collinear(prepared, count))
    network = prepare.run_model(sub, net, tile_px=48, overlap_px=16)
    out, quality, _ = consistent_extraction(sub, network, scene)
    los_change = np.abs(prepared.insar_epochs_m[:, -1] - prepared.insar_epochs_m[:, 0])
    observed = max(float(np.nanpercentile(los_change, 99.9)), float(np.abs(truth).max()))
    assert np.isfinite(out[:3]).mean() > 0.9
    # never a plane across the scene: bounded by what the data show
    assert np.nanmax(np.abs(out[:3])) <= 2.0 * observed
    assert (out[3:][np.isfinite(out[3:])] > 0).all()
    assert not any("reaches" in n["text"] for n in quality["notes"])
    if count < 3:
        assert any("GNSS station(s) with a displacement over the window inform the scene" in n["text"]
                   for n in quality["notes"])


def test_no_seam_where_tiles_meet_with_a_sparse_network(bundled, scene96):
    """Three stations in different tiles: at a tile border the field steps no more than at its
    neighbours (a seam is a jump against the local gradient; the steepest part of the field,
    over the fault, may well lie on a border)."""
    from insar_gnss_3d.core.infer import tile_starts

    net, _ = bundled
    prepared, _ = scene96
    xy = prepared.gnss_xy_m
    sub = _with_stations(prepared, [int(np.argmin(xy[:, 0])), int(np.argmax(xy[:, 0])), int(np.argmin(xy[:, 1]))])
    tile, overlap = 48, 24
    many = prepare.run_model(sub, net, tile_px=tile, overlap_px=overlap)
    for axis in (1, 2):
        # the working grid's size (a multi-scale model chooses its pixel, prepare.working_pixel_m)
        starts = tile_starts(many.shape[axis], tile, overlap)
        borders = sorted({s - 1 for s in starts[1:]} | {s + tile - 1 for s in starts[:-1]})
        steps = np.nanmean(np.abs(np.diff(many, axis=axis)), axis=3 - axis)          # (3, n - 1)
        floor = 2.5 * np.median(np.delete(steps, borders, axis=1), axis=1)
        for b in borders:
            near = [i for i in (b - 2, b - 1, b + 1, b + 2) if 0 <= i < steps.shape[1]]
            limit = np.maximum(floor, 1.5 * steps[:, near].max(axis=1))
            assert (steps[:, b] <= limit).all(), (axis, b, steps[:, b], limit)


def test_the_networks_own_sigma_weighs_it_pixel_by_pixel(bundled, scene96):
    """A network 0.5 m too high everywhere, sure to a micrometre in the west half and unsure by
    a metre in the east: the step (one pass, no elastic source) keeps the west as it is and the
    tracks remove the east's bias down to the dead zone (3 noise units along each LOS)."""
    net, scene = bundled
    prepared, _ = scene96
    network = prepare.run_model(prepared, net, tile_px=48, overlap_px=16)
    biased = network.copy()
    biased[2] += 0.5
    w = network.shape[-1]
    std = np.full_like(network, 1.0)
    std[..., : w // 2] = 1e-6
    out, quality, _ = consistent_extraction(prepared, biased, scene, network_std_m=std, source_prior=False)
    assert quality["network_sigma_source"] == "std head"
    west, east = (slice(None), slice(4, w // 2 - 8)), (slice(None), slice(w // 2 + 8, -4))
    assert np.nanmax(np.abs(out[2][west] - biased[2][west])) < 1e-3
    assert np.nanmax(out[3:][(slice(None),) + west]) < 1e-5        # posterior std: the prior's own
    # the east's bias is mostly gone, and its posterior std is the tracks' (far below 1 m; the
    # unresolved north's 1 m leaks into up through the LOS vectors' small north components)
    assert abs(np.nanmedian(out[2][east] - network[2][east])) < 0.2
    assert np.nanmedian(out[5][east]) < 0.25
    # QUALITY says how much of each track the network missed: all of it (0.5 m is far beyond
    # 3 noise units of either track), and little when unbiased
    for track in (t for t in quality["tracks"] if t.get("used")):
        assert track["network_beyond_zone_fraction"] > 0.95 and track["zone_noise_units"] == 3.0
    assert any("missed it by more than 3 times its noise" in n["text"] for n in quality["notes"])
    _, unbiased, _ = consistent_extraction(prepared, network, scene, network_std_m=std, source_prior=False)
    assert all(t["network_beyond_zone_fraction"] < 0.1 for t in unbiased["tracks"] if t.get("used"))


def test_the_output_explains_every_track_within_its_noise_plus_20_mm(bundled, scene96):
    """One pass of the step (no source), a network 0.3 m off in up over its east half, unsure by 0.3 m, and a dead
    zone of 10 noise units that would
    let the output miss the tracks by ~10 noise units: the step narrows the zone until the
    output as written (smoothed correction included) misses each track by at most its noise +
    20 mm, says so, and reports that residual."""
    from insar_gnss_3d.core.consistency import LOS_RESIDUAL_MARGIN_M, consistent_field
    from insar_gnss_3d.core.joint import los_residual_rms
    from insar_gnss_3d.core.synthetic import model_epoch_days

    net, scene = bundled
    prepared, _ = scene96
    network = prepare.run_model(prepared, net, tile_px=48, overlap_px=16)
    biased = network.copy()
    biased[2, :, network.shape[-1] // 2:] += 0.3

    def step(width, field=biased):
        return consistent_field(field, prepared.insar_epochs_m, prepared.los, model_epoch_days(scene),
                                prepared.gnss_m, prepared.gnss_xy_m, prepared.grid.pixel_size,
                                network_std_m=np.full_like(network, 0.3), dead_zone=width, source_prior=False)

    result = step(10.0)
    tracks = [t for t in result.quality["tracks"] if t.get("used")]
    assert len(tracks) == 2 == len(result.observations)
    assert result.quality["dead_zone_noise_units"] < 10.0
    assert any("dead zone was narrowed from 10" in n for n in result.notes)
    for track, (los_m, unit, noise_m) in zip(tracks, result.observations):
        written = los_residual_rms(result.estimate_m, los_m, unit)
        assert track["los_residual_rms_m"] == pytest.approx(written, rel=1e-12)
        assert written <= noise_m + LOS_RESIDUAL_MARGIN_M
    # the stations' residuals are those of the output as written, with its sigma there
    from insar_gnss_3d.core.joint import values_at_stations
    at = values_at_stations(result.estimate_m, prepared.gnss_xy_m, prepared.grid.pixel_size)
    at_std = values_at_stations(result.std_m, prepared.gnss_xy_m, prepared.grid.pixel_size)
    stations = result.quality["stations"]
    assert len(stations) == len(prepared.gnss_xy_m) > 3
    for st, value, sigma in zip(stations, at, at_std):
        np.testing.assert_allclose(st["residual_m"], value - np.asarray(st["gnss_m"]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(st["output_std_m"], sigma, rtol=0, atol=1e-12)
    # the network as it is explains the tracks with the default zone, which is kept
    kept = step(3.0, network)
    assert kept.quality["dead_zone_noise_units"] == 3.0 and not any("narrowed" in n for n in kept.notes)


def test_the_fitted_source_gives_the_north_that_a_network_blind_to_it_missed(bundled, scene96):
    """A network with east and up right but no north (what the two look directions alone
    give): the step's elastic source, fitted to east/up and the stations, brings north back
    between the stations; without it north stays where the stations' kriging puts it."""
    from insar_gnss_3d.core.synthetic import model_epoch_days

    from insar_gnss_3d.core.okada import surface_displacement

    _, scene = bundled
    prepared, _ = scene96
    # the truth on the working grid (same upper-left origin as the scene, the model's pixel)
    grid, sources = prepared.grid, scene96_sources()
    pixel = grid.pixel_size
    x, y = np.meshgrid((np.arange(grid.width) + 0.5) * pixel, -(np.arange(grid.height) + 0.5) * pixel)
    truth = np.stack(surface_displacement(sources, x, y))
    blind = truth.copy()
    blind[1] = 0.0

    def step(source_prior):
        return consistent_field(blind, prepared.insar_epochs_m, prepared.los, model_epoch_days(scene),
                                prepared.gnss_m, prepared.gnss_xy_m, prepared.grid.pixel_size,
                                network_std_m=np.full_like(blind, 0.05), acquisition_days=prepared.acquisition_days(),
                                source_prior=source_prior)

    def north_rms(result):
        return float(np.sqrt(np.nanmean((result.estimate_m[1] - truth[1]) ** 2)))

    without, with_source = step(False), step(True)
    assert "source" not in without.quality
    source = with_source.quality["source"]
    assert source["explained"] > 0.9 and source["prior_weight"] > 0.5
    assert any("elastic source" in n for n in with_source.notes)
    assert north_rms(with_source) < 0.5 * north_rms(without)
