"""Tiny detection datasets drawn with Pillow at test time (no third-party images), and one
detector trained on them, shared by the tests of a module."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from trainer.context import LocalContext
from trainer.detection import DetectorOptions, train_detector

from loupe.runner.examples import Example

LABELS = ["disc", "block"]
COLOURS = [(210, 40, 40), (40, 70, 210)]
SIZE = (160, 128)  # width, height

# Small and quick on two shared cores: one thread, a 160 px input, batches of 2, few iterations.
FAST = DetectorOptions(batch_size=2, input_side=(160, 160), min_iterations=60, max_iterations=60, warmup_iterations=10,
                       checkpoint_every_seconds=1e9, export_reserve_seconds=0.0, device="cpu",
                       threads=1)


def draw_scene(objects: list[tuple[int, tuple[int, int, int, int]]], rng: random.Random,
               size: tuple[int, int] = SIZE) -> Image.Image:
    """A light, slightly noisy background with solid discs (0) and blocks (1) at pixel boxes."""
    image = Image.new("RGB", size, tuple(rng.randint(200, 245) for _ in range(3)))
    d = ImageDraw.Draw(image)
    for _ in range(6):  # clutter: thin grey strokes
        x, y = rng.randint(0, size[0]), rng.randint(0, size[1])
        d.line((x, y, x + rng.randint(-30, 30), y + rng.randint(-30, 30)), fill=(150, 150, 150), width=1)
    for kind, box in objects:
        (d.ellipse if kind == 0 else d.rectangle)(box, fill=COLOURS[kind])
    return image


def random_objects(rng: random.Random, count: int, size: tuple[int, int] = SIZE) -> list[tuple[int, tuple]]:
    out: list[tuple[int, tuple]] = []
    while len(out) < count:
        s = rng.randint(30, 50)
        x, y = rng.randint(2, size[0] - s - 2), rng.randint(2, size[1] - s - 2)
        box = (x, y, x + s, y + s)
        if all(box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1] for _, b in out):
            out.append((len(out) % 2 if count > 1 else rng.randint(0, 1), box))
    return out


def local_image(path: Path, objects, size: tuple[int, int] = SIZE) -> Example:
    w, h = size
    boxes = [(kind, x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h) for kind, (x1, y1, x2, y2) in objects]
    return Example(path, f"images[{path.stem}]", w, h, sorted({b[0] for b in boxes}), boxes, key=path.name)


def make_dataset(folder: Path, count: int = 8, seed: int = 3, negatives: int = 1) -> list[Example]:
    """``count`` images with one or two objects each (both kinds appear), JPEG and PNG, plus
    ``negatives`` images without any object."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count + negatives):
        objects = [] if i >= count else random_objects(rng, 1 + i % 2)
        path = folder / f"scene_{i}.{'png' if i % 3 == 0 else 'jpg'}"
        draw_scene(objects, rng).save(path)
        out.append(local_image(path, objects))
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread (the test machine has two shared cores): oversubscribed threads are slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> list[Example]:
    return make_dataset(tmp_path_factory.mktemp("detection-data"))


@pytest.fixture(scope="module")
def trained(dataset):
    """A detector trained on ``dataset`` with FAST options (a few seconds)."""
    return train_detector(dataset, LABELS, context=LocalContext.with_budget(3600, seed=1), options=FAST)
