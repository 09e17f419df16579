"""Input size and anchors chosen from the data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from trainer.detection.config import choose_anchors, choose_input_size
from trainer.detection.data import to_examples

from loupe.runner.examples import Example


def test_input_size_follows_the_images_and_keeps_small_objects_visible():
    landscape = [(816, 612)] * 10
    # objects 30% of the long side: the minimum side is enough, in the images' 4:3 aspect
    assert choose_input_size(landscape, [0.3] * 10, min_side=320, max_side=512) == (256, 320)
    # objects 8% of the long side need 32 / 0.08 = 400 px
    assert choose_input_size(landscape, [0.08] * 10, min_side=320, max_side=512) == (288, 384)
    # ... but never more than max_side, nor more than the images have
    assert choose_input_size(landscape, [0.01] * 10, min_side=320, max_side=512) == (384, 512)
    assert choose_input_size([(300, 200)] * 4, [0.01] * 4, min_side=160, max_side=512) == (192, 288)
    # mixed orientations: square
    assert choose_input_size([(640, 480), (480, 640)] * 3, [0.3], min_side=320, max_side=512) == (320, 320)
    assert choose_input_size([(480, 640)] * 5, [0.3], min_side=320, max_side=512) == (320, 256)


def test_anchors_shrink_for_small_objects_and_stretch_for_long_ones():
    big = np.asarray([[0, 0, 100, 100], [10, 10, 200, 150]] * 5, dtype=float)
    sizes, ratios = choose_anchors("fasterrcnn", big, 4)
    assert sizes[0] == (32.0, 45.3) and sizes[-1] == (256.0, 362.0) and ratios == (0.5, 1.0, 2.0)
    small = np.asarray([[0, 0, 12, 14]] * 5 + [[0, 0, 80, 80]] * 5, dtype=float)
    assert choose_anchors("fasterrcnn", small, 4)[0][0] == (16.0, 22.6)
    forks = np.asarray([[0, 0, 200, 40]] * 5, dtype=float)  # lying forks: height / width = 0.2
    assert choose_anchors("fasterrcnn", forks, 4)[1] == (0.25, 0.5, 1.0, 2.0)
    assert choose_anchors("retinanet", big, 5)[0][0] == (32.0, 40.3, 50.8)
    assert choose_anchors("fcos", big, 5) == (((8.0,), (16.0,), (32.0,), (64.0,), (128.0,)), (1.0,))


def test_boxes_become_corner_coordinates():
    image = Example("x.jpg", "images[0]", 200, 100, [1], [(1, 0.1, 0.2, 0.5, 0.3)])
    (example,) = to_examples([image], 2)
    assert example.boxes.tolist() == [[0.1, 0.2, 0.6, 0.5]] and example.labels.tolist() == [1]
    with pytest.raises(ValueError, match=r"hold-out image #0 \(images\[0\]\): boxes\[0\] category 1"):
        to_examples([image], 1, what="hold-out")


def test_the_cpu_iteration_cap_setting(monkeypatch):
    from trainer.detection.options import CPU_MAX_ITERATIONS_ENV, CPU_SCHEDULE, DetectorOptions

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv(CPU_MAX_ITERATIONS_ENV, raising=False)
    assert DetectorOptions().resolved(cpu).min_iterations == CPU_SCHEDULE.min_iterations
    monkeypatch.setenv(CPU_MAX_ITERATIONS_ENV, "40")
    capped = DetectorOptions().resolved(cpu)
    assert (capped.min_iterations, capped.max_iterations) == (40, 40)
    assert DetectorOptions(min_iterations=10).resolved(cpu).min_iterations == 10  # a lower ask stays
    # GPU runs ignore it
    assert DetectorOptions().resolved(gpu).max_iterations == DetectorOptions().max_iterations
    for bad in ("lots", "0"):
        monkeypatch.setenv(CPU_MAX_ITERATIONS_ENV, bad)
        with pytest.raises(ValueError, match=CPU_MAX_ITERATIONS_ENV):
            DetectorOptions().resolved(cpu)
