"""Augmented views of a training image, deterministic in (seed, image, view).

View 0 is the image itself, so it goes through exactly the preprocessing prediction uses
(``loupe.preprocess.to_input``); the other views are random crops, mirror images and colour
changes of it, turned into network inputs by the same ``to_input``.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from loupe.artifacts import Preprocessing
from loupe.preprocess import to_input

CROP_AREA = (0.55, 1.0)  # share of the image a random crop keeps
CROP_ASPECT = (3 / 4, 4 / 3)
JITTER = 0.3  # brightness, contrast and saturation factors in [1 - JITTER, 1 + JITTER]
JITTER_P = 0.8


def view_rng(seed: int, image_key: str, view: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}/{image_key}/{view}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def augment(image: Image.Image, rng: random.Random, *, flip: bool = True) -> Image.Image:
    width, height = image.size
    area = rng.uniform(*CROP_AREA)
    aspect = rng.uniform(*CROP_ASPECT)
    crop_w = max(1, min(width, round(width * (area * aspect) ** 0.5)))
    crop_h = max(1, min(height, round(height * (area / aspect) ** 0.5)))
    left = rng.randint(0, width - crop_w)
    top = rng.randint(0, height - crop_h)
    out = image.crop((left, top, left + crop_w, top + crop_h))
    if flip and rng.random() < 0.5:
        out = ImageOps.mirror(out)
    if rng.random() < JITTER_P:
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            out = enhancer(out).enhance(rng.uniform(1 - JITTER, 1 + JITTER))
    return out


def view_input(image: Image.Image, pre: Preprocessing, *, seed: int, image_key: str, view: int) -> np.ndarray:
    """The network input [3,H,W] of one view of an image."""
    if view == 0:
        return to_input(image, pre)[0]
    return to_input(augment(image, view_rng(seed, image_key, view)), pre)[0]
