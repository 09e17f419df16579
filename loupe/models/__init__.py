"""Models: training runs, their records, the reconciler."""
