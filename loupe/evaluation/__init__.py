"""Scoring exported models on local images and computing modelPerformance."""
