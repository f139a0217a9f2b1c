"""Inputs that look wrong get a sentence that names the parameter and says what to do (issue 14)."""

import numpy as np
import pytest
from pyproj import Transformer

from insar_gnss_3d.core.geometry import Grid, los_unit_vector
from insar_gnss_3d.core.insar_io import check_los_values
from insar_gnss_3d.core.prepare import check_look_directions, check_scene_size, select_stations
from insar_gnss_3d.core.raster import crs_wkt_from_epsg
from insar_gnss_3d.core.synthetic import SceneConfig


def _series(rng, scale_m):
    """A 121-day-like LOS cube [m]: 8 mm atmosphere plus a signal up to ``scale_m``."""
    signal = np.linspace(0.0, scale_m, 20 * 20).reshape(20, 20)
    return np.stack([f * signal + rng.normal(0.0, 0.008, signal.shape) for f in np.linspace(0, 1, 6)])


@pytest.mark.parametrize("scale_m", [0.005, 0.05, 0.5])
def test_plausible_units_give_no_note(scale_m):
    assert check_los_values(_series(np.random.default_rng(0), scale_m), "m", "INSAR_ASC") == []


def test_metres_declared_as_millimetres_is_flagged():
    metres = _series(np.random.default_rng(1), 0.2)
    as_mm = metres * 1e-3               # what INSAR_UNITS=mm makes of values in metres
    notes = check_los_values(as_mm, "mm", "INSAR_DESC")
    assert len(notes) == 1
    assert notes[0].startswith("INSAR_DESC:") and "INSAR_UNITS=mm" in notes[0]
    assert "set INSAR_UNITS=m." in notes[0]


def test_millimetres_declared_as_metres_is_flagged():
    millimetres = _series(np.random.default_rng(2), 0.04) * 1e3     # 40 mm signal, 8 mm noise, in mm
    millimetres = np.clip(millimetres, -45.0, 45.0)                 # below the 50 m refusal
    notes = check_los_values(millimetres, "m", "INSAR_ASC")
    assert len(notes) == 1 and "set INSAR_UNITS=mm" in notes[0]


ASC, DESC = los_unit_vector(-12.0, 39.0)[0], los_unit_vector(-168.0, 39.0)[0]


def test_look_directions():
    assert ASC < -0.5 and DESC > 0.5                   # right-looking Sentinel-1 (conventions)
    assert check_look_directions({"INSAR_ASC": ASC, "INSAR_DESC": DESC}) == []
    assert check_look_directions({"INSAR_ASC": ASC, "INSAR_DESC": None}) == []
    swapped = check_look_directions({"INSAR_ASC": DESC, "INSAR_DESC": ASC})
    assert len(swapped) == 1 and "swapped" in swapped[0] and "INSAR_DESC/LOS_DESC" in swapped[0]
    twice = check_look_directions({"INSAR_ASC": ASC, "INSAR_DESC": ASC})
    assert len(twice) == 1 and "same way, west" in twice[0] and "given twice" in twice[0]
    alone = check_look_directions({"INSAR_ASC": DESC, "INSAR_DESC": None})
    assert len(alone) == 1 and "give it as INSAR_DESC/LOS_DESC" in alone[0]


def test_a_scene_smaller_than_the_network_context_is_flagged():
    scene = SceneConfig()
    wkt = crs_wkt_from_epsg(32652)
    notes = check_scene_size(Grid(600e3, 3650e3, scene.pixel_m, 1, 1, wkt), scene, "INSAR_ASC")
    assert len(notes) == 1 and notes[0].startswith("INSAR_ASC covers only 1 x 1 pixels")
    assert check_scene_size(Grid(600e3, 3650e3, scene.pixel_m, 96, 80, wkt), scene, "INSAR_ASC") == []


def test_scene_in_the_other_hemisphere_is_not_blamed_on_gnss():
    """Stations near 33 N and a scene georeferenced at 33 S (a latitude sign lost)."""
    wkt = crs_wkt_from_epsg(32752)                       # UTM 52 S: the scene's working grid
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:32752", always_xy=True)
    scene_x, scene_y = to_grid.transform(131.0, -33.0)
    grid = Grid(scene_x - 48e3, scene_y + 48e3, 1000.0, 96, 96, wkt)
    lon, lat = np.array([130.9, 131.1, 131.0]), np.array([32.9, 33.0, 33.1])
    x, y = to_grid.transform(lon, lat)
    series = np.zeros((3, 121, 3))
    with pytest.raises(ValueError) as info:
        select_stations(np.asarray(x), np.asarray(y), series, grid, 30e3)
    text = str(info.value)
    assert "No GNSS station lies inside" not in text
    assert "cover different areas" in text and "different hemispheres" in text
    assert "33.00 deg S, 131.00 deg E" in text and "32.90 deg N" in text
