"""The model artifact contract between the trainer (writer) and inference/evaluation (readers).

A trained model lives under ``<models container>/<model name>/``:

- ``model.onnx``        the network, activation included (probabilities out), see ``TaskKind``
- ``labels.json``       category names; index i is output index i
- ``preprocessing.json`` how an RGB image becomes the network input (``Preprocessing``)
- ``metrics.json``      the modelPerformance object returned by the API
- ``checkpoints/``      training checkpoints (resume after a Spot requeue)
- ``logs/``             trainer logs

ONNX inputs/outputs by task:
- classification (multiclass/multilabel): input ``image`` float32 [N,3,H,W];
  output ``scores`` float32 [N,C] (softmax for multiclass, sigmoid for multilabel).
- detection: input ``image`` float32 [1,3,H,W]; outputs ``boxes`` float32 [K,4] (x1,y1,x2,y2 in
  input-tensor pixels), ``scores`` float32 [K], ``labels`` int64 [K] (0-based index into
  labels.json), already filtered and non-max-suppressed.
"""
from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ARTIFACT_FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
LABELS_FILE = "labels.json"
PREPROCESSING_FILE = "preprocessing.json"
METRICS_FILE = "metrics.json"
CHECKPOINTS_DIR = "checkpoints/"
LOGS_DIR = "logs/"

TaskKind = Literal["multiclass", "multilabel", "detection"]


class Preprocessing(BaseModel):
    """RGB uint8 image -> float32 CHW tensor: resize, scale to [0, 1], (x - mean) / std."""

    model_config = ConfigDict(frozen=True)

    format_version: int = ARTIFACT_FORMAT_VERSION
    task: TaskKind
    # network input size, (height, width)
    size: tuple[int, int]
    # stretch: resize to size ignoring aspect; letterbox: keep aspect, pad right/bottom with `pad_value`
    resize: Literal["stretch", "letterbox"] = "stretch"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    pad_value: float = 0.0  # in normalised units (after mean/std), used by letterbox
    input_name: str = "image"
    output_names: list[str] = Field(default_factory=lambda: ["scores"])
    backbone: str = "efficientnet_lite0"
    # detections below this confidence are dropped by inference
    score_threshold: float = 0.05


def labels_from_json(data: bytes) -> list[str]:
    labels = json.loads(data)
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError("labels.json must be a JSON list of strings")
    return labels
