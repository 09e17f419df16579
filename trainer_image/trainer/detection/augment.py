"""Box-aware augmentation, deterministic in (seed, epoch, image).

Geometric changes (mirror, zoom in by cropping, zoom out onto a padded canvas) and colour
changes happen on the decoded PIL image; the result then goes through exactly the prediction
preprocessing (``loupe.preprocess.to_input``: letterbox resize, normalisation), so the network
never sees pixels prepared differently from those it will be asked about.

A crop never cuts an object ambiguously: it keeps an object when most of it stays visible and
drops it when little does; a crop that would leave an object half visible is redrawn, since the
network could neither call that region an object nor background without being taught wrong.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from loupe.artifacts import Preprocessing
from loupe.preprocess import to_input

MIN_BOX_PIXELS = 2.0  # boxes thinner than this in network-input pixels are dropped
_CROP_TRIES = 10


@dataclass(frozen=True)
class AugmentConfig:
    flip_p: float = 0.5
    crop_p: float = 0.4  # zoom in
    crop_side: tuple[float, float] = (0.4, 1.0)  # crop side as a share of the image side
    crop_aspect: tuple[float, float] = (3 / 4, 4 / 3)
    zoom_out_p: float = 0.3
    zoom_out_max: float = 2.0  # canvas side up to this many times the image side
    keep_visible: float = 0.7  # keep a cropped object when at least this share of it is visible
    drop_visible: float = 0.25  # drop it when at most this share is; in between, redraw the crop
    jitter_p: float = 0.8
    jitter: float = 0.3  # brightness, contrast, saturation factors in [1 - jitter, 1 + jitter]


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    digest = hashlib.sha256(f"detection/{seed}/{epoch}/{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def pad_colour(pre: Preprocessing) -> tuple[int, int, int]:
    """The RGB colour that normalises to the letterbox padding value, so zoom-out borders look
    like the padding prediction adds."""
    pairs = zip(pre.mean, pre.std, strict=True)
    return tuple(round(255 * min(1.0, max(0.0, pre.pad_value * s + m))) for m, s in pairs)


def _visible(boxes: np.ndarray, window: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(clipped boxes, visible share of each box) for a crop window x1, y1, x2, y2."""
    clipped = boxes.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(window[0], window[2])
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(window[1], window[3])
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    return clipped, inside / np.maximum(area, 1e-9)


def _crop(image: Image.Image, boxes: np.ndarray, labels: np.ndarray, rng: random.Random, cfg: AugmentConfig):
    width, height = image.size
    for _ in range(_CROP_TRIES):
        side = rng.uniform(*cfg.crop_side)
        aspect = rng.uniform(*cfg.crop_aspect)
        crop_w = max(1, min(width, round(width * side * aspect ** 0.5)))
        crop_h = max(1, min(height, round(height * side / aspect ** 0.5)))
        left = rng.randint(0, width - crop_w)
        top = rng.randint(0, height - crop_h)
        clipped, share = _visible(boxes, (left, top, left + crop_w, top + crop_h))
        if np.any((share > cfg.drop_visible) & (share < cfg.keep_visible)):
            continue
        keep = share >= cfg.keep_visible
        if len(boxes) and not keep.any():
            continue  # keep at least one object: a crop of background only wastes a positive image
        out = clipped[keep] - np.asarray([left, top, left, top], dtype=np.float64)
        return image.crop((left, top, left + crop_w, top + crop_h)), out, labels[keep]
    return image, boxes, labels


def _zoom_out(image: Image.Image, boxes: np.ndarray, rng: random.Random, cfg: AugmentConfig,
              fill: tuple[int, int, int]):
    ratio = rng.uniform(1.0, cfg.zoom_out_max)
    width, height = image.size
    canvas_w, canvas_h = round(width * ratio), round(height * ratio)
    left = rng.randint(0, canvas_w - width)
    top = rng.randint(0, canvas_h - height)
    canvas = Image.new("RGB", (canvas_w, canvas_h), fill)
    canvas.paste(image, (left, top))
    return canvas, boxes + np.asarray([left, top, left, top], dtype=np.float64)


def augment(image: Image.Image, boxes: np.ndarray, labels: np.ndarray, rng: random.Random, cfg: AugmentConfig,
            fill: tuple[int, int, int]) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """A random variant of (image, pixel boxes [M,4] x1y1x2y2, labels [M])."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if rng.random() < cfg.flip_p:
        image = ImageOps.mirror(image)
        boxes = boxes.copy()
        boxes[:, [0, 2]] = image.width - boxes[:, [2, 0]]
    draw = rng.random()
    if draw < cfg.crop_p:
        image, boxes, labels = _crop(image, boxes, labels, rng, cfg)
    elif draw < cfg.crop_p + cfg.zoom_out_p:
        image, boxes = _zoom_out(image, boxes, rng, cfg, fill)
    if rng.random() < cfg.jitter_p:
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            image = enhancer(image).enhance(rng.uniform(1 - cfg.jitter, 1 + cfg.jitter))
    return image, boxes, labels


def network_input(image: Image.Image, boxes: np.ndarray, labels: np.ndarray, pre: Preprocessing
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input [3,H,W] as prediction makes it, boxes in input pixels, labels); slivers dropped."""
    tensor, transform = to_input(image, pre)
    scale = np.asarray([transform.scale_x, transform.scale_y, transform.scale_x, transform.scale_y])
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale
    keep = ((out[:, 2] - out[:, 0]) >= MIN_BOX_PIXELS) & ((out[:, 3] - out[:, 1]) >= MIN_BOX_PIXELS)
    return tensor, out[keep].astype(np.float32), np.asarray(labels, dtype=np.int64)[keep]
