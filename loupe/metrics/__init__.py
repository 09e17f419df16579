"""modelPerformance metrics shared by the trainer (held-out split) and evaluations (test dataset).

numpy in, the wire's camelCase modelPerformance dict out (docs/wire-contract.md#model-performance), with values computed as
vision-evaluation 0.2.14 computes them (docs/wire-contract.md#metrics). Every value is a finite Python float.

- ``loupe.metrics.classification``: ``classification_performance``, ``multilabel_performance`` (numpy only)
- ``loupe.metrics.detection``: ``detection_performance`` (pycocotools, which the trainer installs; the
  Function App, which reads only the classification helpers, does not: so this package imports neither)
"""
