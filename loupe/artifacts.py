"""The model artifact contract between the trainer (writer) and inference/evaluation (readers).

A trained model lives under ``<models container>/<model name>/``:

- ``model.onnx``        the network, activation included (probabilities out), see ``TaskKind``
- ``labels.json``       category names; index i is output index i
- ``preprocessing.json`` how an RGB image becomes the network input (``Preprocessing``)
- ``metrics.json``      the modelPerformance object returned by the API
- ``holdout.json``      per-image predictions on the held-out (or test) images that metrics.json
                        measures, for per-request thresholds (``Holdout``); absent when no image
                        was held out
- ``detector_weights.pt`` detectors: the trained torch weights, the network's configuration and a
                        few check inputs (``torch.save``; written and read by the trainer only), from
                        which an export job rebuilds a static-shape graph (TensorFlow, TFLite, CoreML);
                        absent for classifiers and for detectors trained before it existed
- ``checkpoints/``      training checkpoints (resume after a Spot requeue)
- ``logs/``             trainer logs

ONNX inputs/outputs by task:
- classification (multiclass/multilabel): input ``image`` float32 [N,3,H,W];
  output ``scores`` float32 [N,C] (softmax for multiclass, sigmoid for multilabel).
- detection: input ``image`` float32 [1,3,H,W]; outputs ``boxes`` float32 [K,4] (x1,y1,x2,y2 in
  input-tensor pixels), ``scores`` float32 [K], ``labels`` int64 [K] (0-based index into
  labels.json), already filtered and non-max-suppressed.

holdout.json (``Holdout``, written with ``Holdout.to_json``, read with ``holdout_from_json``)::

    {"format_version": 1, "task": "multiclass", "labels": ["cat", "dog"], "source": "split",
     "images": [{"key": "images/cat_1.jpg", "width": 640, "height": 480,
                 "truth_labels": [0], "scores": [0.91, 0.09]}]}
    {"format_version": 1, "task": "detection", "labels": ["ball", "box"], "source": "test",
     "images": [{"key": "images/a.jpg", "width": 640, "height": 480,
                 "truth_boxes": [[0, 0.25, 0.25, 0.5, 0.5]],
                 "detections": [[0, 0.87, 0.26, 0.24, 0.49, 0.52], [1, 0.06, 0.0, 0.1, 0.3, 0.2]]}]}

``key`` is the image's COCO ``file_name`` as its annotation file gave it; boxes are
[label, left, top, width, height] relative to the image (0-1), detections [label, score, left,
top, width, height], every detection the model output (no score threshold); labels index
``labels`` (= labels.json).
"""
from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ARTIFACT_FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
LABELS_FILE = "labels.json"
PREPROCESSING_FILE = "preprocessing.json"
METRICS_FILE = "metrics.json"
HOLDOUT_FILE = "holdout.json"
DETECTOR_WEIGHTS_FILE = "detector_weights.pt"
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


# where holdout.json's images come from: split off the training images by the trainer, given to
# the recipe as its hold-out, or the run's test set (scored through the exported model)
# where holdout.json's images come from: "test" a given test set; "given" hold-out images handed to
# the trainer; "split" training images held out of a model trained on the rest (the final model is
# then trained on every image: an estimate); "crossValidation" each image predicted by a model of
# the folds without it; "training" the training images themselves (nothing could be held out)
HoldoutSource = Literal["split", "given", "test", "crossValidation", "training"]


class HoldoutImage(BaseModel):
    """One held-out image: its ground truth and what the model predicted for it (classification:
    ``truth_labels`` and ``scores``; detection: ``truth_boxes`` and ``detections``)."""

    model_config = ConfigDict(frozen=True)

    key: str  # the image's COCO file_name
    width: int  # oriented size of the image in pixels (0 where unknown)
    height: int
    truth_labels: list[int] | None = None
    scores: list[float] | None = None  # one per label, in the order of labels.json
    truth_boxes: list[tuple[int, float, float, float, float]] | None = None  # label, left, top, width, height
    detections: list[tuple[int, float, float, float, float, float]] | None = None  # label, score, box


class Holdout(BaseModel):
    """holdout.json: the per-image predictions behind metrics.json."""

    model_config = ConfigDict(frozen=True)

    format_version: int = ARTIFACT_FORMAT_VERSION
    task: TaskKind
    labels: list[str]
    source: HoldoutSource
    images: list[HoldoutImage]

    @model_validator(mode="after")
    def _fields_of_the_task(self) -> Holdout:
        count = len(self.labels)
        for i, image in enumerate(self.images):
            if self.task == "detection":
                ok = image.truth_boxes is not None and image.detections is not None and \
                    all(0 <= row[0] < count for row in [*image.truth_boxes, *image.detections])
            else:
                ok = image.truth_labels is not None and image.scores is not None and \
                    len(image.scores) == count and all(0 <= label < count for label in image.truth_labels)
            if not ok:
                raise ValueError(f"images[{i}] ({image.key!r}) does not hold the {self.task} fields for "
                                 f"{count} labels")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


def holdout_from_json(data: bytes | str) -> Holdout:
    """Parse holdout.json; raises pydantic.ValidationError when it breaks the format."""
    return Holdout.model_validate_json(data)


def relative_box(x1: float, y1: float, x2: float, y2: float, width: float, height: float,
                 ) -> tuple[float, float, float, float]:
    """Corners in pixels of a ``width`` x ``height`` image -> (left, top, width, height) relative
    to the image, clipped to it."""
    left, top = min(1.0, max(0.0, x1 / width)), min(1.0, max(0.0, y1 / height))
    right, bottom = min(1.0, max(left, x2 / width)), min(1.0, max(top, y2 / height))
    return left, top, right - left, bottom - top


def model_version_of(model: bytes, labels: bytes, preprocessing: bytes) -> str:
    """``modelVersion``: the first 16 hex digits of a SHA-256 over the three artifact files.

    Content-derived, so it is the same on every instance and for every storage backend, and it
    changes exactly when predictions can change (new weights, labels or preprocessing). Here, not in
    loupe.inference, because the trainer's Docker package writes it too.
    """
    digest = hashlib.sha256()
    for part in (model, labels, preprocessing):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:16]
