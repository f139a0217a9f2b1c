"""importgnss, interpolategnss and the GNSS layer glue (read_gnss_layer / write_gnss_features)."""

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr
from pyproj import Transformer

from insar_gnss_3d.core.gnss_io import GnssSeries, common_mode_filter, read_gnss_files
from insar_gnss_3d.tests.core.test_gnss_io import enu_to_ecef, write_csv, write_pos

DATA = Path(__file__).resolve().parents[1] / "data"
LHAS = DATA / "LHAS_2005.tenv3"
UTM52 = "EPSG:32652"


# ------------------------------------------------------------------ helpers

def read_ogr(path):
    """Features of a vector file as a list of dicts with 'x', 'y' and the attributes."""
    ds = ogr.Open(str(path))
    layer = ds.GetLayer(0)
    out = []
    for f in layer:
        g = f.GetGeometryRef()
        row = {k: f.GetField(k) for k in ("station", "date", "east", "north", "up")}
        row.update(x=g.GetX(), y=g.GetY())
        out.append(row)
    return out


def gnss_inputs(tmp_path):
    """A .tenv3 (real), a .pos and a CSV, overlapping in 2005-06."""
    pos_dates = np.datetime64("2005-06-01") + np.arange(20)
    truth = np.column_stack([0.001 * np.arange(20), np.zeros(20), -0.002 * np.arange(20)])
    pos = write_pos(tmp_path / "950462.05.pos", "950462", pos_dates, enu_to_ecef(truth, 130.7, 32.8, 100.0))
    csv = write_csv(tmp_path / "k.csv", [("K1", "2005-06-02", 131.0, 33.0, 0.5, 0.5, 0.5),
                                         ("K1", "2005-06-10", 131.0, 33.0, 0.51, 0.5, 0.5)])
    return [str(LHAS), str(pos), str(csv)], truth


class _Reader:
    """A bare algorithm declaring the GNSS parameters, to call read_gnss_layer directly."""

    @staticmethod
    def make():
        from qgis.core import QgsProcessingAlgorithm
        from insar_gnss_3d.algorithms.gnss_layer import add_gnss_parameters

        class Alg(QgsProcessingAlgorithm):
            def name(self):
                return "reader"

            def createInstance(self):  # noqa: N802
                return Alg()

            def initAlgorithm(self, config=None):  # noqa: N802
                add_gnss_parameters(self)

        alg = Alg()
        alg.initAlgorithm()
        return alg


