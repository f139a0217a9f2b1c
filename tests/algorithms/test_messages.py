"""Log lines and messages of the algorithms read right (issue 14)."""

import re


def test_extraction_log_names_the_components_of_the_validation_scores(provider):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback
    from insar_gnss_3d.algorithms.extract_displacement import ExtractDisplacementAlgorithm

    lines = []

    class Feedback(QgsProcessingFeedback):
        def pushInfo(self, text):  # noqa: N802
            lines.append(text)

    alg = ExtractDisplacementAlgorithm()
    alg.initAlgorithm()
    alg._model({}, QgsProcessingContext(), Feedback())          # the bundled model
    line = next(m for m in lines if "validation mSSIM" in m)
    assert re.search(r"validation mSSIM east [\d.]+, north [\d.]+, up [\d.]+\.$", line), line


def test_a_flat_truth_component_is_explained_without_core_argument_names(run_alg, tmp_path):
    import numpy as np
    from qgis.core import QgsProcessingFeedback
    from insar_gnss_3d.core.geometry import Grid
    from insar_gnss_3d.core.raster import crs_wkt_from_epsg, write_raster

    grid = Grid(600e3, 3650e3, 1000.0, 24, 20, crs_wkt_from_epsg(32652))
    truth = np.random.default_rng(0).normal(0.0, 0.05, (3, 20, 24))
    truth[1] = 0.0                                            # no north motion at all
    write_raster(str(tmp_path / "t.tif"), grid, truth, ("east", "north", "up"))
    write_raster(str(tmp_path / "p.tif"), grid, truth + 1e-3, ("east", "north", "up"))
    warnings = []

    class Feedback(QgsProcessingFeedback):
        def pushWarning(self, text):  # noqa: N802
            warnings.append(text)

    result = run_alg("evaluatedisplacement", {"PREDICTION": str(tmp_path / "p.tif"), "TRUTH": str(tmp_path / "t.tif"),
                                              "REPORT": str(tmp_path / "e.html")}, feedback=Feedback())
    assert np.isnan(result["MSSIM_NORTH"]) and result["RMSE_NORTH"] > 0
    assert len(warnings) == 1 and "TRUTH north component is constant" in warnings[0]
    text = (tmp_path / "e.html").read_text(encoding="utf-8") + warnings[0]
    assert "data_range" not in text


def test_evaluate_takes_the_first_three_bands_of_a_prediction_with_std_bands(run_alg, tmp_path):
    """extractdisplacement writes east, north, up then their standard deviations."""
    import numpy as np
    from insar_gnss_3d.core.geometry import Grid
    from insar_gnss_3d.core.raster import crs_wkt_from_epsg, write_raster

    grid = Grid(600e3, 3650e3, 1000.0, 24, 20, crs_wkt_from_epsg(32652))
    truth = np.random.default_rng(1).normal(0.0, 0.05, (3, 20, 24))
    write_raster(str(tmp_path / "t.tif"), grid, truth, ("east", "north", "up"))
    six = np.concatenate([truth + 2e-3, np.full((3, 20, 24), 0.01)])
    write_raster(str(tmp_path / "p.tif"), grid, six, ("east", "north", "up", "east_std", "north_std", "up_std"))
    result = run_alg("evaluatedisplacement", {"PREDICTION": str(tmp_path / "p.tif"), "TRUTH": str(tmp_path / "t.tif"),
                                              "REPORT": None})
    for c in ("EAST", "NORTH", "UP"):
        assert abs(result[f"RMSE_{c}"] - 2e-3) < 1e-7         # float32 rounding of the files
