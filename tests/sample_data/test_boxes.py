"""Boxes match what was drawn: every pixel an object covers lies inside its box, the box is
tight, objects do not overlap, and the written COCO box is the rendered one."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from loupe.sample_data import detection
from loupe.sample_data.datasets import detection_scenes


def test_masks_fill_their_boxes_exactly_and_never_overlap():
    for split in ("train", "test"):
        for scene, _ in detection_scenes(split, seed=3):
            h, w = scene.image.shape[:2]
            taken = np.zeros((h, w), dtype=bool)
            for obj in scene.objects:
                left, top, right, bottom = obj.box
                assert 0 <= left < right <= w and 0 <= top < bottom <= h
                inside = np.zeros_like(obj.mask)
                inside[top:bottom, left:right] = True
                assert not (obj.mask & ~inside).any(), "object pixels outside its box"
                # tight: the mask touches each side of the box
                assert obj.mask[top].any() and obj.mask[bottom - 1].any()
                assert obj.mask[:, left].any() and obj.mask[:, right - 1].any()
                assert not (taken & obj.mask).any(), "objects overlap"
                taken |= obj.mask


def test_written_boxes_are_the_rendered_ones():
    ds = detection("train", seed=3)
    scenes = detection_scenes("train", seed=3)
    for record, (scene, _) in zip(ds.coco["images"], scenes):
        w, h = record["width"], record["height"]
        boxes = [a["bbox"] for a in ds.coco["annotations"] if a["image_id"] == record["id"]]
        assert len(boxes) == len(scene.objects)
        for (left, top, bw, bh), obj in zip(boxes, scene.objects):
            got = np.array([left * w, top * h, (left + bw) * w, (top + bh) * h])
            np.testing.assert_allclose(got, obj.box, atol=0.01)


def test_the_objects_stand_out_in_the_jpeg():
    """In the written image, each object's pixels differ from the ring of pixels around it,
    so a box marks something visible (not an object painted in the background's colour)."""
    ds = detection("test", seed=0)
    for record, (scene, _) in zip(ds.coco["images"], detection_scenes("test", seed=0)):
        pixels = np.asarray(Image.open(io.BytesIO(ds.images[record["file_name"]])), np.float32)
        for obj in scene.objects:
            core = obj.mask.copy()
            ring = np.zeros_like(core)
            left, top, right, bottom = obj.box
            ring[max(top - 6, 0):bottom + 6, max(left - 6, 0):right + 6] = True
            ring &= ~obj.mask
            for other in scene.objects:
                ring &= ~other.mask
            inner = pixels[core].mean(axis=0)
            outer = pixels[ring].mean(axis=0)
            assert np.abs(inner - outer).max() > 12, (record["file_name"], obj.kind, inner, outer)
