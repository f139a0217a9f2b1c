"""Every configuration field has allowed values, and a value outside them is refused by name."""

import dataclasses

import pytest

from insar_gnss_3d.core.configs import MODEL_LIMITS, SCENE_LIMITS, TRAIN_LIMITS
from insar_gnss_3d.core.model import ModelConfig
from insar_gnss_3d.core.synthetic import SceneConfig
from insar_gnss_3d.core.train import TrainConfig

CONFIGS = [(SceneConfig, SCENE_LIMITS), (ModelConfig, MODEL_LIMITS), (TrainConfig, TRAIN_LIMITS)]


@pytest.mark.parametrize("cls, limits", CONFIGS, ids=lambda c: getattr(c, "__name__", ""))
def test_every_field_has_allowed_values_and_the_defaults_fit(cls, limits):
    names = [f.name for f in dataclasses.fields(cls)]
    assert sorted(set(names) - set(limits)) == [], "add the new fields to core/configs.py"
    assert sorted(set(limits) - set(names)) == [], "limits of fields that no longer exist"
    cls()                                     # the defaults are allowed


@pytest.mark.parametrize("cls, changes, message", [
    (SceneConfig, {"pixel_m": -1.0}, r"Unusable scene configuration: pixel_m = -1.0 must be a number "
                                     r"in \[1, 100000\] m\."),
    (SceneConfig, {"size_px": 64.5}, r"size_px = 64.5 must be a whole number in \[8, 8192\] px"),
    (SceneConfig, {"incidence_deg": (46.0, 30.0)}, r"incidence_deg = \(46.0, 30.0\) must be a range "
                                                   r"\(low, high\) with low <= high, both in \[1, 89\] deg"),
    (SceneConfig, {"max_displacement_m": (0.0, 1.0)}, r"max_displacement_m .* both in \[1e-06, 100\] m"),
    (SceneConfig, {"track_dropout_probability": 1.5}, r"track_dropout_probability = 1.5 .* \[0, 1\]"),
    (SceneConfig, {"revisit_days": ()}, r"revisit_days = \(\) must be one or more whole numbers in \[1, 366\]"),
    (SceneConfig, {"turbulence_sigma_m": (0.0, float("nan"))}, r"turbulence_sigma_m = \(0.0, nan\)"),
    (ModelConfig, {"width": 0}, r"Unusable model configuration: width = 0 must be a whole number in \[1, 1024\]"),
    (ModelConfig, {"gnss_scales_px": (8.0, -1.0)}, r"gnss_scales_px .* \[0.1, 10000\] px"),
    (TrainConfig, {"learning_rate": 0.0}, r"Unusable training configuration: learning_rate = 0.0"),
    (TrainConfig, {"batch_size": 0}, r"batch_size = 0 must be a whole number in \[1, 65536\] scenes"),
    (TrainConfig, {"device": "gpu"}, r"device = 'gpu' must be one of auto, cpu, cuda \(or cuda:<index>\)"),
    (TrainConfig, {"scene": "size_px=32"}, r"scene = 'size_px=32' must be a dict of options"),
])
def test_a_value_outside_is_refused_with_the_field_and_its_range(cls, changes, message):
    with pytest.raises(ValueError, match=message):
        cls(**changes)


def test_several_problems_are_named_at_once_and_good_values_pass():
    with pytest.raises(ValueError, match=r"pixel_m = 0.0 .*; model_epochs = 1 "):
        SceneConfig(pixel_m=0.0, model_epochs=1)
    assert SceneConfig(size_px=32, pixel_m=500.0, revisit_days=[12], dip_deg=[10, 10]).size_px == 32
    assert TrainConfig(device="cuda:1", seed=7).device == "cuda:1"
    assert SceneConfig.from_dict(SceneConfig().to_dict()) == SceneConfig()


@pytest.mark.parametrize("cls", [SceneConfig, ModelConfig, TrainConfig])
def test_configurations_are_frozen(cls):
    config = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1
