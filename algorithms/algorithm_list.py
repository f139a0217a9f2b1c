"""The algorithms the provider offers (imports are light: no torch at module level)."""


def algorithm_classes():
    """Classes of every algorithm, in toolbox order."""
    from .okada_displacement import OkadaDisplacementAlgorithm
    from .import_gnss import ImportGnssAlgorithm
    from .interpolate_gnss import InterpolateGnssAlgorithm
    from .decompose_los import DecomposeLosAlgorithm
    from .project_los import ProjectLosAlgorithm
    from .evaluate_displacement import EvaluateDisplacementAlgorithm
    from .extract_displacement import ExtractDisplacementAlgorithm
    return [OkadaDisplacementAlgorithm, ImportGnssAlgorithm, InterpolateGnssAlgorithm, DecomposeLosAlgorithm, ProjectLosAlgorithm, EvaluateDisplacementAlgorithm, ExtractDisplacementAlgorithm]
