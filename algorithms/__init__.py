"""Processing algorithms (the only QGIS code besides plugin.py)."""
