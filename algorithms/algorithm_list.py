"""The algorithms the provider offers (imports are light: no torch at module level)."""


def algorithm_classes():
    """Classes of every algorithm, in toolbox order."""
    from .okada_displacement import OkadaDisplacementAlgorithm
    from .synthesize_scene import SynthesizeSceneAlgorithm
    from .import_gnss import ImportGnssAlgorithm
    from .interpolate_gnss import InterpolateGnssAlgorithm
    from .decompose_los import DecomposeLosAlgorithm
    from .combine_insar_gnss import CombineInsarGnssAlgorithm
    from .project_los import ProjectLosAlgorithm
    from .evaluate_displacement import EvaluateDisplacementAlgorithm
    from .extract_displacement import ExtractDisplacementAlgorithm
    from .train_model import TrainModelAlgorithm
    from .benchmark_model import BenchmarkModelAlgorithm
    from .cross_validate import CrossValidateAlgorithm
    return [OkadaDisplacementAlgorithm, SynthesizeSceneAlgorithm, ImportGnssAlgorithm,
            InterpolateGnssAlgorithm, DecomposeLosAlgorithm, CombineInsarGnssAlgorithm, ProjectLosAlgorithm,
            EvaluateDisplacementAlgorithm, ExtractDisplacementAlgorithm, TrainModelAlgorithm,
            BenchmarkModelAlgorithm, CrossValidateAlgorithm]
