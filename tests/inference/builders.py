"""Real, tiny ONNX models for the inference tests, exported with torch, and a dict-backed ModelFiles.

- TinyClassifier: two convolutions, global pooling, a linear head, then softmax (multiclass) or
  sigmoid (multilabel); random weights from a fixed seed.
- BrightBoxDetector: a real input-dependent "detector" with the artifact contract's outputs. It
  finds the bounding box of bright pixels (mean channel value above 0.5 in normalised units,
  i.e. a white object on a black background), and adds three fixed boxes so that thresholding,
  sorting and clipping are all exercised: outputs in model order are
  [clip box (0.3), below threshold (0.01), bright box (0.9), fixed box (0.5)].
"""

from __future__ import annotations

import io
import json
import threading
import warnings
from collections import Counter
from collections.abc import Sequence

import torch
from torch import nn

from loupe.artifacts import LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE, Preprocessing

torch.set_num_threads(1)

# fixed detector outputs, in network-input pixels (x1, y1, x2, y2)
FIXED_BOX = (16.0, 8.0, 48.0, 40.0)
CLIP_MARGIN = 10.0
DETECTOR_LABELS = ["ring", "bright", "fixed"]


class TinyClassifier(nn.Module):
    def __init__(self, classes: int, activation: str) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(16, classes)
        self.activation = activation

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(image)) * 4.0  # spread the scores so the order is clear
        return torch.softmax(logits, dim=-1) if self.activation == "softmax" else torch.sigmoid(logits)


class BrightBoxDetector(nn.Module):
    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        self.height, self.width = height, width

    def forward(self, image: torch.Tensor):
        bright = image[0].mean(dim=0) > 0.5  # [H, W]
        cols = bright.any(dim=0)
        rows = bright.any(dim=1)
        xs = torch.arange(self.width, dtype=torch.float32)
        ys = torch.arange(self.height, dtype=torch.float32)
        x1 = torch.where(cols, xs, torch.full_like(xs, self.width)).min()
        x2 = torch.where(cols, xs + 1, torch.zeros_like(xs)).max()
        y1 = torch.where(rows, ys, torch.full_like(ys, self.height)).min()
        y2 = torch.where(rows, ys + 1, torch.zeros_like(ys)).max()
        found = torch.stack([x1, y1, x2, y2])
        clip = torch.tensor([-CLIP_MARGIN, -CLIP_MARGIN, self.width + CLIP_MARGIN, self.height + CLIP_MARGIN])
        low = torch.tensor([0.0, 0.0, 20.0, 20.0])
        fixed = torch.tensor(FIXED_BOX)
        boxes = torch.stack([clip, low, found, fixed])
        # the bright box only counts when something bright was seen
        seen = (x2 > x1).to(torch.float32)
        scores = torch.stack([torch.tensor(0.3), torch.tensor(0.01), 0.9 * seen, torch.tensor(0.5)])
        labels = torch.tensor([0, 0, 1, 2], dtype=torch.int64)
        return boxes, scores, labels


def export(
    module: nn.Module, example: torch.Tensor, output_names: Sequence[str], dynamic_batch: bool
) -> bytes:
    buffer = io.BytesIO()
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its own deprecation
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=["image"],
            output_names=list(output_names),
            dynamic_axes={"image": {0: "n"}, output_names[0]: {0: "n"}} if dynamic_batch else None,
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


def classifier_artifacts(
    labels: list[str], task: str, size: tuple[int, int] = (48, 64), seed: int = 0, resize: str = "stretch"
) -> tuple[dict[str, bytes], TinyClassifier]:
    torch.manual_seed(seed)
    model = TinyClassifier(len(labels), "softmax" if task == "multiclass" else "sigmoid")
    onnx = export(model, torch.zeros(1, 3, *size), ["scores"], dynamic_batch=True)
    pre = Preprocessing(task=task, size=size, resize=resize)
    return artifact_files(onnx, labels, pre), model


def detector_artifacts(
    resize: str, size: tuple[int, int] = (96, 128), score_threshold: float = 0.05
) -> dict[str, bytes]:
    onnx = export(BrightBoxDetector(*size), torch.zeros(1, 3, *size), ["boxes", "scores", "labels"], False)
    pre = Preprocessing(
        task="detection",
        size=size,
        resize=resize,
        output_names=["boxes", "scores", "labels"],
        score_threshold=score_threshold,
    )
    return artifact_files(onnx, DETECTOR_LABELS, pre)


def artifact_files(onnx: bytes, labels: list[str], pre: Preprocessing) -> dict[str, bytes]:
    return {
        MODEL_FILE: onnx,
        LABELS_FILE: json.dumps(labels).encode(),
        PREPROCESSING_FILE: pre.model_dump_json().encode(),
    }


class DictModelFiles:
    """ModelFiles over a dict, counting reads; ``put`` bumps the version like a retrain would."""

    def __init__(self, read_delay_s: float = 0.0) -> None:
        self._models: dict[str, tuple[str, dict[str, bytes]]] = {}
        self._counter = 0
        self._lock = threading.Lock()
        self.reads: Counter[tuple[str, str]] = Counter()
        self.version_calls = 0
        self.read_delay_s = read_delay_s

    def put(self, model_name: str, files: dict[str, bytes]) -> str:
        with self._lock:
            self._counter += 1
            version = f"v{self._counter}"
            self._models[model_name] = (version, dict(files))
            return version

    def delete(self, model_name: str) -> None:
        with self._lock:
            self._models.pop(model_name, None)

    def version(self, model_name: str) -> str | None:
        with self._lock:
            self.version_calls += 1
            entry = self._models.get(model_name)
            return entry[0] if entry else None

    def read(self, model_name: str, file: str) -> bytes:
        if self.read_delay_s:
            threading.Event().wait(self.read_delay_s)
        with self._lock:
            self.reads[(model_name, file)] += 1
            entry = self._models.get(model_name)
            if entry is None or file not in entry[1]:
                raise FileNotFoundError(f"{model_name}/{file}")
            return entry[1][file]
