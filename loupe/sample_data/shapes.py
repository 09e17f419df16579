"""The object kinds the sample datasets draw, as filled outlines in a unit frame.

Each kind is a list of (polygon, fill) rings in coordinates where the object fits the unit
circle: fill 255 adds area, fill 0 cuts a hole (the ring's centre). Random per-instance
parameters (star points' depth, ring thickness, arrow proportions) keep instances of a kind
varied so a model has to learn the kind's shape, not one template.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

Outline = list[tuple[np.ndarray, int]]  # [(points [N,2] in the unit frame, fill)]


def _circle(n: int, radius: float = 1.0) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], axis=1) * radius


def star(rng: np.random.Generator) -> Outline:
    points = 5
    inner = rng.uniform(0.38, 0.5)
    t = np.arange(2 * points) * np.pi / points - np.pi / 2
    radius = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return [(np.stack([np.cos(t) * radius, np.sin(t) * radius], axis=1), 255)]


def heart(rng: np.random.Generator) -> Outline:
    t = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y + 2.5], axis=1) / 17.0
    pts[:, 0] *= rng.uniform(0.9, 1.1)
    return [(pts, 255)]


def ring(rng: np.random.Generator) -> Outline:
    inner = rng.uniform(0.5, 0.68)
    return [(_circle(64), 255), (_circle(64, inner), 0)]


def arrow(rng: np.random.Generator) -> Outline:
    shaft = rng.uniform(0.18, 0.26)  # half-thickness of the shaft
    head = rng.uniform(0.5, 0.65)  # half-width of the head
    neck = rng.uniform(0.0, 0.25)  # where the head starts (x)
    pts = np.array([[-1.0, -shaft], [neck, -shaft], [neck, -head], [1.0, 0.0],
                    [neck, head], [neck, shaft], [-1.0, shaft]])
    return [(pts, 255)]


def crescent(rng: np.random.Generator) -> Outline:
    t = np.linspace(-0.5 * np.pi, 0.5 * np.pi, 40)
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)
    bulge = rng.uniform(0.2, 0.5)
    inner = np.stack([np.cos(t[::-1]) * bulge, np.sin(t[::-1])], axis=1)
    pts = np.concatenate([outer, inner]) - [0.3, 0.0]
    return [(pts, 255)]


KINDS: dict[str, Callable[[np.random.Generator], Outline]] = {
    "star": star,
    "heart": heart,
    "ring": ring,
    "arrow": arrow,
    "crescent": crescent,
}


def distractor(rng: np.random.Generator) -> Outline:
    """A small unlabelled object (rectangle, triangle or blob) for clutter: not one of KINDS."""
    choice = rng.integers(3)
    if choice == 0:
        a = rng.uniform(0.4, 1.0)
        pts = np.array([[-1.0, -a], [1.0, -a], [1.0, a], [-1.0, a]])
    elif choice == 1:
        pts = _circle(3)
    else:
        pts = _circle(24) * rng.uniform(0.6, 1.0, size=(24, 1))
    return [(pts, 255)]


def place(outline: Outline, cx: float, cy: float, radius: float, angle: float, aspect: float) -> Outline:
    """The outline scaled to `radius`, squashed by `aspect` along y, rotated by `angle` (radians)
    and moved to (cx, cy), in pixel coordinates."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    # Parametric shapes can poke out of the unit circle: shrink them in, so an object never
    # leaves the circle it was placed in (no overlaps, no cut-offs at the image edge).
    reach = max(float(np.linalg.norm(pts, axis=1).max()) for pts, _ in outline)
    scale = radius / max(reach, 1.0)
    out = []
    for pts, fill in outline:
        p = pts * [scale, scale * aspect]
        out.append((p @ rot.T + [cx, cy], fill))
    return out
