"""A classifier and a detector trained briefly on the sample data, shared by the package tests."""
from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from trainer.classification import TrainOptions, export_classifier, train_classifier
from trainer.context import LocalContext
from trainer.detection import export_detector, train_detector

from loupe import sample_data
from loupe.runner.examples import Example
from tests.trainer_detection.conftest import FAST as DETECTOR_FAST


def examples(dataset: sample_data.SampleDataset, folder: Path) -> tuple[list[Example], list[str]]:
    dataset.write(folder)
    index = {c["id"]: i for i, c in enumerate(dataset.coco["categories"])}
    rows: dict[int, list[dict]] = {}
    for a in dataset.coco["annotations"]:
        rows.setdefault(a["image_id"], []).append(a)
    out = []
    for im in dataset.coco["images"]:
        found = rows.get(im["id"], [])
        boxes = [(index[a["category_id"]], *a["bbox"]) for a in found if "bbox" in a]
        out.append(Example(folder / im["file_name"], im["file_name"], im["width"], im["height"],
                           sorted({index[a["category_id"]] for a in found}), boxes, key=im["file_name"]))
    return out, [c["name"] for c in dataset.coco["categories"]]


def sample_images(dataset: sample_data.SampleDataset) -> list[Image.Image]:
    return [Image.open(io.BytesIO(data)).convert("RGB") for data in dataset.images.values()]


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def classifier_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("package-classifier")
    train, labels = examples(sample_data.classification("train"), root / "data")
    result = train_classifier(train, labels, context=LocalContext.with_budget(600, seed=1), multilabel=False,
                              options=TrainOptions(views=2, epochs=3, threads=1))
    export_classifier(result, root / "shapes")
    return root / "shapes"


@pytest.fixture(scope="session")
def detector_folder(tmp_path_factory) -> Path:
    """Trained with letterbox preprocessing (the detection trainer's), 256 px, 60 iterations."""
    root = tmp_path_factory.mktemp("package-detector")
    train, labels = examples(sample_data.detection("train"), root / "data")
    result = train_detector(train, labels, context=LocalContext.with_budget(600, seed=1),
                            options=replace(DETECTOR_FAST, input_side=(256, 256)))
    export_detector(result, root / "objects")
    return root / "objects"


@pytest.fixture(scope="session")
def stretch_detector_folder(detector_folder, tmp_path_factory) -> Path:
    """The same network declared with stretch preprocessing: the package's own input handling."""
    folder = tmp_path_factory.mktemp("package-detector-stretch") / "objects"
    shutil.copytree(detector_folder, folder)
    pre = (folder / "preprocessing.json").read_text().replace('"letterbox"', '"stretch"')
    (folder / "preprocessing.json").write_text(pre)
    return folder
