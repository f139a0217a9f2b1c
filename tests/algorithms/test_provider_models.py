"""The shipped graphical model is listed in the toolbox under the provider (issue 14)."""


def test_model3_chain_is_an_algorithm_of_the_provider(provider):
    from qgis.core import QgsApplication
    alg = QgsApplication.processingRegistry().algorithmById("insargnss3d:synthesize_extract_evaluate")
    assert alg is not None and alg.provider().id() == "insargnss3d"
    assert alg.group() == "InSAR-GNSS 3D examples"
    children = {c.algorithmId() for c in alg.childAlgorithms().values()}
    assert children == {"insargnss3d:synthesizescene", "insargnss3d:extractdisplacement",
                        "insargnss3d:evaluatedisplacement"}
    assert {p.name() for p in alg.parameterDefinitions()} >= {"SEED", "cnn:DISPLACEMENT", "evaluation:REPORT"}


def test_qgis_process_knows_the_chain_by_id(qgis_process):
    _, _, log = qgis_process(["help", "insargnss3d:synthesize_extract_evaluate"])
    assert "cnn:DISPLACEMENT" in log and "evaluation:REPORT" in log
