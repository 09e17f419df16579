"""One loaded model: its onnxruntime session, labels and preprocessing, and how to run it.

The one way Loupe runs an exported model: the analyze route (predict()) and evaluation scoring
(class_scores(), detections()) both go through it, so both get the same signature and format
checks and the same box mapping.

predict() returns the ``customModelResult`` object of the analyze response (docs/wire-contract.md#analyze-results):
- classifiers (multiclass, multilabel): ``{"tagsResult": {"values": [{name, confidence}, ...]}}``
  with every class, sorted by confidence (descending; ties keep label order);
- detectors: ``{"objectsResult": {"values": [{"boundingBox": {x, y, w, h}, "tags": [{name,
  confidence}]}, ...]}}`` sorted by confidence, scores below ``score_threshold`` dropped. Each
  box carries exactly one tag: the exported detector emits one label per box after
  class-wise NMS, so two classes on one region come as two objects. The name is always a
  training category name (labels.json), which IRIS requires.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pydantic import ValidationError

from loupe.artifacts import (
    ARTIFACT_FORMAT_VERSION,
    LABELS_FILE,
    MODEL_FILE,
    PREPROCESSING_FILE,
    Preprocessing,
    labels_from_json,
    model_version_of,
)
from loupe.inference.errors import ModelNotFound, ModelUnusable
from loupe.inference.files import LocalModelFiles, ModelFiles
from loupe.inference.session import create_session
from loupe.preprocess import draft_size, to_input

DETECTION_OUTPUTS = ("boxes", "scores", "labels")
_LOAD_ATTEMPTS = 3


def _confidence(value: float) -> float:
    """Clamped to [0, 1], as the shortest decimal that round-trips the network's float32
    (0.9, not 0.8999999761581421)."""
    return float(str(np.float32(min(1.0, max(0.0, float(value))))))


def _to_int_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> dict[str, int]:
    """A float xyxy box already clipped to the image -> int32 {x, y, w, h} with w, h >= 1 inside it."""
    x = min(math.floor(x1 + 0.5), width - 1)
    y = min(math.floor(y1 + 0.5), height - 1)
    right = min(math.floor(x2 + 0.5), width)
    bottom = min(math.floor(y2 + 0.5), height)
    return {"x": x, "y": y, "w": max(1, right - x), "h": max(1, bottom - y)}


@dataclass
class Detections:
    """A detector's output for one image, in original-image pixels, unfiltered (K detections)."""

    boxes: np.ndarray  # (K, 4) float64 x1, y1, x2, y2; may reach outside the image
    scores: np.ndarray  # (K,) float64
    labels: np.ndarray  # (K,) indices into Predictor.labels, as the network returned them (int64)


