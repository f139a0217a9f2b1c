"""The readers on real files: a 2016 InSAR series over Kilauea (OPERA-like names
``displacement_<reference>_<epoch>.tif``, one file per epoch) and its LOS-vector raster."""

from pathlib import Path

import numpy as np
import pytest

from insar_gnss_3d.core.insar_io import (LosSource, TrackSource, check_los_values, read_los, to_los_m,
                                         track_epochs)
from insar_gnss_3d.core.raster import raster_grid, warp_to_grid

DATA = Path(__file__).resolve().parents[2] / "resources" / "real" / "hawaii_2016"
FILES = sorted(str(p) for p in DATA.glob("displacement_*.tif"))


def test_a_series_sharing_one_reference_is_cumulative_dated_by_the_second_date():
    epochs = track_epochs(TrackSource("INSAR_ASC", tuple(FILES), str(DATA / "hawaii_los_enu.tif")))
    assert [str(d) for d in epochs.dates] == ["2016-07-23", "2016-08-04", "2016-08-16", "2016-09-09",
                                              "2016-09-21"]
    assert epochs.sources == [(f, 1) for f in FILES]


def test_interferogram_pairs_are_still_refused(tmp_path):
    names = [tmp_path / "ifg_20160711_20160723.tif", tmp_path / "ifg_20160723_20160804.tif"]
    from insar_gnss_3d.core.insar_io import epoch_dates

    with pytest.raises(ValueError, match="like an interferogram"):
        epoch_dates([n.name for n in names], "file name")


def test_real_los_vector_is_ascending_and_unit():
    grid = raster_grid(FILES[0], "INSAR_ASC")
    e, n, u = read_los(LosSource("LOS_ASC", str(DATA / "hawaii_los_enu.tif")), grid)
    norm = np.sqrt(e ** 2 + n ** 2 + u ** 2)
    assert np.nanmax(np.abs(norm - 1.0)) < 2e-3
    # ascending Sentinel-1 over Hawaii: looks east (LOS east < 0 from ground to satellite)
    np.testing.assert_allclose([np.nanmedian(e), np.nanmedian(n), np.nanmedian(u)], [-0.67, -0.13, 0.73], atol=0.05)


def test_real_displacement_is_plausible_in_metres_and_flagged_as_millimetres():
    grid = raster_grid(FILES[0], "INSAR_ASC")
    stack = np.concatenate([warp_to_grid(f, grid, "INSAR_ASC", bands=[1]) for f in FILES])
    assert stack.shape == (5, 100, 100) and np.isfinite(stack).mean() > 0.5
    assert check_los_values(to_los_m(stack, "m"), "m", "INSAR_ASC") == []
    notes = check_los_values(to_los_m(stack, "mm"), "mm", "INSAR_ASC")
    assert notes and "INSAR_UNITS=m" in notes[0]
