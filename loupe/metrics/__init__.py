"""modelPerformance metrics shared by the trainer (held-out split) and evaluations (test dataset).

numpy in, the wire's camelCase modelPerformance dict out (docs/wire-contract.md#model-performance), with values computed as
vision-evaluation 0.2.14 computes them (docs/wire-contract.md#metrics). Every value is a finite Python float.
"""

from loupe.metrics.classification import classification_performance, multilabel_performance
from loupe.metrics.detection import detection_performance

__all__ = ["classification_performance", "detection_performance", "multilabel_performance"]
