"""Evaluations of a trained model on a test dataset (docs/wire-contract.md#evaluations)."""
