"""Build ``resources/models/synthesize_extract_evaluate.model3`` with the QGIS Processing API.

The graphical model chains three of the plugin's algorithms::

    synthesizescene  ->  extractdisplacement  ->  evaluatedisplacement
         (scene)              (cnn)                  (evaluation)

A synthetic scene (SEED, optional DEM) feeds its InSAR tracks, LOS vectors, DEM and GNSS
layer to the CNN; the CNN's 3-D displacement is scored against the scene's truth.

The file is generated, never edited by hand (a hand-written ``.model3`` misses details
such as ``min``/``max`` of number parameters that QGIS 3.22 requires). Run::

    PYTHONPATH=build/plugins .venv/bin/python scripts/build_model3.py [--output PATH]

QGIS 3.22 names a model's outputs ``<child id>:<output name>``: the model takes and returns

==================================  =======================================================
``SEED``, ``DEM``, ``EXTENT``,      inputs of synthesizescene (``DEM``, ``EXTENT`` optional)
``PIXEL_SIZE``,
``MAX_DISPLACEMENT_M``
``MODEL``, ``DEVICE``               inputs of extractdisplacement (``MODEL`` optional:
                                    default the bundled model)
``cnn:DISPLACEMENT``                the CNN's displacement (east, north, up) [m]
``evaluation:REPORT``               HTML report of the evaluation
``evaluation:MSSIM_EAST`` ...       mean SSIM and RMSE [m] per component (numbers: in the
``evaluation:RMSE_UP``              results, not parameters)
==================================  =======================================================
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "resources" / "models" / "synthesize_extract_evaluate.model3"
MODEL_NAME = "synthesize_extract_evaluate"
MODEL_GROUP = "InSAR-GNSS 3D examples"

#: Child ids (prefixes of the model's output names).
SCENE, CNN, EVALUATION = "scene", "cnn", "evaluation"
#: Model outputs: name -> (child id, child output, description).
OUTPUTS = {
    "DISPLACEMENT": (CNN, "OUTPUT", "3-D displacement by the CNN (east, north, up) [m]"),
    "REPORT": (EVALUATION, "REPORT", "Evaluation report (HTML)"),
    **{f"{kind}_{c}": (EVALUATION, f"{kind}_{c}", f"{label} {c.lower()}")
       for kind, label in (("MSSIM", "Mean SSIM"), ("RMSE", "RMSE [m]"))
       for c in ("EAST", "NORTH", "UP")},
}

HELP = {
    "ALG_DESC": (
        "Example chain of the InSAR-GNSS 3D algorithms: a synthetic scene (Synthesize scene) "
        "goes through the CNN (Extract 3-D displacement) and the result is scored against "
        "the scene's truth (Evaluate a displacement prediction). Outputs: the truth and the "
        "CNN's east/north/up displacement [m], the evaluation report, and the mean SSIM and "
        "RMSE [m] of each component (numbers in the results: evaluation:MSSIM_EAST, ...)."),
    "SEED": "Seed of the synthetic scene (same seed, same scene).",
    "DEM": "Optional DEM [m] giving real topography; else fractal terrain.",
    "EXTENT": "Optional scene extent; else the DEM's centre or central Kyushu, 96 km square.",
    "PIXEL_SIZE": "Pixel size of the scene [m].",
    "MAX_DISPLACEMENT_M": "Largest |component| of the truth [m] (0 = random, 1 mm - 1 m).",
    "MODEL": "Model file from Train model (default: the bundled model).",
    "DEVICE": "auto (CUDA when PyTorch sees a GPU), cpu or cuda.",
    "ALG_CREATOR": "insar_gnss_3d (scripts/build_model3.py)",
}


def _model_parameters():
    """The model's input parameter definitions, in order."""
    from qgis.core import (QgsProcessingParameterEnum, QgsProcessingParameterExtent,
                           QgsProcessingParameterFile, QgsProcessingParameterNumber,
                           QgsProcessingParameterRasterLayer)
    number = QgsProcessingParameterNumber
    device = QgsProcessingParameterEnum("DEVICE", "Device", ["auto", "cpu", "cuda"],
                                        defaultValue="auto")
    device.setUsesStaticStrings(True)
    return [
        number("SEED", "Seed", number.Integer, 1, minValue=0, maxValue=2_147_483_647),
        QgsProcessingParameterRasterLayer("DEM", "DEM [m] (else fractal terrain)", optional=True),
        QgsProcessingParameterExtent("EXTENT", "Scene extent (else the DEM's centre or central Kyushu)", optional=True),
        number("PIXEL_SIZE", "Pixel size [m]", number.Double, 1000.0, minValue=100.0,
               maxValue=10000.0),
        number("MAX_DISPLACEMENT_M", "Largest |displacement| of the truth [m] (0 = random)",
               number.Double, 0.3, minValue=0.0, maxValue=20.0),
        QgsProcessingParameterFile("MODEL", "Model file (default: the bundled model)",
                                   QgsProcessingParameterFile.File, optional=True,
                                   fileFilter="InSAR-GNSS 3D model (*.pt);;All files (*)"),
        device,
    ]


