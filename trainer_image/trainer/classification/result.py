"""What the classifier recipe returns: the trained network and how it was made. A
``ClassifierResult`` is a ``loupe.runner.training.TrainedModel``: ``export`` writes the artifact
files, ``holdout_performance`` measures it on its held-out images, ``holdout_predictions`` gives the
per-image predictions behind that (holdout.json), ``report`` says how it was made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from loupe.artifacts import Holdout, HoldoutImage, Preprocessing
from loupe.metrics.classification import classification_performance, multilabel_performance
from loupe.runner.examples import Example
from trainer.classification.model import ClassifierNet


@dataclass
class HoldoutPredictions:
    examples: list[Example]  # the held-out images, in the order of the rows below
    scores: np.ndarray  # [N, C] probabilities
    targets: np.ndarray  # [N] class indices (multiclass) or [N, C] 0/1 (multilabel)
    source: Literal["split", "given", "crossValidation", "training"]  # loupe.artifacts.HoldoutSource

    @property
    def images(self) -> list[Path]:
        return [Path(example.path) for example in self.examples]


@dataclass
class TrainingStats:
    images: int
    holdout_images: int
    # what the reported figures were measured on (loupe.artifacts.HoldoutSource; "none": nothing)
    holdout_source: Literal["split", "given", "crossValidation", "training", "none"]
    backbone: str
    device: str
    views: int
    finetune_epochs_planned: int
    finetune_epochs_run: float = 0.0  # in this process, all passes
    feature_extractions: int = 0  # image-views through the frozen backbone in this process
    views_restored: int = 0  # views read back from checkpoints
    passes_restored: list[str] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)
    final_model: str = ""  # which pass's weights the result holds
    method: str = ""  # "finetune" or "linear" (the linear head on the frozen backbone)
    # held-out (accuracy, -log loss) of each method in the split pass; "cv:<head>" out of fold
    selection: dict[str, tuple[float, float]] = field(default_factory=dict)
    head: str = ""  # the linear head chosen by cross-validation (trainer.classification.selection)
    temperature: float = 1.0  # folded into the head: probabilities = softmax(logits / temperature)
    budget_limited: bool = False  # views or epochs were cut to fit the budget
    recoveries: int = 0  # non-finite losses recovered from
    checkpoint_saves: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class ClassifierResult:
    model: ClassifierNet  # eval mode
    preprocessing: Preprocessing
    labels: list[str]
    multilabel: bool
    holdout: HoldoutPredictions | None
    stats: TrainingStats
    # real network inputs (to_input of training images) for the export check, [k, 3, H, W]
    check_inputs: np.ndarray
    # where export reports its phases (phase, percent, message): the run's progress
    progress: Callable[[str, float, str], None] | None = field(default=None, repr=False, compare=False)

    def export(self, folder: Path) -> None:
        """Write model.onnx, labels.json and preprocessing.json into ``folder``, the ONNX model
        checked against the torch model (raises ExportCheckFailed)."""
        from trainer.classification.export import export_classifier

        export_classifier(self, folder, progress=self.progress)

    def holdout_performance(self) -> dict:
        """modelPerformance on the held-out images (split off the training images, or given);
        no values when there were too few images to hold any out."""
        holdout = self.holdout
        if holdout is None or len(holdout.targets) == 0:
            return {"tagPerformance": {}}
        if self.multilabel:
            return multilabel_performance(holdout.scores, holdout.targets, self.labels)
        return classification_performance(holdout.scores, holdout.targets, self.labels)

    def holdout_predictions(self) -> Holdout | None:
        """holdout.json: the scores behind ``holdout_performance``, per held-out image (keyed by its
        COCO file_name); None when there were too few images to hold any out."""
        holdout = self.holdout
        if holdout is None or not holdout.examples:
            return None
        images = [HoldoutImage(key=example.key, width=example.width, height=example.height,
                               truth_labels=sorted(example.labels), scores=[float(s) for s in row])
                  for example, row in zip(holdout.examples, holdout.scores, strict=True)]
        return Holdout(task=self.preprocessing.task, labels=list(self.labels), source=holdout.source, images=images)

    def report(self) -> dict:
        """How the model was made (method, views, epochs, what a resume restored)."""
        return asdict(self.stats)