class Predictor:
    """A loaded model; predict() is thread-safe (onnxruntime's run() is, nothing else mutates)."""

    def __init__(
        self,
        *,
        model_name: str,
        model: bytes,
        labels: list[str],
        preprocessing: Preprocessing,
        version: str,
        model_version: str,
        intra_op_threads: int | None = None,
    ) -> None:
        self.model_name = model_name
        self.labels = labels
        self.preprocessing = preprocessing
        self.version = version  # the ModelFiles token this was loaded at (cache freshness)
        self.model_version = model_version  # reported as modelVersion
        try:
            self._session = create_session(model, intra_op_threads)
        # onnxruntime's Fail, InvalidGraph, InvalidProtobuf, ... derive from Exception directly
        except Exception as exc:  # noqa: BLE001
            raise ModelUnusable(f"model '{model_name}': {MODEL_FILE} cannot be loaded: {exc}") from None
        self._check_signature()

    @property
    def is_detector(self) -> bool:
        return self.preprocessing.task == "detection"

    @property
    def draft_size(self) -> tuple[int, int]:
        """Smallest (width, height) a JPEG may be draft-decoded to without losing input detail.

        Square on the larger input side, so it holds whatever the EXIF orientation and resize mode.
        """
        return draft_size(self.preprocessing)

    def _unusable(self, what: str) -> ModelUnusable:
        return ModelUnusable(f"model '{self.model_name}': {what}")

    def _check_signature(self) -> None:
        pre = self.preprocessing
        inputs = {i.name: i for i in self._session.get_inputs()}
        if pre.input_name not in inputs:
            raise self._unusable(
                f"{MODEL_FILE} has inputs {sorted(inputs)}; {PREPROCESSING_FILE} names '{pre.input_name}'"
            )
        shape = inputs[pre.input_name].shape
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise self._unusable(f"input '{pre.input_name}' has shape {shape}; expected [N,3,H,W]")
        for axis, expected in ((2, pre.size[0]), (3, pre.size[1])):
            if isinstance(shape[axis], int) and shape[axis] != expected:
                raise self._unusable(
                    f"input '{pre.input_name}' has shape {shape}; "
                    f"{PREPROCESSING_FILE} size is {list(pre.size)}"
                )
        outputs = {o.name: o for o in self._session.get_outputs()}
        needed: Sequence[str] = DETECTION_OUTPUTS if self.is_detector else pre.output_names[:1]
        missing = [name for name in needed if name not in outputs]
        if missing or not needed:
            raise self._unusable(
                f"{MODEL_FILE} lacks the outputs {missing or ['scores']}; it has {sorted(outputs)}"
            )
        if not self.is_detector:
            classes = outputs[needed[0]].shape[-1]
            if isinstance(classes, int) and classes != len(self.labels):
                raise self._unusable(
                    f"{MODEL_FILE} scores {classes} classes; {LABELS_FILE} has {len(self.labels)}"
                )
        self._outputs = list(needed)

    def class_scores(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, C) scores of a classifier for RGB images (EXIF orientation applied), in one network
        run, as the network returned them (float32): index j is ``labels[j]``."""
        if self.is_detector:
            raise TypeError(f"model '{self.model_name}' is a detector; use detections()")
        return self._class_scores(images)

    def detections(self, image: Image.Image, *, original_size: tuple[int, int] | None = None) -> Detections:
        """A detector's boxes for an RGB image (EXIF orientation applied), in original-image pixels:
        nothing filtered, clipped or rounded (metrics need the low-score detections too).

        ``original_size`` (width, height): when ``image`` was decoded at a reduced scale (JPEG
        draft), boxes are mapped to these original pixels instead of ``image``'s.
        """
        if not self.is_detector:
            raise TypeError(f"model '{self.model_name}' is a classifier; use class_scores()")
        return self._detections(image, original_size)

    def predict(self, image: Image.Image, *, original_size: tuple[int, int] | None = None) -> dict[str, Any]:
        """The customModelResult for an RGB image (EXIF orientation already applied).

        ``original_size`` (width, height): when ``image`` was decoded at a reduced scale (JPEG
        draft), boxes are reported in these original pixels instead of ``image``'s.
        """
        if not self.is_detector:
            return {"tagsResult": {"values": self._tags(self._class_scores((image,))[0])}}
        width, height = original_size or image.size
        found = self._detections(image, original_size)
        return {"objectsResult": {"values": self._objects(found, width, height)}}

    def _class_scores(self, images: Sequence[Image.Image]) -> np.ndarray:
        count, classes = len(images), len(self.labels)
        if count == 0:
            return np.zeros((0, classes), np.float32)
        tensors = [to_input(image, self.preprocessing)[0] for image in images]
        # one image (every prediction): a view, not a copy
        batch = tensors[0][np.newaxis] if count == 1 else np.stack(tensors)
        scores = np.asarray(self._session.run(self._outputs, {self.preprocessing.input_name: batch})[0])
        if scores.size != count * classes:
            batch_of = "" if count == 1 else f" for {count} images"
            raise self._unusable(f"the network returned {scores.size} scores{batch_of} for {classes} labels")
        if not np.all(np.isfinite(scores)):
            raise self._unusable("the network returned non-finite scores")
        return scores.reshape(count, classes)

    def _detections(self, image: Image.Image, original_size: tuple[int, int] | None) -> Detections:
        tensor, transform = to_input(image, self.preprocessing)
        results = self._session.run(self._outputs, {self.preprocessing.input_name: tensor[np.newaxis]})
        width, height = original_size or image.size
        boxes = transform.to_original(np.asarray(results[0], dtype=np.float64).reshape(-1, 4))
        boxes[:, [0, 2]] *= width / image.width
        boxes[:, [1, 3]] *= height / image.height
        scores = np.asarray(results[1], dtype=np.float64).reshape(-1)
        labels = np.asarray(results[2]).reshape(-1)
        if not boxes.shape[0] == scores.shape[0] == labels.shape[0]:
            raise self._unusable(
                f"the network returned {boxes.shape[0]} boxes, {scores.shape[0]} scores, "
                f"{labels.shape[0]} labels"
            )
        return Detections(boxes, scores, labels)

    def _tags(self, scores: np.ndarray) -> list[dict[str, Any]]:
        values = np.asarray(scores, dtype=np.float64)
        tags = [
            {"name": name, "confidence": _confidence(v)} for name, v in zip(self.labels, values, strict=False)
        ]
        return sorted(tags, key=lambda tag: -tag["confidence"])  # stable: ties keep label order

    def _objects(self, found: Detections, width: int, height: int) -> list[dict[str, Any]]:
        boxes = found.boxes  # ours to change: detections() made it for this call
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        objects = []
        for (x1, y1, x2, y2), score, label in zip(boxes, found.scores, found.labels, strict=False):
            if not score >= self.preprocessing.score_threshold:  # also drops NaN
                continue
            if not (x2 > x1 and y2 > y1):  # empty, inverted, or wholly outside the image
                continue
            index = int(label)
            if not 0 <= index < len(self.labels):
                raise self._unusable(
                    f"the network returned label {index}; {LABELS_FILE} has {len(self.labels)}"
                )
            objects.append(
                {
                    "boundingBox": _to_int_box(x1, y1, x2, y2, width, height),
                    "tags": [{"name": self.labels[index], "confidence": _confidence(score)}],
                }
            )
        return sorted(objects, key=lambda obj: -obj["tags"][0]["confidence"])


def _read(files: ModelFiles, model_name: str) -> tuple[str, bytes, bytes, bytes]:
    """A consistent (version, model, labels, preprocessing) snapshot, or ModelNotFound.

    The version is read before and after the files: a model retrained mid-read is read again,
    so a predictor is never labelled with a version whose files it does not hold.
    """
    for _ in range(_LOAD_ATTEMPTS):
        version = files.version(model_name)
        if version is None:
            raise ModelNotFound(model_name)
        try:
            parts = [files.read(model_name, f) for f in (MODEL_FILE, LABELS_FILE, PREPROCESSING_FILE)]
        except FileNotFoundError as exc:
            after = files.version(model_name)
            if after is None:
                raise ModelNotFound(model_name) from None
            if after != version:
                continue
            raise ModelUnusable(f"model '{model_name}' is incomplete: {exc}") from None
        if files.version(model_name) == version:
            return version, parts[0], parts[1], parts[2]
    raise ModelUnusable(f"model '{model_name}' kept changing while it was being loaded; try again")


def load_predictor(files: ModelFiles, model_name: str, *, intra_op_threads: int | None = None) -> Predictor:
    version, model, labels_raw, pre_raw = _read(files, model_name)
    try:
        labels = labels_from_json(labels_raw)
    except ValueError as exc:
        raise ModelUnusable(f"model '{model_name}': {LABELS_FILE} is invalid: {exc}") from None
    if not labels or not all(labels):
        raise ModelUnusable(f"model '{model_name}': {LABELS_FILE} must list at least one non-empty name")
    try:
        preprocessing = Preprocessing.model_validate_json(pre_raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise ModelUnusable(f"model '{model_name}': {PREPROCESSING_FILE} is invalid: {problems}") from None
    if preprocessing.format_version > ARTIFACT_FORMAT_VERSION:
        raise ModelUnusable(
            f"model '{model_name}': artifact format {preprocessing.format_version} is newer than this "
            f"server reads ({ARTIFACT_FORMAT_VERSION}); update Loupe"
        )
    return Predictor(
        model_name=model_name,
        model=model,
        labels=labels,
        preprocessing=preprocessing,
        version=version,
        model_version=model_version_of(model, labels_raw, pre_raw),
        intra_op_threads=intra_op_threads,
    )


def load_predictor_from_folder(
    folder: str | os.PathLike[str], *, intra_op_threads: int | None = None
) -> Predictor:
    """The exported model in ``folder`` (model.onnx, labels.json, preprocessing.json), with the
    checks and errors of load_predictor; messages name the model by its folder."""
    return load_predictor(LocalModelFiles(folder), str(folder), intra_op_threads=intra_op_threads)
