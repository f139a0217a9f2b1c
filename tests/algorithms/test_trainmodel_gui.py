"""trainmodel as a desktop user meets it (issue 14): quick defaults, a model that outlives
QGIS, a quiet log, honest labels and messages."""

import json
import re

TINY = {"SAMPLES": 8, "EPOCHS": 2, "BATCH_SIZE": 4, "VALIDATION_SAMPLES": 2, "SEED": 1, "DEVICE": "cpu",
        "SCENE_SIZE_PX": 32, "WIDTH": 8,
        "OPTIONS": json.dumps({"scene": {"model_epochs": 4, "max_stations": 12}})}


def _recorder():
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.infos, self.texts = [], []

        def pushInfo(self, text):  # noqa: N802
            self.infos.append(text)

        def setProgressText(self, text):  # noqa: N802  (QGIS 3.22 echoes it into the log)
            self.texts.append(text)

    return Recorder()


def _alg(provider, alg_id):
    from qgis.core import QgsApplication
    return QgsApplication.processingRegistry().createAlgorithmById(f"insargnss3d:{alg_id}")


def test_defaults_finish_in_minutes_and_the_help_names_the_long_recipe(provider):
    alg = _alg(provider, "trainmodel")
    scenes = alg.parameterDefinition("SAMPLES").defaultValue() * alg.parameterDefinition("EPOCHS").defaultValue()
    # ~15 scenes/s end to end on 2 CPU cores (README: 65,536 scenes in 72 min): <= 6 minutes
    assert 1000 <= scenes <= 5000
    help_text = alg.shortHelpString()
    assert "SAMPLES=2048, EPOCHS=32" in help_text and "minutes" in help_text
    assert "days" not in help_text


def test_model_goes_to_the_profile_folder_by_default_and_the_log_says_so(run_alg, tmp_path, monkeypatch):
    from qgis.core import QgsProcessing
    from insar_gnss_3d.algorithms import train_model
    monkeypatch.setattr(train_model, "default_model_folder", lambda: str(tmp_path / "profile" / "models"))
    for value in (None, QgsProcessing.TEMPORARY_OUTPUT):
        feedback = _recorder()
        params = {**TINY, "EPOCHS": 1, "REPORT": None}
        if value is not None:
            params["OUTPUT"] = value
        result = run_alg("trainmodel", params, feedback=feedback)
        assert result["OUTPUT"].startswith(str(tmp_path / "profile" / "models" / "model-8x1-seed1"))
        assert any(result["OUTPUT"] in m and "QGIS profile" in m for m in feedback.infos)
    # the second run did not overwrite the first model
    assert sorted(p.name for p in (tmp_path / "profile" / "models").glob("*.pt")) == [
        "model-8x1-seed1-2.pt", "model-8x1-seed1.pt"]


def test_one_log_line_per_epoch(run_alg, tmp_path):
    feedback = _recorder()
    run_alg("trainmodel", {**TINY, "OUTPUT": str(tmp_path / "m.pt"), "REPORT": None}, feedback=feedback)
    assert feedback.texts == []                                      # no per-step echo
    epochs = [m for m in feedback.infos if re.match(r"epoch \d+:", m)]
    assert len(epochs) == 2
    assert not any(re.match(r"epoch \d+/\d+ step", m) for m in feedback.infos)


def test_a_checkpoint_that_is_not_a_checkpoint_is_called_so(run_alg, tmp_path):
    out = tmp_path / "m.pt"
    folder = tmp_path / "m.pt.checkpoints"
    folder.mkdir()
    (folder / "checkpoint_rank0.pt").write_bytes(b"not a checkpoint at all")
    feedback = _recorder()
    run_alg("trainmodel", {**TINY, "EPOCHS": 1, "OUTPUT": str(out), "REPORT": None}, feedback=feedback)
    notes = [m for m in feedback.infos if "checkpoint" in m and "afresh" in m]
    assert len(notes) == 1 and "not a training checkpoint" in notes[0] and "another recipe" not in notes[0]
    assert out.exists()


def test_no_label_says_optional_twice(provider):
    """QGIS appends "[optional]" to an optional parameter's label by itself."""
    doubled = []
    for alg in provider.algorithms():
        for definition in alg.parameterDefinitions():
            if definition.flags() & definition.FlagOptional and "optional" in definition.description().lower():
                doubled.append(f"{alg.name()}:{definition.name()} '{definition.description()}'")
    assert doubled == []
