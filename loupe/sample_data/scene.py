"""Renders one sample scene: a cluttered background, unlabelled distractors and the labelled
objects (shaded, sometimes outlined, patterned or casting a shadow), then global lighting,
white balance, sensor noise and defocus. Boxes come from the pixels each object covers."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from loupe.sample_data.backgrounds import background, clutter, random_colour
from loupe.sample_data.shapes import KINDS, Outline, distractor, place

SUPERSAMPLE = 4  # masks are drawn this many times larger, then averaged down: smooth edges


@dataclass(frozen=True)
class PlacedObject:
    kind: str
    # pixel box [left, top, right, bottom) of every pixel the object covers at all
    box: tuple[int, int, int, int]
    mask: np.ndarray  # bool [H, W]: pixels the object covers (before lighting and defocus)


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # uint8 [H, W, 3]
    objects: tuple[PlacedObject, ...]


def _coverage(outline: Outline, w: int, h: int) -> np.ndarray:
    """Fraction (0..1) of each pixel the outline covers."""
    big = Image.new("L", (w * SUPERSAMPLE, h * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(big)
    for pts, fill in outline:
        draw.polygon([(float(x), float(y)) for x, y in pts * SUPERSAMPLE], fill=fill)
    return np.asarray(big.reduce(SUPERSAMPLE), dtype=np.float32) / 255.0


def _edge(outline: Outline, w: int, h: int, width: int) -> np.ndarray:
    big = Image.new("L", (w * SUPERSAMPLE, h * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(big)
    for pts, _ in outline:
        draw.polygon([(float(x), float(y)) for x, y in pts * SUPERSAMPLE], outline=255,
                     width=width * SUPERSAMPLE)
    return np.asarray(big.reduce(SUPERSAMPLE), dtype=np.float32) / 255.0


def _luma(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))


def _contrasting_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """An object colour that stands out from the mean colour beneath it (a fair demo: objects
    are visible), still random in hue so colour alone does not tell the kind."""
    colour = random_colour(rng, sat=(0.3, 1.0), val=(0.15, 1.0))
    for _ in range(30):
        dy = abs(_luma(colour) - _luma(under))
        if dy > 45 or (dy > 20 and float(np.linalg.norm(colour - under)) > 130):
            break
        colour = random_colour(rng, sat=(0.3, 1.0), val=(0.15, 1.0))
    return colour


def _paint(rng: np.random.Generator, img: np.ndarray, outline: Outline, cx: float, cy: float,
           r: float, light: np.ndarray) -> np.ndarray:
    """Draws one object onto img in place; returns its coverage (0..1, [H, W]).

    Only a window around the object's circle (plus room for its shadow) is touched: the
    object never leaves its circle, and full-frame arithmetic per object is the slow part."""
    h, w = img.shape[:2]
    pad = r * 0.5 + 4
    x0, y0 = max(0, int(cx - r - pad)), max(0, int(cy - r - pad))
    x1, y1 = min(w, int(np.ceil(cx + r + pad))), min(h, int(np.ceil(cy + r + pad)))
    local = [(pts - [x0, y0], fill) for pts, fill in outline]
    cw, ch = x1 - x0, y1 - y0
    view = img[y0:y1, x0:x1]
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    cover = _coverage(local, cw, ch)
    if rng.uniform() < 0.6:  # soft shadow away from the light
        dx, dy = -light * r * rng.uniform(0.05, 0.15)
        shifted = Image.fromarray((cover * 255).astype(np.uint8)).transform(
            (cw, ch), Image.AFFINE, (1, 0, -dx, 0, 1, -dy))
        shadow = np.asarray(shifted.filter(ImageFilter.GaussianBlur(r * 0.08)), np.float32) / 255.0
        view *= (1.0 - rng.uniform(0.2, 0.5) * shadow)[..., None]
    inside = cover > 0.5
    under = view[inside].mean(axis=0) if inside.any() else view.reshape(-1, 3).mean(axis=0)
    colour = _contrasting_colour(rng, under)
    proj = ((xs - cx) * light[0] + (ys - cy) * light[1]) / r  # -1..1 across the object
    shade = 1.0 + rng.uniform(0.1, 0.35) * proj
    if rng.uniform() < 0.3:  # a specular highlight toward the light
        hx, hy = cx + light[0] * r * 0.4, cy + light[1] * r * 0.4
        shade += rng.uniform(0.2, 0.5) * np.exp(-((xs - hx) ** 2 + (ys - hy) ** 2) / (2 * (0.25 * r) ** 2))
    if rng.uniform() < 0.25:  # printed stripes
        angle, period = rng.uniform(0, np.pi), r * rng.uniform(0.15, 0.4)
        stripes = np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period) > 0
        shade *= 1.0 - rng.uniform(0.15, 0.35) * stripes
    paint = colour[None, None, :] * shade[..., None]
    if rng.uniform() < 0.4:  # a darker rim
        rim = _edge(local, cw, ch, int(rng.integers(1, 4))) * cover
        paint = paint * (1.0 - rim[..., None] * rng.uniform(0.4, 0.7))
    view *= 1.0 - cover[..., None]
    view += paint * cover[..., None]
    full = np.zeros((h, w), dtype=np.float32)
    full[y0:y1, x0:x1] = cover
    return full


def _place(rng: np.random.Generator, n: int, w: int, h: int, radius_range: tuple[float, float]
           ) -> list[tuple[float, float, float]]:
    """Up to n non-overlapping circles (cx, cy, r) inside the image."""
    placed: list[tuple[float, float, float]] = []
    side = min(w, h)
    for _ in range(n):
        lo, hi = radius_range
        for attempt in range(200):
            scale = 0.97 ** (attempt // 20)  # shrink when the image is crowded
            r = rng.uniform(lo, hi) * side * scale
            cx, cy = rng.uniform(r + 2, w - r - 2), rng.uniform(r + 2, h - r - 2)
            if all(np.hypot(cx - x, cy - y) > r + q + 1 for x, y, q in placed):
                placed.append((cx, cy, r))
                break
    return placed


def render(rng: np.random.Generator, width: int, height: int, kinds: Sequence[str], *,
           radius: tuple[float, float], strokes: int, distractors: int, rotation: float = 180.0) -> Scene:
    """A scene with one object per entry of `kinds` (radii as fractions of the shorter side),
    each tilted up to `rotation` degrees from upright (photographed objects mostly stand upright).
    Raises ValueError when the objects cannot all be placed without overlapping."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown object kinds {unknown}; known: {sorted(KINDS)}")
    w, h = width, height
    img = clutter(rng, background(rng, h, w), strokes)
    angle = rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)

    for cx, cy, r in _place(rng, distractors, w, h, (0.03, 0.07)):
        outline = place(distractor(rng), cx, cy, r, rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.0))
        _paint(rng, img, outline, cx, cy, r, light)

    spots = _place(rng, len(kinds), w, h, radius)
    if len(spots) < len(kinds):
        raise ValueError(f"could not place {len(kinds)} objects of radius {radius} in {w}x{h}")
    objects = []
    covers = []
    for kind, (cx, cy, r) in zip(kinds, spots):
        tilt = np.deg2rad(rng.uniform(-rotation, rotation))
        outline = place(KINDS[kind](rng), cx, cy, r, tilt, rng.uniform(0.8, 1.0))
        covers.append((kind, _paint(rng, img, outline, cx, cy, r, light)))
    for kind, cover in covers:
        mask = cover > 0
        ys, xs = np.nonzero(mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        objects.append(PlacedObject(kind=kind, box=box, mask=mask))

    # Lighting across the frame, white balance, sensor noise, sometimes defocus.
    ys = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
    xs = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
    tilt = rng.uniform(-0.5, 0.5, size=2).astype(np.float32)
    light_field = np.float32(rng.uniform(0.65, 1.15)) * (1.0 + tilt[0] * xs + tilt[1] * ys)
    light_field *= 1.0 - np.float32(rng.uniform(0.0, 0.5)) * (xs**2 + ys**2)
    img *= light_field[..., None] * rng.uniform(0.88, 1.12, size=3).astype(np.float32)
    img += rng.standard_normal(size=img.shape, dtype=np.float32) * np.float32(rng.uniform(1.0, 6.0))
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if rng.uniform() < 0.3:
        out = out.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    return Scene(image=np.asarray(out), objects=tuple(objects))
