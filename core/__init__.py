"""Numerical core of the plugin: physics, data readers, model and training; no QGIS imports."""
