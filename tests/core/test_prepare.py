"""core.prepare: user files -> the CNN's working grid and epochs -> back, without QGIS."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from osgeo import gdal

from insar_gnss_3d.core import prepare
from insar_gnss_3d.core.features import resample_epochs
from insar_gnss_3d.core.modelfile import ModelFileError, load_model
from insar_gnss_3d.core.synthetic import SceneConfig, model_epoch_days

_spec = importlib.util.spec_from_file_location("helpers_scenes",
                                               Path(__file__).resolve().parents[1] / "helpers_scenes.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

D = np.datetime64


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("prepare")


@pytest.fixture(scope="module")
def model(workdir):
    torch.manual_seed(0)
    path = helpers.train_tiny_model(workdir / "tiny.pt")
    return load_model(path)[:2]


@pytest.fixture(scope="module")
def files(workdir):
    arrays = helpers.sample_scene(seed=3, size_px=64, max_displacement_m=(0.3, 0.3))
    return arrays, helpers.write_scene(arrays, workdir / "scene")


def tracks(paths):
    return (prepare.TrackSource("INSAR_ASC", (paths["INSAR_ASC"],), paths["LOS_ASC"]),
            prepare.TrackSource("INSAR_DESC", (paths["INSAR_DESC"],), paths["LOS_DESC"]))


def prepared_from(paths, scene, asc=None, desc=None, units="m", gnss=None):
    a, d = tracks(paths)
    g = gnss or paths["gnss"]
    return prepare.prepare_scene(asc if asc is not None else a, desc if desc is not None else d,
                                 paths["DEM"], g["dates"], g["enu_m"], g["x"], g["y"], g["stations"],
                                 scene, units=units)


# --------------------------------------------------------------------------- grids


def test_working_grid_of_a_raster_in_the_local_utm_zone_is_its_own_grid(files):
    _, paths = files
    grid = prepare.working_grid(paths["INSAR_ASC"], 1000.0)
    assert (grid.x0, grid.y0, grid.width, grid.height) == (paths["grid"].x0, paths["grid"].y0, 64, 64)
    assert prepare.grid_epsg(grid) == helpers.UTM_EPSG
    coarse = prepare.working_grid(paths["INSAR_ASC"], 2000.0)
    assert (coarse.x0, coarse.y0, coarse.width, coarse.pixel_size) == (paths["grid"].x0, paths["grid"].y0, 32, 2000.0)


def test_working_grid_of_a_lonlat_raster_is_utm_covering_it(files, workdir):
    _, paths = files
    licsar = helpers.write_licsar_like(paths, workdir / "licsar_grid")
    grid = prepare.working_grid(licsar["INSAR_ASC"][0], 1000.0)
    assert prepare.grid_epsg(grid) == helpers.UTM_EPSG       # 131.x E -> zone 52
    xmin, ymin, xmax, ymax = prepare.raster_bounds(gdal.Open(licsar["INSAR_ASC"][0]), grid.crs_wkt)
    gx0, gy0, gx1, gy1 = grid.extent
    assert gx0 <= xmin and gy0 <= ymin and gx1 >= xmax and gy1 >= ymax
    assert gx1 - xmax < 1000.0 and gy0 > ymin - 1000.0


# --------------------------------------------------------------------------- time


def test_window_is_the_gnss_span_or_ends_on_the_last_insar_epoch():
    asc = np.array(["2024-01-05", "2024-03-01", "2024-04-28"], dtype="datetime64[D]")
    gnss = np.arange(D("2024-01-01"), D("2024-05-01"))                 # 121 days
    start, notes = prepare.choose_window([asc], gnss, 121)
    assert start == D("2024-01-01") and notes == []
    longer = np.arange(D("2023-06-01"), D("2024-06-01"))
    start, notes = prepare.choose_window([asc, asc - 2], longer, 121)
    assert start == D("2024-04-28") - 120
    assert "ending on the last InSAR epoch" in notes[0]
    start, notes = prepare.choose_window([asc], gnss[:90], 121)
    assert start == D("2024-01-01") and "only 90 days" in notes[0]


def test_epochs_for_window_brackets_the_window():
    dates = np.array(["2023-12-20", "2023-12-30", "2024-01-11", "2024-03-01", "2024-04-29",
                      "2024-05-11", "2024-06-01"], dtype="datetime64[D]")
    index, notes = prepare.epochs_for_window(dates, D("2024-01-01"), 121, "INSAR_ASC")
    assert index == [1, 2, 3, 4, 5] and notes == []
    index, notes = prepare.epochs_for_window(dates[3:], D("2024-01-01"), 121, "INSAR_ASC")
    assert index == [0, 1, 2] and "covers only 2024-03-01" in notes[0]
    with pytest.raises(ValueError, match="outside the model's window"):
        prepare.epochs_for_window(dates[:2], D("2024-01-01"), 121, "INSAR_ASC")


def test_gnss_window_and_station_selection(files):
    _, paths = files
    grid = paths["grid"]
    dates = np.arange(D("2024-01-01"), D("2024-01-11"))
    enu = np.arange(2 * 10 * 3, dtype=float).reshape(2, 10, 3)
    cut = prepare.gnss_window(dates, enu, D("2024-01-05"), 121)
    assert cut.shape == (2, 121, 3)
    np.testing.assert_array_equal(cut[:, :6], enu[:, 4:])
    assert np.isnan(cut[:, 6:]).all()
    x0, y0 = grid.x0, grid.y0
    x = np.array([x0 + 10e3, x0 - 20e3, x0 - 40e3, x0 + 10e3])
    y = np.array([y0 - 10e3, y0 + 20e3, y0 - 10e3, y0 - 30e3])
    series = np.ones((4, 121, 3))
    series[3, 1:] = np.nan                                           # one day only
    keep, notes = prepare.select_stations(x, y, series, grid, 30e3)
    assert keep.tolist() == [True, True, False, False]
    assert "2 of 4 stations used (1 inside the scene, 1 within 30 km" in notes[0]
    with pytest.raises(ValueError, match="cover different areas: none of the 4 GNSS stations lies inside the "
                                         "scene or within 30 km"):
        prepare.select_stations(x + 500e3, y, series, grid, 30e3)
    with pytest.raises(ValueError, match="days of data in the model's window"):
        prepare.select_stations(x, y, series * np.nan, grid, 30e3)


# --------------------------------------------------------------------------- the whole step


def test_files_give_the_inputs_the_scene_arrays_give(files, model):
    """On the plugin's grid the warp is the identity: the prepared inputs equal the in-core ones."""
    arrays, paths = files
    _, scene = model
    prepared = prepared_from(paths, scene)
    assert prepared.window_start == D(helpers.START.isoformat())
    days = torch.full((1, 2, max(len(d) for d in arrays.acq_days)), float("nan"), dtype=torch.float64)
    series = torch.full((1, 2, days.shape[2], 64, 64), float("nan"))
    for t in range(2):
        days[0, t, :len(arrays.acq_days[t])] = torch.as_tensor(arrays.acq_days[t], dtype=torch.float64)
        series[0, t, :len(arrays.acq_days[t])] = torch.as_tensor(arrays.insar_m[t])
    expected = resample_epochs(series, days, model_epoch_days(scene))[0].numpy()
    np.testing.assert_allclose(prepared.insar_epochs_m, expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(prepared.los, arrays.los, rtol=1e-6)
    np.testing.assert_allclose(prepared.dem_m, arrays.dem_m, rtol=1e-6)
    names = paths["gnss"]["stations"]
    keep = [names.index(s) for s in prepared.stations]
    np.testing.assert_allclose(prepared.gnss_xy_m, arrays.gnss_xy_m[keep], atol=0.5)  # float32 in the scene
    np.testing.assert_allclose(prepared.gnss_m, arrays.gnss_m[keep], equal_nan=True, rtol=1e-6)


def test_licsar_radians_per_epoch_files_give_the_same_displacement(files, model, workdir):
    """Phase [rad] in EPSG:4326 files, one per epoch, with E/N/U LOS files: same LOS in metres."""
    _, paths = files
    _, scene = model
    licsar = helpers.write_licsar_like(paths, workdir / "licsar")
    asc = prepare.TrackSource("INSAR_ASC", tuple(licsar["INSAR_ASC"]), licsar["LOS_ASC"])
    desc = prepare.TrackSource("INSAR_DESC", tuple(licsar["INSAR_DESC"]), licsar["LOS_DESC"])
    g = paths["gnss"]
    got = prepare.prepare_scene(asc, desc, licsar["DEM"], g["dates"], g["enu_m"], g["x"], g["y"],
                                g["stations"], scene, units="rad")
    plain = prepared_from(paths, scene)
    # compare on the plain grid: carry the LiCSAR-route arrays there
    last = _regrid(got.insar_epochs_m[:, -1], got.grid, plain.grid)
    ref = plain.insar_epochs_m[:, -1] - np.nanmedian(plain.insar_epochs_m[:, -1], axis=(1, 2))[:, None, None]
    last = last - np.nanmedian(last, axis=(1, 2))[:, None, None]
    inner = np.s_[:, 4:-4, 4:-4]
    ok = np.isfinite(last[inner]) & np.isfinite(ref[inner])
    assert ok.mean() > 0.6
    diff = last[inner][ok] - ref[inner][ok]
    assert np.sqrt(np.mean(diff ** 2)) < 0.35 * np.std(ref[inner][ok])
    assert np.corrcoef(last[inner][ok], ref[inner][ok])[0, 1] > 0.93
    los = _regrid(got.los[0], got.grid, plain.grid)
    np.testing.assert_allclose(np.nanmedian(los, axis=(1, 2)), np.nanmedian(plain.los[0], axis=(1, 2)), atol=5e-3)


def _regrid(array, src, dst):
    """(bands, H, W) on grid ``src`` -> grid ``dst`` (bilinear, GDAL)."""
    mem = gdal.GetDriverByName("MEM").Create("", src.width, src.height, len(array), gdal.GDT_Float32)
    mem.SetGeoTransform(src.geotransform)
    mem.SetProjection(src.crs_wkt)
    for i, a in enumerate(array):
        mem.GetRasterBand(i + 1).WriteArray(a)
        mem.GetRasterBand(i + 1).SetNoDataValue(float("nan"))
    out = gdal.Warp("", mem, format="MEM", outputBounds=dst.extent, width=dst.width, height=dst.height,
                    dstSRS=dst.crs_wkt, resampleAlg="bilinear", srcNodata="nan", dstNodata="nan")
    return out.ReadAsArray().reshape(len(array), dst.height, dst.width)


def test_gnss_longer_than_the_window_ends_it_on_the_last_insar_epoch(files, model):
    arrays, paths = files
    _, scene = model
    g = dict(paths["gnss"])
    extra = 60
    g["dates"] = np.arange(g["dates"][0] - extra, g["dates"][-1] + 1)
    g["enu_m"] = np.concatenate([np.repeat(g["enu_m"][:, :1], extra, axis=1), g["enu_m"]], axis=1)
    prepared = prepared_from(paths, scene, gnss=g)
    last = max(D(helpers.START.isoformat()) + int(d[-1]) for d in arrays.acq_days)
    assert prepared.window_start == last - 120
    assert any("ending on the last InSAR epoch" in n for n in prepared.notes)
    offset = int((prepared.window_start - g["dates"][0]).astype(int))
    n = min(121, g["enu_m"].shape[1] - offset)
    np.testing.assert_array_equal(prepared.gnss_m[:, :n],
                                  g["enu_m"][[g["stations"].index(s) for s in prepared.stations], offset:offset + n])


def test_missing_track_needs_a_model_trained_for_it(files, model):
    _, paths = files
    _, scene = model
    asc, _ = tracks(paths)
    assert scene.track_dropout_probability > 0
    notes = prepare.check_tracks(asc, None, scene)
    assert "track_dropout_probability" in notes[0]
    g = paths["gnss"]
    prepared = prepare.prepare_scene(asc, None, paths["DEM"], g["dates"], g["enu_m"], g["x"], g["y"],
                                     g["stations"], scene)
    assert np.isnan(prepared.insar_epochs_m[1]).all() and np.isfinite(prepared.insar_epochs_m[0]).any()
    assert prepared.tracks["INSAR_DESC"] is None
    strict = SceneConfig.from_dict({**scene.to_dict(), "track_dropout_probability": 0.0})
    with pytest.raises(ValueError, match="INSAR_DESC is missing and this model was trained with both"):
        prepare.check_tracks(asc, None, strict)
    with pytest.raises(ValueError, match="at least one InSAR track"):
        prepare.check_tracks(None, None, scene)


def test_los_components_as_licsar_files(files, workdir):
    _, paths = files
    licsar = helpers.write_licsar_like(paths, workdir / "licsar_los")
    found = prepare.los_paths(licsar["LOS_ASC"], "LOS_ASC")
    assert [Path(p).name for p in found] == ["asc.geo.E.tif", "asc.geo.N.tif", "asc.geo.U.tif"]
    Path(found[2]).rename(Path(found[2]).with_suffix(".bak"))
    with pytest.raises(ValueError, match="asc.geo.U.tif are missing"):
        prepare.los_paths(licsar["LOS_ASC"], "LOS_ASC")
    with pytest.raises(ValueError, match="band"):
        prepare.los_paths(paths["DEM"], "LOS_ASC")


@pytest.mark.parametrize("case, pattern", [
    ("no dates", "no epoch dates"),
    ("reversed", "INSAR_ASC: Epoch dates are not in time order"),
    ("one epoch", "single epoch"),
    ("no crs", "no coordinate reference system"),
])
def test_bad_epochs(files, tmp_path, case, pattern):
    arrays, paths = files
    ds = gdal.Open(paths["INSAR_ASC"])
    files_ = []
    for b in range(1, 4):
        date = ds.GetRasterBand(b).GetDescription().replace("-", "")
        name = tmp_path / (f"epoch{b}.tif" if case == "no dates" else f"asc_{date}.tif")
        if case == "no crs":
            out = gdal.GetDriverByName("GTiff").Create(str(name), ds.RasterXSize, ds.RasterYSize, 1, gdal.GDT_Float32)
            out.SetGeoTransform(ds.GetGeoTransform())
            out.GetRasterBand(1).WriteArray(ds.GetRasterBand(b).ReadAsArray())
            out = None
        else:
            gdal.Translate(str(name), ds, bandList=[b])
        files_.append(str(name))
    if case == "reversed":
        files_ = files_[::-1]
    if case == "one epoch":
        files_ = files_[:1]
    with pytest.raises(ValueError, match=pattern):
        prepare.track_epochs(prepare.TrackSource("INSAR_ASC", tuple(files_)))


def test_model_that_expects_other_inputs_is_refused(model):
    from insar_gnss_3d.core.model import DualBranchNet, ModelConfig
    _, scene = model
    net = DualBranchNet(ModelConfig(epochs=scene.model_epochs + 1, **helpers.TINY_MODEL))
    with pytest.raises(ModelFileError, match="expects other inputs"):
        prepare.check_model_inputs(net, scene)


# --------------------------------------------------------------------------- network, output


def test_result_on_a_lonlat_input_grid_masks_pixels_without_coverage(files, model, workdir, tmp_path):
    _, paths = files
    net, scene = model
    licsar = helpers.write_licsar_like(paths, workdir / "licsar_out")
    asc = prepare.TrackSource("INSAR_ASC", tuple(licsar["INSAR_ASC"]), licsar["LOS_ASC"])
    desc = prepare.TrackSource("INSAR_DESC", tuple(licsar["INSAR_DESC"]), licsar["LOS_DESC_3BAND"])
    g = paths["gnss"]
    prepared = prepare.prepare_scene(asc, desc, licsar["DEM"], g["dates"], g["enu_m"], g["x"], g["y"],
                                     g["stations"], scene, units="rad")
    result = prepare.run_model(prepared, net)
    out = str(tmp_path / "out.tif")
    prepare.write_result(result, prepared.grid, licsar["INSAR_ASC"][0], out, prepared.tracks)
    pred, (gt, size, wkt) = helpers.read_array(out)
    ref = gdal.Open(licsar["INSAR_ASC"][0])
    assert tuple(gt) == ref.GetGeoTransform()            # copied exactly: 0.005 stays 0.005
    assert gt[1] == 0.005 and gt[5] == -0.005
    assert size == (ref.RasterXSize, ref.RasterYSize)
    covered = np.zeros(pred.shape[1:], dtype=bool)
    for f in licsar["INSAR_ASC"] + licsar["INSAR_DESC"]:
        covered |= np.isfinite(gdal.Open(f).ReadAsArray())
    assert (~covered).any()
    assert np.isnan(pred[:, ~covered]).all()
    assert np.isfinite(pred[:, covered]).mean() > 0.99
    truth = helpers.truth_on(licsar["INSAR_ASC"][0], paths["TRUTH"])
    assert np.all(np.isfinite(helpers.mssim(pred, truth)))


def test_cancel_while_writing_leaves_nothing(files, model, tmp_path):
    _, paths = files
    net, scene = model
    prepared = prepared_from(paths, scene)
    result = prepare.run_model(prepared, net)
    out = tmp_path / "out.tif"
    for stop in (0.1, 0.9):
        seen = []

        def stopped(seen=seen, stop=stop):
            return bool(seen) and seen[-1] >= stop

        with pytest.raises(prepare.ExtractionCancelled):
            prepare.write_result(result, prepared.grid, paths["INSAR_ASC"], str(out), prepared.tracks,
                                 progress=lambda f, m, seen=seen: seen.append(f), is_canceled=stopped)
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(prepare.ExtractionCancelled):
        prepare.run_model(prepared, net, is_canceled=lambda: True)


@pytest.fixture(scope="module")
def large(model, workdir):
    arrays = helpers.sample_scene(seed=4, size_px=96, max_displacement_m=(0.3, 0.3))
    paths = helpers.write_scene(arrays, workdir / "scene96")
    return prepared_from(paths, model[1])


def test_tiles_blend_without_seams(model, large):
    """Where tiles meet, the field steps no more than it does elsewhere (no seam lines)."""
    from insar_gnss_3d.core.infer import tile_starts

    net, _ = model
    tile, overlap = 48, 16
    many = prepare.run_model(large, net, tile_px=tile, overlap_px=overlap)
    assert np.isfinite(many).all()
    starts = tile_starts(96, tile, overlap)
    borders = sorted({s - 1 for s in starts[1:]} | {s + tile - 1 for s in starts[:-1]})
    for axis in (1, 2):
        # mean |step| across each column (axis 2) or row (axis 1) boundary, per component
        steps = np.abs(np.diff(many, axis=axis)).mean(axis=3 - axis)          # (3, 95)
        others = np.delete(steps, borders, axis=1)
        limit = np.maximum(2.5 * np.median(others, axis=1), others.max(axis=1))
        assert (steps[:, borders].max(axis=1) <= limit).all(), (axis, steps[:, borders], limit)


def test_multi_tile_run_matches_a_single_tile_run(model, large):
    net, _ = model
    one = prepare.run_model(large, net, tile_px=96, overlap_px=0)
    many = prepare.run_model(large, net, tile_px=48, overlap_px=16)
    rms = lambda a: np.sqrt(np.nanmean(a ** 2, axis=(1, 2)))  # noqa: E731
    assert (rms(many - one) < 0.15 * rms(one)).all(), rms(many - one) / rms(one)
