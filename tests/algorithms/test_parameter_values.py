"""Out-of-range numbers are refused with their range; option numbers work as advertised (issue 14)."""

import numpy as np
import pytest
from osgeo import gdal

from .test_quiet_logs import _inputs

OKADA = {"FAULT_POINT": "131.0,32.5 [EPSG:4326]", "DEPTH_KM": 5, "STRIKE": 200, "DIP": 15, "LENGTH_KM": 40,
         "WIDTH_KM": 25, "RAKE": 90, "SLIP_M": 1, "EXTENT": "130.9,131.1,32.4,32.6 [EPSG:4326]",
         "PIXEL_SIZE": 2000}


@pytest.mark.parametrize("key, value, words", [("DIP", 95, "DIP (Dip [deg]) = 95 is outside its range: give a "
                                                            "value from 0 to 90."),
                                               ("PIXEL_SIZE", "abc", "PIXEL_SIZE (Pixel size [m]): 'abc' is not "
                                                                     "a number.")])
def test_out_of_range_numbers_state_the_range(run_alg, tmp_path, key, value, words):
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException) as info:
        run_alg("okadadisplacement", {**OKADA, key: value, "OUTPUT": str(tmp_path / "o.tif")})
    assert words in str(info.value)
    assert not (tmp_path / "o.tif").exists()


def test_enum_options_by_number_as_qgis_process_help_says(run_alg, provider, tmp_path):
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException
    p = _inputs(tmp_path)
    base = {"INSAR_ASC": str(p["asc"]), "INSAR_DESC": str(p["desc"]), "LOS_ASC": str(p["los_asc"]),
            "LOS_DESC": str(p["los_desc"])}
    out = {}
    for units in ("mm", "1", 1, "m"):
        path = tmp_path / f"d_{units}_{type(units).__name__}.tif"
        run_alg("decomposelos", {**base, "INSAR_UNITS": units, "OUTPUT": str(path)})
        out[units] = gdal.Open(str(path)).ReadAsArray()
    np.testing.assert_array_equal(out["1"], out["mm"])
    np.testing.assert_array_equal(out[1], out["mm"])
    np.testing.assert_allclose(out["m"][[0, 2]], 1e3 * out["mm"][[0, 2]], rtol=1e-5, equal_nan=True)
    with pytest.raises(QgsProcessingException, match=r"INSAR_UNITS: '7' is not one of m, mm, rad"):
        run_alg("decomposelos", {**base, "INSAR_UNITS": "7", "OUTPUT": str(tmp_path / "bad.tif")})
    alg = QgsApplication.processingRegistry().createAlgorithmById("insargnss3d:trainmodel")
    assert alg.parameterAsEnumString({"DEVICE": "1"}, "DEVICE", QgsProcessingContext()) == "cpu"
