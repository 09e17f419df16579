"""Exports of trained models as Custom Vision's export packages, each built by a job (docs/exports.md)."""
