"""synthesizescene writes layers that GDAL/OGR read back with the promised structure."""

import datetime

import numpy as np
import pytest
from osgeo import gdal, ogr

OUTPUTS = ("INSAR_ASC", "INSAR_DESC", "LOS_ASC", "LOS_DESC", "DEM_OUT", "TRUTH")


def _params(folder, seed=3, **extra):
    params = {k: str(folder / f"{k.lower()}.tif") for k in OUTPUTS}
    params.update(GNSS=str(folder / "gnss.gpkg"), FAULT=str(folder / "fault.gpkg"), SEED=seed,
                  EXTENT="130.6,131.2,32.6,33.1 [EPSG:4326]", PIXEL_SIZE=2000, START_DATE="2024-03-01")
    params.update(extra)
    return params


def _check(folder):
    truth = gdal.Open(str(folder / "truth.tif"))
    assert truth.GetSpatialRef().GetAuthorityCode(None) == "32652"
    assert truth.RasterCount == 3
    assert [truth.GetRasterBand(i + 1).GetDescription() for i in range(3)] == ["east", "north", "up"]
    for track in ("insar_asc", "insar_desc"):
        ds = gdal.Open(str(folder / f"{track}.tif"))
        assert (ds.RasterXSize, ds.RasterYSize) == (truth.RasterXSize, truth.RasterYSize)
        dates = [datetime.date.fromisoformat(ds.GetRasterBand(i + 1).GetDescription())
                 for i in range(ds.RasterCount)]
        assert 8 <= len(dates) <= 21                      # 6- or 12-day revisit over 121 days
        assert dates == sorted(dates) and dates[0] >= datetime.date(2024, 3, 1)
        assert dates[-1] <= datetime.date(2024, 3, 1) + datetime.timedelta(days=120)
        first = ds.GetRasterBand(1).ReadAsArray()
        assert np.nanmax(np.abs(first)) < 0.2             # relative to the first acquisition (+ offset)
    for los in ("los_asc", "los_desc"):
        v = gdal.Open(str(folder / f"{los}.tif")).ReadAsArray()
        np.testing.assert_allclose(np.sqrt((v ** 2).sum(0)), 1.0, atol=1e-5)
    gnss = ogr.Open(str(folder / "gnss.gpkg"))
    layer = gnss.GetLayer(0)
    names = [layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(layer.GetLayerDefn().GetFieldCount())]
    assert names[:5] == ["station", "date", "east", "north", "up"]
    per_station = {}
    for f in layer:
        per_station.setdefault(f.GetField("station"), []).append(f.GetField("date"))
    assert len(per_station) >= 2
    assert all(len(d) <= 121 for d in per_station.values())
    assert max(max(d) for d in per_station.values()) <= "2024-06-29"
    fault_ds = ogr.Open(str(folder / "fault.gpkg"))      # keep the data source alive
    feature = fault_ds.GetLayer(0).GetNextFeature()
    assert feature.GetGeometryRef().GetGeometryName() == "POLYGON"
    assert 5 <= feature.GetField("dip_deg") <= 30
    return truth.ReadAsArray()


def test_processing_run_writes_consistent_layers_and_is_deterministic(run_alg, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    run_alg("synthesizescene", _params(a))
    run_alg("synthesizescene", _params(b))
    np.testing.assert_array_equal(_check(a), _check(b))
    assert (a / "truth.tif").read_bytes() == (b / "truth.tif").read_bytes()


def test_qgis_process_with_a_user_dem(qgis_process, tmp_path):
    from pathlib import Path
    dem = Path(__file__).resolve().parents[2] / "resources" / "dem" / "kyushu_srtm_500m.tif"
    params = _params(tmp_path, seed=4, DEM=str(dem))
    args = ["run", "insargnss3d:synthesizescene", "--json", "--"] + [f"{k}={v}" for k, v in params.items()]
    _, result, _ = qgis_process(args)
    assert set(OUTPUTS) <= set(result["results"])
    _check(tmp_path)
    dem_out = gdal.Open(str(tmp_path / "dem_out.tif")).ReadAsArray()
    assert 100 < np.nanmax(dem_out) < 2000            # Kyushu's mountains, not fractal noise


def test_bad_start_date_is_refused(run_alg, tmp_path):
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException, match="ISO date"):
        run_alg("synthesizescene", _params(tmp_path, START_DATE="01/03/2024"))
    assert not (tmp_path / "truth.tif").exists()
