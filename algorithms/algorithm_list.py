"""The algorithms the provider offers (imports are light: no torch at module level)."""


def algorithm_classes():
    """Classes of every algorithm, in toolbox order."""
    from .okada_displacement import OkadaDisplacementAlgorithm
    from .import_gnss import ImportGnssAlgorithm
    from .interpolate_gnss import InterpolateGnssAlgorithm
    return [OkadaDisplacementAlgorithm, ImportGnssAlgorithm, InterpolateGnssAlgorithm]
