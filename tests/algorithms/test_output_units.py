"""Outputs carry their unit: band metadata and the legend (issue 14)."""

from osgeo import gdal


def test_every_band_has_a_unit_and_the_legend_says_metres(run_alg, tmp_path):
    from qgis.core import QgsRasterLayer
    out = tmp_path / "okada.tif"
    run_alg("okadadisplacement", {"FAULT_POINT": "131.0,32.5 [EPSG:4326]", "DEPTH_KM": 5, "STRIKE": 200,
                                  "DIP": 15, "LENGTH_KM": 40, "WIDTH_KM": 25, "RAKE": 90, "SLIP_M": 1,
                                  "EXTENT": "130.8,131.2,32.3,32.7 [EPSG:4326]", "PIXEL_SIZE": 4000,
                                  "OUTPUT": str(out)})
    ds = gdal.Open(str(out))
    assert [ds.GetRasterBand(b).GetUnitType() for b in (1, 2, 3)] == ["m", "m", "m"]
    layer = QgsRasterLayer(str(out), "okada")
    assert layer.isValid()
    shader = layer.renderer().shader().rasterShaderFunction()     # the .qml beside it, QGIS's default
    labels = [item.label for item in shader.colorRampItemList()]
    assert len(labels) == 7 and all(label.endswith(" m") for label in labels), labels
    assert shader.legendSettings().suffix() == " m"


def test_synthesized_scene_units(run_alg, tmp_path):
    keys = ("INSAR_ASC", "INSAR_DESC", "LOS_ASC", "LOS_DESC", "DEM_OUT", "TRUTH")
    params = {"SEED": 3, "PIXEL_SIZE": 4000, **{k: str(tmp_path / f"{k}.tif") for k in keys},
              "GNSS": "TEMPORARY_OUTPUT", "FAULT": "TEMPORARY_OUTPUT"}
    run_alg("synthesizescene", params)
    for key, unit in (("TRUTH", "m"), ("INSAR_ASC", "m"), ("DEM_OUT", "m"), ("LOS_ASC", ""), ("LOS_DESC", "")):
        ds = gdal.Open(str(tmp_path / f"{key}.tif"))
        assert {ds.GetRasterBand(b + 1).GetUnitType() for b in range(ds.RasterCount)} == {unit}, key
