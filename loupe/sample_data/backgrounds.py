"""Backgrounds for the sample scenes: gradients, cloudy noise, tabletop scenes, textures, plus
clutter strokes. All are float32 arrays [H, W, 3] in 0..255, drawn from a numpy Generator, so a
scene is a pure function of its seed."""
from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def random_colour(rng: np.random.Generator, sat: tuple[float, float] = (0.1, 0.9),
                  val: tuple[float, float] = (0.2, 0.95)) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*sat), rng.uniform(*val))
    return np.array([r, g, b], dtype=np.float32) * 255.0


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return ys / max(h - 1, 1), xs / max(w - 1, 1)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, channels: int) -> np.ndarray:
    """Low-frequency noise in 0..1: a coarse random grid upsampled bicubically."""
    coarse = rng.uniform(0.0, 1.0, size=(cells, cells, channels)).astype(np.float32)
    planes = [
        np.asarray(Image.fromarray(np.ascontiguousarray(coarse[..., c])).resize((w, h), Image.BICUBIC))
        for c in range(channels)
    ]
    return np.clip(np.stack(planes, axis=-1), 0.0, 1.0)


def gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = random_colour(rng), random_colour(rng)
    ys, xs = _grid(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * xs + np.sin(angle) * ys
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return a + (b - a) * t[..., None]


def cloudy(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = random_colour(rng), random_colour(rng)
    t = _smooth_noise(rng, h, w, int(rng.integers(3, 8)), 1)
    return a + (b - a) * t


def tabletop(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A wall above a table: two surfaces with a soft, slightly tilted edge between them."""
    wall, table = random_colour(rng), random_colour(rng)
    ys, xs = _grid(h, w)
    edge = rng.uniform(0.15, 0.55) + rng.uniform(-0.15, 0.15) * (xs - 0.5)
    t = 1.0 / (1.0 + np.exp(np.clip(-(ys - edge) * rng.uniform(40, 200), -50, 50)))
    shade = 1.0 - 0.25 * ys * rng.uniform(-1, 1)  # light falls off across the table
    return (wall + (table - wall) * t[..., None]) * shade[..., None]


def woodgrain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Stripes bent by smooth noise: wood, fabric or brushed metal at a glance."""
    a = random_colour(rng, sat=(0.2, 0.7))
    b = a * rng.uniform(0.75, 0.92)
    ys, xs = _grid(h, w)
    warp = _smooth_noise(rng, h, w, 4, 1)[..., 0]
    angle = rng.uniform(0, np.pi)
    u = np.cos(angle) * xs + np.sin(angle) * ys
    t = 0.5 + 0.5 * np.sin((u * rng.uniform(10, 40) + warp * rng.uniform(2, 8)) * np.pi)
    return a + (b - a) * t[..., None]


def tiles(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a = random_colour(rng)
    b = a * rng.uniform(0.8, 0.95) + rng.uniform(-12, 12, size=3)
    ys, xs = np.mgrid[0:h, 0:w]
    size = int(rng.integers(20, 60))
    check = ((ys // size + xs // size) % 2).astype(np.float32)
    grout = ((ys % size < 2) | (xs % size < 2)).astype(np.float32)
    base = a + (b - a) * check[..., None]
    return base * (1.0 - 0.2 * grout[..., None])


BACKGROUNDS = (gradient, cloudy, tabletop, woodgrain, tiles)


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random background with fine grain (paper/sensor texture) on top."""
    fn = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    img = fn(rng, h, w).astype(np.float32)
    grain = _smooth_noise(rng, h, w, max(h, w) // 6, 1) - 0.5
    img += grain * rng.uniform(5, 30)
    return np.clip(img, 0, 255)


def clutter(rng: np.random.Generator, img: np.ndarray, strokes: int) -> np.ndarray:
    """Random lines, arcs, scribbles and blurred blobs drawn semi-transparently over `img`."""
    h, w = img.shape[:2]
    base = Image.fromarray(img.astype(np.uint8)).convert("RGBA")
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(strokes):
        colour = tuple(int(c) for c in random_colour(rng)) + (int(rng.integers(90, 230)),)
        width = int(rng.integers(1, 5))
        x0, y0 = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        kind = rng.integers(4)
        if kind == 0:
            length, angle = rng.uniform(0.1, 0.7) * max(w, h), rng.uniform(0, 2 * np.pi)
            draw.line([(x0, y0), (x0 + length * np.cos(angle), y0 + length * np.sin(angle))],
                      fill=colour, width=width)
        elif kind == 1:
            r = rng.uniform(0.05, 0.4) * max(w, h)
            start = rng.uniform(0, 360)
            draw.arc([x0 - r, y0 - r, x0 + r, y0 + r], start, start + rng.uniform(30, 160),
                     fill=colour, width=width)
        elif kind == 2:
            steps = rng.normal(0, 0.04 * max(w, h), size=(int(rng.integers(4, 10)), 2)).cumsum(axis=0)
            draw.line([(x0 + dx, y0 + dy) for dx, dy in steps], fill=colour, width=width, joint="curve")
        else:
            r = rng.uniform(0.02, 0.12) * max(w, h)
            draw.ellipse([x0 - r, y0 - r * rng.uniform(0.5, 1), x0 + r, y0 + r], fill=colour)
    layer = layer.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 1.2))))
    return np.asarray(Image.alpha_composite(base, layer).convert("RGB"), dtype=np.float32)
