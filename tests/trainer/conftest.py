"""Tiny synthetic datasets drawn with Pillow at test time (no third-party images)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from trainer.classification import TrainOptions

from loupe.runner.examples import Example

SHAPES = ["circle", "square", "triangle"]
COLOURS = [(215, 35, 35), (35, 170, 55), (40, 60, 215)]

# small and quick: 2 views, 3 epochs, one thread (the CI machine has two cores)
FAST = TrainOptions(views=2, epochs=3, threads=1)


def draw(kind: int, rng: random.Random, size: tuple[int, int] = (96, 80)) -> Image.Image:
    image = Image.new("RGB", size, tuple(rng.randint(150, 255) for _ in range(3)))
    d = ImageDraw.Draw(image)
    s = rng.randint(28, 44)
    x, y = rng.randint(2, size[0] - s - 2), rng.randint(2, size[1] - s - 2)
    if kind == 0:
        d.ellipse((x, y, x + s, y + s), fill=COLOURS[0])
    elif kind == 1:
        d.rectangle((x, y, x + s, y + s), fill=COLOURS[1])
    else:
        d.polygon([(x, y + s), (x + s // 2, y), (x + s, y + s)], fill=COLOURS[2])
    return image


@pytest.fixture
def shapes(tmp_path: Path) -> list[Example]:
    """3 classes x 4 images, PNG and JPEG."""
    rng = random.Random(7)
    out = []
    for c in range(3):
        for i in range(4):
            path = tmp_path / f"{SHAPES[c]}_{i}.{'png' if i % 2 else 'jpg'}"
            draw(c, rng).save(path)
            out.append(Example(path, labels=[c], key=path.name))
    return out


@pytest.fixture
def multilabel_shapes(tmp_path: Path) -> list[Example]:
    """Images holding one or two of the three shapes (side by side), labels = the shapes present."""
    rng = random.Random(11)
    combos = [[0], [1], [2], [0, 1], [1, 2], [0, 2], [0], [1], [2], [0, 1], [1, 2], [0, 2]]
    out = []
    for i, combo in enumerate(combos):
        canvas = Image.new("RGB", (160, 80), (235, 235, 235))
        for slot, kind in enumerate(combo):
            canvas.paste(draw(kind, rng, (80, 80)), (80 * slot, 0))
        path = tmp_path / f"multi_{i}.png"
        canvas.save(path)
        out.append(Example(path, labels=list(combo), key=path.name))
    return out
