"""InSAR inputs without QGIS: dates, units, plausibility, warping onto a grid."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from insar_gnss_3d.core.geometry import Grid, los_unit_vector
from insar_gnss_3d.core.insar_io import (check_los_unit_vector, check_los_values, dates_in_text,
                                         epoch_dates, los_from_raster, read_insar_stack,
                                         to_los_m, warp_to_grid)
from insar_gnss_3d.core.raster import crs_wkt_from_epsg, write_raster

GRID = Grid(500e3, 3600e3, 1000.0, 30, 20, crs_wkt_from_epsg(32652))


def test_dates_in_text():
    assert dates_in_text("20240105.geo.cum.tif") == [np.datetime64("2024-01-05")]
    assert dates_in_text("epoch 2024-02-29") == [np.datetime64("2024-02-29")]
    assert dates_in_text("20240105_20240117.unw") == [np.datetime64("2024-01-05"),
                                                      np.datetime64("2024-01-17")]
    assert dates_in_text("band 12345678") == []        # not a calendar date
    assert dates_in_text("id120240105") == []          # digits run on


def test_epoch_dates_rules():
    assert epoch_dates(["a", "b"], "band description") is None
    dates = epoch_dates(["2024-01-05", "2024-01-17"], "band description")
    assert list(dates) == [np.datetime64("2024-01-05"), np.datetime64("2024-01-17")]
    with pytest.raises(ValueError, match="holds no date"):
        epoch_dates(["2024-01-05", "band 2"], "band description")
    with pytest.raises(ValueError, match="interferogram"):
        epoch_dates(["20240105_20240117", "20240117_20240129"], "file name")
    # one shared reference: a cumulative series, dated by the second date
    dates = epoch_dates(["disp_20240105_20240117", "disp_20240105_20240129"], "file name")
    assert list(dates) == [np.datetime64("2024-01-17"), np.datetime64("2024-01-29")]
    with pytest.raises(ValueError, match="not in time order"):
        epoch_dates(["20240117", "20240105"], "file name")
    with pytest.raises(ValueError, match="not in time order"):
        epoch_dates(["20240117", "20240117"], "file name")


def test_units():
    assert to_los_m(5.0, "mm") == pytest.approx(0.005)
    assert to_los_m(2.0, "m") == 2.0
    # one fringe (2 pi) of Sentinel-1 = half a wavelength, away from the satellite
    assert to_los_m(2 * math.pi, "rad") == pytest.approx(-0.05546 / 2)
    with pytest.raises(ValueError, match="m, mm, rad"):
        to_los_m(1.0, "cm")


def test_value_checks():
    with pytest.raises(ValueError, match="unit is wrong"):
        check_los_values(np.array([0.0, 120.0]), "m", "INSAR_ASC")
    with pytest.raises(ValueError, match="no valid"):
        check_los_values(np.array([np.nan]), "m", "INSAR_ASC")
    assert check_los_values(np.array([0.0, 0.01, -0.02]), "m", "x") == []
    assert "small" in check_los_values(np.array([0.0, 1e-6]), "mm", "x")[0]
    wrapped = to_los_m(np.linspace(-3.1, 3.1, 50), "rad")
    assert any("wrapped" in n for n in check_los_values(wrapped, "rad", "x"))


def test_unit_vector_checks():
    e, n, u = los_unit_vector(np.full((3, 3), -12.0), np.full((3, 3), 39.0))
    check_los_unit_vector(e, n, u, "LOS_ASC")
    with pytest.raises(ValueError, match="not a unit vector"):
        check_los_unit_vector(2 * e, n, u, "LOS_ASC")
    with pytest.raises(ValueError, match="ground to the satellite"):
        check_los_unit_vector(-e, -n, -u, "LOS_ASC")


def test_read_stack_from_files_and_bands(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.normal(0, 5, (4, GRID.height, GRID.width))  # mm
    dates = ["20240105", "20240117", "20240129", "20240210"]
    multi = tmp_path / "cum.tif"
    write_raster(str(multi), GRID, cube, dates)
    files = []
    for d, epoch in zip(dates, cube):
        files.append(str(tmp_path / f"{d}.cum.tif"))
        write_raster(files[-1], GRID, epoch[None], ("los",))
    a = read_insar_stack([str(multi)], GRID, "mm", "INSAR_ASC")
    b = read_insar_stack(files, GRID, "mm", "INSAR_ASC", only_ends=True)
    expected = cube.astype(np.float32) / 1000.0
    assert_allclose(a.los_m, expected, rtol=1e-6)
    assert_allclose(b.los_m, expected[[0, -1]], rtol=1e-6)
    assert a.epoch_count == b.epoch_count == 4
    assert list(a.dates) == list(b.dates)
    with pytest.raises(ValueError, match="one epoch"):
        read_insar_stack([files[0]], GRID, "mm", "INSAR_ASC")


def test_warp_identity_and_no_overlap(tmp_path):
    data = np.arange(3 * GRID.height * GRID.width, dtype=np.float64).reshape(3, GRID.height, GRID.width)
    data[1, 4, 5] = np.nan
    path = tmp_path / "x.tif"
    write_raster(str(path), GRID, data, ("a", "b", "c"))
    assert_allclose(warp_to_grid(str(path), GRID, "x"), data, rtol=0, atol=0)
    far = Grid(100e3, 1000e3, 1000.0, 5, 5, GRID.crs_wkt)
    with pytest.raises(ValueError, match="does not overlap"):
        warp_to_grid(str(path), far, "x")


def test_los_raster_in_geographic_crs_warped_to_utm(tmp_path):
    """A LiCSAR-like EPSG:4326 LOS raster onto a UTM grid keeps unit vectors."""
    geo = Grid(130.9, 32.6, 0.01, 40, 40, crs_wkt_from_epsg(4326))
    lon, lat = geo.centres()
    e, n, u = los_unit_vector(np.full(lon.shape, -12.0), 33.0 + 10.0 * (lon - 130.9) / 0.4)
    path = tmp_path / "los_geo.tif"
    write_raster(str(path), geo, np.stack([e, n, u]), ("east", "north", "up"))
    utm = Grid(690e3, 3600e3, 1000.0, 20, 20, crs_wkt_from_epsg(32652))  # lies inside
    out = los_from_raster(str(path), utm, "LOS_ASC")
    norm = np.sqrt(sum(c ** 2 for c in out))
    assert np.isfinite(norm).all()
    assert_allclose(norm, 1.0, atol=1e-3)
