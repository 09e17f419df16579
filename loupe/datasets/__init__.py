"""Datasets: registration through the API or by dropping files, validation, downloads."""
