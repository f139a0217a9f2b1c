"""Horizontal motion as arrows (issue 14, item 8): values, geometry and style."""

import math

import numpy as np
import pytest

from insar_gnss_3d.core.arrows import arrow_samples
from insar_gnss_3d.core.geometry import Grid
from insar_gnss_3d.core.raster import crs_wkt_from_epsg, write_raster


def test_arrow_samples_pin_magnitude_azimuth_and_pixel_centres(tmp_path):
    grid = Grid(500e3, 4000e3, 100.0, 40, 20, crs_wkt_from_epsg(32652))
    enu = np.zeros((3, 20, 40))
    enu[0], enu[1], enu[2] = 0.03, -0.04, 0.01        # 5 cm to the south-east (azimuth 143.13 deg)
    enu[:, 0:4, 0:4] = np.nan                          # no data: no arrow
    path = str(tmp_path / "f.tif")
    write_raster(path, grid, enu, ("east", "north", "up"))
    a = arrow_samples(path, per_side=10)               # step 4 px: columns 2, 6, ..., rows 2, 6, ...
    assert a["x"].size == 10 * 5 - 1
    np.testing.assert_allclose(a["magnitude"], 0.05, rtol=1e-6)
    np.testing.assert_allclose(a["azimuth"], math.degrees(math.atan2(0.03, -0.04)), rtol=1e-6)
    assert a["x"].min() == pytest.approx(500e3 + 2.5 * 100) and a["y"].max() == pytest.approx(4000e3 - 2.5 * 100)
    east_only = np.zeros((3, 20, 40))
    east_only[0] = -0.01                               # moving west
    write_raster(path, grid, east_only, ("east", "north", "up"))
    np.testing.assert_allclose(arrow_samples(path)["azimuth"], 270.0)


def test_okada_arrows_output_and_style(run_alg, tmp_path):
    from qgis.core import QgsSymbolLayer, QgsVectorLayer
    from insar_gnss_3d.algorithms.arrows import style_arrow_layer
    params = {"FAULT_POINT": "131.0,32.5 [EPSG:4326]", "DEPTH_KM": 5, "STRIKE": 200, "DIP": 15,
              "LENGTH_KM": 40, "WIDTH_KM": 25, "RAKE": 90, "SLIP_M": 1,
              "EXTENT": "130.6,131.4,32.1,32.9 [EPSG:4326]", "PIXEL_SIZE": 2000, "OUTPUT": str(tmp_path / "o.tif")}
    assert "ARROWS" not in run_alg("okadadisplacement", params)      # optional, off by default
    result = run_alg("okadadisplacement", {**params, "ARROWS": str(tmp_path / "arrows.gpkg")})
    layer = QgsVectorLayer(result["ARROWS"], "arrows")
    assert layer.isValid() and 14 * 14 <= layer.featureCount() + 1 <= 21 * 21   # ~20 along the longer side
    assert [f.name() for f in layer.fields()][-5:] == ["east", "north", "up", "magnitude", "azimuth"]
    features = list(layer.getFeatures())
    biggest = max(features, key=lambda f: f["magnitude"])
    assert biggest["magnitude"] == pytest.approx(math.hypot(biggest["east"], biggest["north"]))
    # a thrust striking 200 deg, dipping to the WNW: the hanging wall moves ESE (azimuth 90-180)
    assert 90.0 < biggest["azimuth"] < 180.0
    style_arrow_layer(layer, biggest["magnitude"], 0.5)
    marker = layer.renderer().symbol().symbolLayer(0)
    assert marker.shape() == marker.Arrow
    assert marker.dataDefinedProperties().property(QgsSymbolLayer.PropertyAngle).field() == "azimuth"
    assert "magnitude" in marker.dataDefinedProperties().property(QgsSymbolLayer.PropertySize).expressionString()
