"""qgis_process runs are quiet and leave the user's input folder as it was (issue 14)."""

import os

import numpy as np

from insar_gnss_3d.core.geometry import Grid, los_unit_vector
from insar_gnss_3d.core.raster import crs_wkt_from_epsg, write_raster

GRID = Grid(600e3, 3650e3, 1000.0, 30, 24, crs_wkt_from_epsg(32652))
DATES = ["2024-01-05", "2024-01-17", "2024-01-29"]


def _inputs(folder):
    """A cumulative asc/desc series whose first epoch is all zero (LiCSBAS' cum), LOS rasters."""
    rng = np.random.default_rng(0)
    paths = {}
    for name, heading in (("asc", -12.0), ("desc", -168.0)):
        cube = np.stack([np.zeros((GRID.height, GRID.width))] + [rng.normal(0, 0.01, (GRID.height, GRID.width))
                                                                 for _ in DATES[1:]])
        los = np.stack([np.full((GRID.height, GRID.width), v) for v in los_unit_vector(heading, 39.0)])
        paths[name] = folder / f"{name}.tif"
        paths[f"los_{name}"] = folder / f"los_{name}.tif"
        write_raster(str(paths[name]), GRID, cube, DATES)
        write_raster(str(paths[f"los_{name}"]), GRID, los, ("east", "north", "up"))
    return paths


def test_decomposelos_prints_no_gdal_error_and_writes_no_aux_xml(qgis_process, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    p = _inputs(inputs)
    before = sorted(os.listdir(inputs))
    _, result, log = qgis_process(["run", "insargnss3d:decomposelos", "--json", "--",
                                   f"INSAR_ASC={p['asc']}", f"INSAR_DESC={p['desc']}", f"LOS_ASC={p['los_asc']}",
                                   f"LOS_DESC={p['los_desc']}", "INSAR_UNITS=m",
                                   f"OUTPUT={tmp_path / 'out' / 'decomposed.tif'}"])
    assert result is not None and os.path.exists(result["results"]["OUTPUT"])
    assert "dfMax" not in log and "ERROR" not in log
    assert sorted(os.listdir(inputs)) == before          # no *.aux.xml beside the inputs
