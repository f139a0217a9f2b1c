"""InSAR-GNSS 3D QGIS plugin: only the entry point lives here (nothing heavy is imported)."""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """QGIS plugin entry point."""
    from .plugin import InsarGnss3dPlugin
    return InsarGnss3dPlugin(iface)
