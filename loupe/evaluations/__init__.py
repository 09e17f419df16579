"""Evaluations of a trained model on a test dataset (api-spec.md A.5)."""