def read_layer(parameters, crs="EPSG:4326"):
    """read_gnss_layer on ``parameters`` with a fresh context."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingContext, QgsProcessingFeedback
    from insar_gnss_3d.algorithms.gnss_layer import read_gnss_layer
    return read_gnss_layer(_Reader.make(), parameters, QgsProcessingContext(),
                           QgsCoordinateReferenceSystem(crs), QgsProcessingFeedback())


def write_layer(path, series, crs="EPSG:4326", driver="GPKG"):
    """write_gnss_features into a file through QgsVectorFileWriter (a QgsFeatureSink)."""
    from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransformContext,
                           QgsVectorFileWriter, QgsWkbTypes)
    from insar_gnss_3d.algorithms.gnss_layer import gnss_sink_fields, write_gnss_features
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = driver
    writer = QgsVectorFileWriter.create(str(path), gnss_sink_fields(), QgsWkbTypes.Point,
                                        QgsCoordinateReferenceSystem(crs),
                                        QgsCoordinateTransformContext(), options)
    assert writer.hasError() == QgsVectorFileWriter.NoError, writer.errorMessage()
    count = write_gnss_features(writer, series)
    del writer
    return count


def memory_layer(rows, geometry="Point", fields=("station:string", "date:string", "east:double",
                                                  "north:double", "up:double")):
    """Memory layer in EPSG:4326 from rows (wkt, *attributes)."""
    from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer
    uri = f"{geometry}?crs=EPSG:4326&" + "&".join(f"field={f}" for f in fields)
    layer = QgsVectorLayer(uri, "gnss", "memory")
    feats = []
    for wkt, *attrs in rows:
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromWkt(wkt))
        f.setAttributes(list(attrs))
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    return layer


def network(n=25, seed=0, field=None):
    """Stations in 130.5-131.5 E, 32-33 N with a 121-day series: 0, then ``field`` from day 60."""
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(130.5, 131.5, n), rng.uniform(32.0, 33.0, n)
    x, y = Transformer.from_crs("EPSG:4326", UTM52, always_xy=True).transform(lon, lat)
    values = field(x, y)                                   # (n, 3) metres
    dates = np.datetime64("2016-01-01") + np.arange(121)
    enu = np.zeros((n, 121, 3))
    enu[:, 60:] = values[:, None, :]
    enu[0, 10:20] = np.nan                                 # a gap
    return GnssSeries([f"S{k:02d}" for k in range(n)], lon, lat, dates, enu)


def linear_field(x, y):
    """East/north/up growing linearly over the area [m]: thin-plate splines reproduce it exactly."""
    x0, y0 = 500000.0, 3600000.0
    return np.column_stack([0.01 + 1e-6 * (x - x0), -2e-7 * (y - y0), 0.05 + 3e-7 * (x - x0) - 4e-7 * (y - y0)])


def pixel_centres(ds):
    """(x, y) of the pixel centres of a GDAL dataset."""
    gt = ds.GetGeoTransform()
    x = gt[0] + (np.arange(ds.RasterXSize) + 0.5) * gt[1]
    y = gt[3] + (np.arange(ds.RasterYSize) + 0.5) * gt[5]
    return np.meshgrid(x, y)


# ------------------------------------------------------------------ importgnss

def test_importgnss_processing_run(run_alg, tmp_path):
    files, truth = gnss_inputs(tmp_path)
    out = tmp_path / "gnss.gpkg"
    result = run_alg("importgnss", {"FILES": files, "START_DATE": "2005-06-01", "END_DATE": "2005-06-30",
                                    "OUTPUT": str(out)})
    assert Path(result["OUTPUT"].split("|")[0]) == out
    rows = read_ogr(out)
    expected = read_gnss_files(files, "2005-06-01", "2005-06-30")
    assert len(rows) == int(np.isfinite(expected.enu_m[:, :, 0]).sum()) == 30 + 20 + 2
    by_station = {}
    for r in rows:
        by_station.setdefault(r["station"], []).append(r)
    assert set(by_station) == {"LHAS", "950462", "K1"}
    # ISO text dates, displacement since the first day, positions lon/lat
    pos_rows = sorted(by_station["950462"], key=lambda r: r["date"])
    assert [r["date"] for r in pos_rows][:2] == ["2005-06-01", "2005-06-02"]
    np.testing.assert_allclose([[r["east"], r["north"], r["up"]] for r in pos_rows], truth, atol=2e-4)
    np.testing.assert_allclose([pos_rows[0]["x"], pos_rows[0]["y"]], [130.7, 32.8], atol=1e-8)
    k1 = sorted(by_station["K1"], key=lambda r: r["date"])
    np.testing.assert_allclose([k1[1]["east"], k1[1]["up"]], [0.01, 0.0], atol=1e-12)
    lhas = by_station["LHAS"][0]
    np.testing.assert_allclose([lhas["x"], lhas["y"]], [91.1039905065, 29.6573407051], atol=1e-9)


def test_importgnss_qgis_process_repeated_files(qgis_process, tmp_path):
    files, _ = gnss_inputs(tmp_path)
    out = tmp_path / "gnss_cli.geojson"
    args = ["run", "insargnss3d:importgnss", "--json", "--"] + [f"FILES={f}" for f in files]
    args += ["START_DATE=2005-06-01", "END_DATE=2005-06-30", f"OUTPUT={out}"]
    _, result, _ = qgis_process(args)
    assert result["inputs"]["FILES"] == files
    rows = read_ogr(out)
    assert {r["station"] for r in rows} == {"LHAS", "950462", "K1"} and len(rows) == 52
    # read back through the GNSS layer reader: same series as the core reader
    series = read_layer({"GNSS": str(out)})
    expected = read_gnss_files(files, "2005-06-01", "2005-06-30")
    assert sorted(series.stations) == sorted(expected.stations)
    np.testing.assert_array_equal(series.dates, expected.dates)
    for k, name in enumerate(expected.stations):
        np.testing.assert_allclose(series.enu_m[series.stations.index(name)], expected.enu_m[k],
                                   atol=1e-9, equal_nan=True)


def test_importgnss_common_mode(run_alg, tmp_path):
    rng = np.random.default_rng(3)
    dates = np.datetime64("2020-03-01") + np.arange(60)
    common = 0.005 * np.sin(np.arange(60) / 5.0)
    rows = []
    for k in range(6):
        for d in range(60):
            e, n, u = common[d] + rng.normal(scale=1e-3, size=3)
            rows.append((f"C{k}", dates[d], 130 + k * 0.1, 32.0, e, n, u))
    files = [str(write_csv(tmp_path / "net.csv", rows))]
    out = tmp_path / "cm.gpkg"
    run_alg("importgnss", {"FILES": files, "COMMON_MODE": True, "OUTPUT": str(out)})
    expected, _ = common_mode_filter(read_gnss_files(files))
    got = read_layer({"GNSS": str(out)})
    np.testing.assert_allclose(got.enu_m, expected.enu_m, atol=1e-9)
    assert np.std(got.enu_m[0, :, 0]) < 0.5 * np.std(read_gnss_files(files).enu_m[0, :, 0])


def test_importgnss_malformed_line_names_file_and_line(run_alg, tmp_path):
    from qgis.core import QgsProcessingException
    lines = LHAS.read_text().splitlines()
    lines[5] = lines[5][:40]
    bad = tmp_path / "broken.tenv3"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "none.gpkg"
    with pytest.raises(QgsProcessingException, match="broken.tenv3, line 6: expected at least 20 columns"):
        run_alg("importgnss", {"FILES": [str(LHAS), str(bad)], "OUTPUT": str(out)})
    assert not out.exists()


@pytest.mark.parametrize("params, message", [
    ({"START_DATE": "2005-02-30"}, "'2005-02-30' is not an ISO date"),
    ({"START_DATE": "2010-01-01"}, "No GNSS sample between 2010-01-01"),
    ({"COMMON_MODE": True}, "needs at least 3 stations"),
])
def test_importgnss_bad_input_no_output(run_alg, tmp_path, params, message):
    from qgis.core import QgsProcessingException
    out = tmp_path / "none.gpkg"
    with pytest.raises(QgsProcessingException, match=message):
        run_alg("importgnss", {"FILES": [str(LHAS)], **params, "OUTPUT": str(out)})
    assert not out.exists()


def test_importgnss_qgis_process_error_message(qgis_process, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("station,date,lon,lat,east,north,up\nA,2020-01-01,130,32,0,0,0\nA,2020-01-02,130,32,0,zero,0\n")
    out = tmp_path / "none.gpkg"
    code, _, text = qgis_process(["run", "insargnss3d:importgnss", "--", f"FILES={bad}", f"OUTPUT={out}"],
                                 check=False)
    assert code != 0 and "bad.csv, line 3: a number cannot be read" in text
    assert not out.exists()


def test_importgnss_cancel_leaves_no_output(provider, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback
    import processing
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    out = tmp_path / "cancelled.gpkg"
    with pytest.raises(QgsProcessingException):
        processing.run("insargnss3d:importgnss", {"FILES": [str(LHAS)], "OUTPUT": str(out)},
                       context=QgsProcessingContext(), feedback=feedback)
    assert not out.exists()


# ------------------------------------------------------------------ GNSS layer glue

@pytest.mark.parametrize("driver, suffix", [("GPKG", ".gpkg"), ("GeoJSON", ".geojson")])
def test_write_then_read_gnss_layer_round_trip(qgis_app, tmp_path, driver, suffix):
    series = network(field=linear_field)
    series.enu_m[3, 5, 2] = np.nan                          # one NULL component
    series.enu_m[:, -1] = np.nan                            # last day without any data
    path = tmp_path / f"rt{suffix}"
    count = write_layer(path, series, driver=driver)
    assert count == int(np.any(np.isfinite(series.enu_m), axis=2).sum())
    got = read_layer({"GNSS": str(path)}, crs=UTM52)
    assert got.stations == series.stations
    np.testing.assert_array_equal(got.dates, series.dates[:-1])
    np.testing.assert_allclose(got.enu_m, series.enu_m[:, :-1], atol=1e-9)   # NaN where NaN
    x, y = Transformer.from_crs("EPSG:4326", UTM52, always_xy=True).transform(series.x, series.y)
    np.testing.assert_allclose(got.x, x, atol=1e-3)
    np.testing.assert_allclose(got.y, y, atol=1e-3)


def test_read_gnss_layer_date_types(qgis_app):
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime
    rows = [("POINT(130 32)", "A", QDate(2020, 1, 1), 0.0, 0.0, 0.0),
            ("POINT(130 32)", "A", QDateTime(QDate(2020, 1, 3), QTime(12, 0)), 1.0, 1.0, 1.0)]
    layer = memory_layer(rows, fields=("station:string", "date:date", "east:double", "north:double", "up:double"))
    s = read_layer({"GNSS": layer})
    assert str(s.dates[0]) == "2020-01-01" and len(s.dates) == 3 and np.isnan(s.enu_m[0, 1, 0])
    text = memory_layer([("POINT(130 32)", "A", "2020-01-01T00:00:00", 0.0, 0.0, 0.0)])
    assert str(read_layer({"GNSS": text}).dates[0]) == "2020-01-01"


def test_read_gnss_layer_custom_field_names(qgis_app):
    layer = memory_layer([("POINT(130 32)", "A", "2020-01-01", 1.0, 2.0, 3.0)],
                         fields=("site:string", "day:string", "de:double", "dn:double", "du:double"))
    s = read_layer({"GNSS": layer, "STATION_FIELD": "site", "DATE_FIELD": "day", "EAST_FIELD": "de",
                    "NORTH_FIELD": "dn", "UP_FIELD": "du"})
    np.testing.assert_allclose(s.enu_m[0, 0], [1, 2, 3])


@pytest.mark.parametrize("make, message", [
    (lambda: memory_layer([("POINT(130 32)", "A", "2020-01-01", 0.0, 0.0)],
                          fields=("station:string", "date:string", "east:double", "north:double")),
     "has no field 'up'"),
    (lambda: memory_layer([("LINESTRING(130 32, 131 33)", "A", "2020-01-01", 0.0, 0.0, 0.0)], "LineString"),
     "LineString geometry; it must hold points"),
    (lambda: memory_layer([]), "the layer has no features"),
    (lambda: memory_layer([("POINT(130 32)", "A", "01/02/2020", 0.0, 0.0, 0.0)]),
     "has the date '01/02/2020'"),
    (lambda: memory_layer([("POINT(130 32)", "A", "2020-01-01", 0.0, 0.0, 0.0),
                           ("POINT(130.1 32)", "A", "2020-01-02", 0.0, 0.0, 0.0)]),
     "feature 2: station A is at"),
    (lambda: memory_layer([("POINT(130 32)", "A", "2020-01-01", 0.0, 0.0, 0.0),
                           ("POINT(130 32)", "A", "2020-01-01", 0.0, 0.3, 0.0)]),
     "station A has a second, different solution for 2020-01-01"),
])
def test_read_gnss_layer_bad_layers(qgis_app, make, message):
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException, match=message):
        read_layer({"GNSS": make()})


# ------------------------------------------------------------------ interpolategnss

def test_interpolategnss_qgis_process_linear_field_is_exact(qgis_process, tmp_path):
    gpkg = tmp_path / "net.gpkg"
    write_layer(gpkg, network(field=linear_field))
    out = tmp_path / "interp.tif"
    _, result, _ = qgis_process(["run", "insargnss3d:interpolategnss", "--json", "--", f"GNSS={gpkg}",
                                 "EXTENT=130.5,131.5,32.0,33.0 [EPSG:4326]", "PIXEL_SIZE=2000",
                                 f"OUTPUT={out}"])
    assert result["results"]["OUTPUT"] == str(out)
    ds = gdal.Open(str(out))
    assert ds.RasterCount == 3 and ds.GetSpatialRef().GetAuthorityCode(None) == "32652"
    assert [ds.GetRasterBand(i + 1).GetDescription() for i in range(3)] == ["east", "north", "up"]
    assert ds.GetGeoTransform()[1] == pytest.approx(2000.0)
    # net displacement = the step at day 60; a thin-plate spline with a degree-1 term
    # reproduces a linear field exactly
    xx, yy = pixel_centres(ds)
    expected = linear_field(xx.ravel(), yy.ravel()).T.reshape(3, *xx.shape)
    np.testing.assert_allclose(ds.ReadAsArray(), expected, rtol=0, atol=2e-6)
    assert (tmp_path / "interp.qml").exists()


def test_interpolategnss_reference_grid_geographic(run_alg, tmp_path):
    # a LiCSAR-like reference grid in EPSG:4326, 0.01 deg
    ref = tmp_path / "ref.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(ref), 60, 40, 1, gdal.GDT_Float32)
    ds.SetGeoTransform((130.6, 0.01, 0, 32.9, 0, -0.01))
    ds.SetProjection('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
                     'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]')
    ds = None
    gpkg = tmp_path / "net.gpkg"
    write_layer(gpkg, network(field=linear_field))
    out = tmp_path / "interp_ref.tif"
    run_alg("interpolategnss", {"GNSS": str(gpkg), "REFERENCE": str(ref), "OUTPUT": str(out)})
    ds = gdal.Open(str(out))
    assert (ds.RasterXSize, ds.RasterYSize) == (60, 40)
    np.testing.assert_allclose(ds.GetGeoTransform(), (130.6, 0.01, 0, 32.9, 0, -0.01), atol=1e-12)
    assert ds.GetSpatialRef().IsGeographic()
    lon, lat = pixel_centres(ds)
    x, y = Transformer.from_crs("EPSG:4326", UTM52, always_xy=True).transform(lon, lat)
    expected = linear_field(x.ravel(), y.ravel()).T.reshape(3, *x.shape)
    np.testing.assert_allclose(ds.ReadAsArray(), expected, rtol=0, atol=2e-6)


def test_interpolategnss_okada_step_is_recovered_roughly(run_alg, tmp_path):
    """An Mw ~7 thrust seen by 25 stations ~20 km apart: the long wavelengths come back."""
    from insar_gnss_3d.core.okada import Fault, surface_displacement
    fx, fy = Transformer.from_crs("EPSG:4326", UTM52, always_xy=True).transform(131.0, 32.5)
    fault = Fault(east=fx, north=fy, depth=5e3, strike=200.0, dip=15.0, length=40e3, width=25e3,
                  rake=90.0, slip=1.0)
    gpkg = tmp_path / "net.gpkg"
    write_layer(gpkg, network(field=lambda x, y: np.column_stack(surface_displacement(fault, x, y))))
    out = tmp_path / "okada_interp.tif"
    run_alg("interpolategnss", {"GNSS": str(gpkg), "EXTENT": "130.5,131.5,32.0,33.0 [EPSG:4326]",
                                "PIXEL_SIZE": 2000, "OUTPUT": str(out)})
    ds = gdal.Open(str(out))
    xx, yy = pixel_centres(ds)
    truth = np.stack(surface_displacement(fault, xx, yy))
    rmse = np.sqrt(np.mean((ds.ReadAsArray() - truth) ** 2, axis=(1, 2)))
    peak = np.abs(truth).max(axis=(1, 2))
    # measured: RMSE 19 / 23 / 42 mm for peaks of 299 / 190 / 409 mm (east, north, up)
    assert np.all(rmse < 0.25 * peak) and np.all(rmse > 0.01 * peak), (rmse, peak)


@pytest.mark.parametrize("params, message", [
    ({"EXTENT": "140.0,141.0,40.0,41.0 [EPSG:4326]"}, "None of the 25 GNSS stations lies inside the grid"),
    ({"EXTENT": "130.5,131.5,32.0,33.0 [EPSG:4326]", "PIXEL_SIZE": 1.0}, "pixels, more than"),
    ({"EAST_FIELD": "nope"}, "has no field 'nope'"),
    # the parameter's name, not the core argument's (end_days)
    ({"EXTENT": "130.5,131.5,32.0,33.0 [EPSG:4326]", "END_DAYS": 500}, "END_DAYS"),
])
def test_interpolategnss_bad_input_no_output(run_alg, tmp_path, params, message):
    from qgis.core import QgsProcessingException
    gpkg = tmp_path / "net.gpkg"
    write_layer(gpkg, network(field=linear_field))
    out = tmp_path / "bad.tif"
    with pytest.raises(QgsProcessingException, match=message):
        run_alg("interpolategnss", {"GNSS": str(gpkg), **params, "OUTPUT": str(out)})
    assert not out.exists() and not (tmp_path / "bad.tif.part").exists()


def test_interpolategnss_too_few_stations(run_alg, tmp_path):
    from qgis.core import QgsProcessingException
    gpkg = tmp_path / "two.gpkg"
    write_layer(gpkg, network(n=2, field=linear_field))
    out = tmp_path / "two.tif"
    with pytest.raises(QgsProcessingException, match="needs at least 3"):
        run_alg("interpolategnss", {"GNSS": str(gpkg), "OUTPUT": str(out)})
    assert not out.exists()


def test_interpolategnss_cancel_leaves_no_output(provider, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback
    import processing
    gpkg = tmp_path / "net.gpkg"
    write_layer(gpkg, network(field=linear_field))
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    out = tmp_path / "cancelled.tif"
    with pytest.raises(QgsProcessingException):
        processing.run("insargnss3d:interpolategnss", {"GNSS": str(gpkg), "OUTPUT": str(out)},
                       context=QgsProcessingContext(), feedback=feedback)
    assert not out.exists()


def test_interpolategnss_arrows_follow_the_raster(run_alg, tmp_path):
    from qgis.core import QgsVectorLayer
    gpkg = tmp_path / "net_arrows.gpkg"
    write_layer(gpkg, network(field=linear_field))
    out = tmp_path / "interp.tif"
    result = run_alg("interpolategnss", {"GNSS": str(gpkg), "EXTENT": "130.5,131.5,32.0,33.0 [EPSG:4326]",
                                         "PIXEL_SIZE": 5000, "OUTPUT": str(out),
                                         "ARROWS": str(tmp_path / "arrows.gpkg")})
    layer = QgsVectorLayer(result["ARROWS"], "arrows")
    assert layer.isValid() and layer.featureCount() > 50
    ds = gdal.Open(str(out))
    gt, data = ds.GetGeoTransform(), ds.ReadAsArray()
    for feature in list(layer.getFeatures())[:20]:
        p = feature.geometry().asPoint()
        col, row = int((p.x() - gt[0]) / gt[1]), int((p.y() - gt[3]) / gt[5])
        assert feature["east"] == pytest.approx(float(data[0, row, col]), rel=1e-5, abs=1e-9)
        assert feature["north"] == pytest.approx(float(data[1, row, col]), rel=1e-5, abs=1e-9)
