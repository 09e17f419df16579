"""Loupe's trainer: ``python -m trainer`` runs one JobSpec (see ``job.py``).

The machine-learning core is storage-free and works on local files:
``trainer.classification`` trains and exports image classifiers, ``trainer.backbones`` names the
pretrained networks they start from, ``trainer.context`` is what the orchestration hands in
(deadline, seed, progress, cancellation, checkpoint store).
"""