def build_model():
    """The model as a :class:`QgsProcessingModelAlgorithm`.

    The ``insargnss3d`` provider must be registered (the children's parameter and output
    definitions are looked up to create the model's destination parameters).
    """
    from qgis.core import (QgsApplication, QgsProcessing, QgsProcessingModelAlgorithm,
                           QgsProcessingModelChildAlgorithm,
                           QgsProcessingModelChildParameterSource as Source,
                           QgsProcessingModelOutput, QgsProcessingModelParameter)
    from qgis.PyQt.QtCore import QPointF

    registry = QgsApplication.processingRegistry()
    for alg in ("synthesizescene", "extractdisplacement", "evaluatedisplacement"):
        if registry.algorithmById(f"insargnss3d:{alg}") is None:
            raise RuntimeError(f"insargnss3d:{alg} is not registered; register the "
                               "insargnss3d provider before building the model.")

    model = QgsProcessingModelAlgorithm(MODEL_NAME, MODEL_GROUP, "insargnss3dexamples")
    for i, definition in enumerate(_model_parameters()):
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(120.0 + 200.0 * (i % 4), 60.0 + 90.0 * (i // 4)))
        model.addModelParameter(definition, component)

    def param(name):
        return [Source.fromModelParameter(name)]

    def child_output(child_id, output):
        return [Source.fromChildOutput(child_id, output)]

    def child(alg_id, child_id, description, position, sources, statics=None):
        c = QgsProcessingModelChildAlgorithm(f"insargnss3d:{alg_id}")
        c.setChildId(child_id)
        c.setDescription(description)
        c.setPosition(QPointF(*position))
        for key, value in sources.items():
            c.addParameterSources(key, value)
        for key, value in (statics or {}).items():
            c.addParameterSources(key, [Source.fromStaticValue(value)])
        # every other mandatory input at the algorithm's default, as the modeller sets it
        for definition in registry.algorithmById(f"insargnss3d:{alg_id}").parameterDefinitions():
            optional = definition.flags() & definition.FlagOptional
            if (definition.isDestination() or optional or definition.name() in sources
                    or definition.name() in (statics or {})):
                continue
            c.addParameterSources(definition.name(), [Source.fromStaticValue(definition.defaultValue())])
        outputs = {}
        for k, (out_child, child_name, desc) in OUTPUTS.items():
            if out_child != child_id:
                continue
            out = QgsProcessingModelOutput(k, desc)
            out.setChildId(child_id)
            out.setChildOutputName(child_name)
            out.setDefaultValue(QgsProcessing.TEMPORARY_OUTPUT)   # files: temporary unless given
            out.setPosition(QPointF(position[0] + 260.0, position[1] + 40.0 * len(outputs)))
            outputs[k] = out
        c.setModelOutputs(outputs)
        model.addChildAlgorithm(c)

    child("synthesizescene", SCENE, "Synthesize scene", (220.0, 300.0),
          {k: param(k) for k in ("SEED", "DEM", "EXTENT", "PIXEL_SIZE", "MAX_DISPLACEMENT_M")},
          {"START_DATE": "2024-01-01"})
    scene_out = {k: child_output(SCENE, k) for k in
                 ("INSAR_ASC", "INSAR_DESC", "LOS_ASC", "LOS_DESC", "GNSS")}
    child("extractdisplacement", CNN, "Extract 3-D displacement (CNN)", (220.0, 480.0),
          {**scene_out, "DEM": child_output(SCENE, "DEM_OUT"), "MODEL": param("MODEL"),
           "DEVICE": param("DEVICE")},
          {"INSAR_UNITS": "m"})
    child("evaluatedisplacement", EVALUATION, "Evaluate against the truth", (220.0, 660.0),
          {"PREDICTION": child_output(CNN, "OUTPUT"), "TRUTH": child_output(SCENE, "TRUTH")})

    model.setParameterOrder([d.name() for d in _model_parameters()])
    model.setHelpContent(HELP)
    model.updateDestinationParameters()
    ok, errors = model.validate()
    if not ok:
        raise RuntimeError("The model does not validate: " + "; ".join(errors))
    return model


def start_qgis():
    """A headless QgsApplication with Processing and the insargnss3d provider; returns both."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    plugins = REPO / "build" / "plugins"
    if str(plugins) not in sys.path:
        sys.path.insert(0, str(plugins))
    from qgis.core import QgsApplication
    app = QgsApplication([], False)
    app.initQgis()
    from insar_gnss_3d.algorithms.provider import InsarGnss3dProvider
    provider = InsarGnss3dProvider()       # keep a reference: the registry does not own it
    if not QgsApplication.processingRegistry().addProvider(provider):
        raise RuntimeError("The insargnss3d provider could not be registered.")
    return app, provider


def main(argv=None):
    """Command line: write the .model3 file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="the .model3 file to write")
    args = parser.parse_args(argv)
    app, provider = start_qgis()
    model = build_model()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    if not model.toFile(args.output):
        raise SystemExit(f"Could not write {args.output}.")
    outputs = [d.name() for d in model.destinationParameterDefinitions()]
    print(f"Wrote {args.output}: inputs {', '.join(d.name() for d in _model_parameters())}; "
          f"outputs {', '.join(outputs)} and the numbers evaluation:MSSIM_* / RMSE_*.")
    del model
    stop_qgis(app, provider)
    return 0


def stop_qgis(app, provider):
    """Unregister the provider and leave QGIS cleanly."""
    from qgis.core import QgsApplication
    QgsApplication.processingRegistry().removeProvider(provider)
    app.exitQgis()


if __name__ == "__main__":
    os.environ["QT_HASH_SEED"] = "0"   # attribute order in the XML stays the same between runs
    sys.exit(main())
