"""okadadisplacement through processing.run and through a real qgis_process run."""

import numpy as np
import pytest
from osgeo import gdal

from insar_gnss_3d.core.okada import Fault, surface_displacement

PARAMS = dict(FAULT_POINT="131.0,32.5 [EPSG:4326]", DEPTH_KM=5, STRIKE=200, DIP=15,
              LENGTH_KM=40, WIDTH_KM=25, RAKE=90, SLIP_M=1,
              EXTENT="130.5,131.5,32.0,33.0 [EPSG:4326]", PIXEL_SIZE=2000)


def _expected(ds):
    """Okada at the written pixel centres, fault point projected with GDAL/OSR."""
    from osgeo import osr
    gt = ds.GetGeoTransform()
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    fx, fy, _ = osr.CoordinateTransformation(wgs, srs).TransformPoint(131.0, 32.5)
    x = gt[0] + (np.arange(ds.RasterXSize) + 0.5) * gt[1]
    y = gt[3] + (np.arange(ds.RasterYSize) + 0.5) * gt[5]
    xx, yy = np.meshgrid(x, y)
    f = Fault(east=fx, north=fy, depth=5e3, strike=200, dip=15, length=40e3, width=25e3,
              rake=90, slip=1.0)
    return np.stack(surface_displacement(f, xx, yy))


def _check_raster(path):
    ds = gdal.Open(str(path))
    assert ds.RasterCount == 3
    assert [ds.GetRasterBand(i + 1).GetDescription() for i in range(3)] == ["east", "north", "up"]
    srs_code = ds.GetSpatialRef().GetAuthorityCode(None)
    assert srs_code == "32652"  # UTM 52N contains 131.0 E, 32.5 N
    assert ds.GetGeoTransform()[1] == pytest.approx(2000.0)
    data = ds.ReadAsArray().astype(np.float64)
    np.testing.assert_allclose(data, _expected(ds), rtol=1e-5, atol=1e-7)
    # a 1 m thrust at 5-15 km depth: decimetres of uplift above the fault
    assert 0.05 < data[2].max() < 1.0


def test_processing_run(run_alg, tmp_path):
    out = tmp_path / "okada.tif"
    result = run_alg("okadadisplacement", {**PARAMS, "OUTPUT": str(out)})
    assert result["OUTPUT"] == str(out)
    _check_raster(out)
    assert (tmp_path / "okada.qml").exists()


def test_qgis_process_run(qgis_process, tmp_path):
    out = tmp_path / "okada_cli.tif"
    args = ["run", "insargnss3d:okadadisplacement", "--json", "--"]
    args += [f"{k}={v}" for k, v in PARAMS.items()] + [f"OUTPUT={out}"]
    _, result, _ = qgis_process(args)
    assert result["results"]["OUTPUT"] == str(out)
    _check_raster(out)


@pytest.mark.parametrize("override, message", [
    ({"PIXEL_SIZE": 0.1}, "pixels"),
    ({"EXTENT": "131,131,32,32 [EPSG:4326]"}, "empty"),
    ({"OUTPUT_CRS": "EPSG:4326"}, "geographic"),
])
def test_bad_input_is_refused_without_output(run_alg, tmp_path, override, message):
    from qgis.core import QgsProcessingException
    out = tmp_path / "bad.tif"
    with pytest.raises(QgsProcessingException, match=message):
        run_alg("okadadisplacement", {**PARAMS, **override, "OUTPUT": str(out)})
    assert not out.exists() and not (tmp_path / "bad.tif.part").exists()


def test_cancel_leaves_no_output(provider, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback
    import processing
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    out = tmp_path / "cancelled.tif"
    with pytest.raises(QgsProcessingException):
        processing.run("insargnss3d:okadadisplacement", {**PARAMS, "OUTPUT": str(out)},
                       context=QgsProcessingContext(), feedback=feedback)
    assert not out.exists()
