"""Loupe's trainer: ``python -m trainer`` runs one JobSpec (``job.py`` hands ``fit_job`` to the
core's job runner, ``loupe.runner``).

The machine-learning core is storage-free and works on local files (``loupe.runner.examples.Example``):
``trainer.recipes`` registers one training recipe per model kind (``trainer.classification``,
``trainer.detection``), ``trainer.starting_points`` names the pretrained networks they start
from, ``trainer.split`` is their hold-out split, ``trainer.context`` is what the orchestration
hands in (deadline, seed, progress, cancellation, checkpoint store).
"""
