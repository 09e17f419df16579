"""The static-shape detector graph (trainer.detection.static_graph): its NMS and RoIAlign equal
torchvision's, and for every architecture the graph computes the torch model's detections."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from trainer.detection.config import DetectorConfig
from trainer.detection.export import DetectionGraph, _unmatched
from trainer.detection.model import build_detector, build_on_backbone, set_score_threshold
from trainer.detection.static_graph import StaticGraphUnsupported, roi_align, static_detector, static_nms
from trainer.starting_points import load_backbone


def _clustered_boxes(generator: torch.Generator, n: int) -> torch.Tensor:
    """Boxes jittered around a few centres: dense overlaps, long suppression chains."""
    centres = torch.rand(8, 2, generator=generator) * 200
    which = torch.randint(0, 8, (n,), generator=generator)
    xy = centres[which] + torch.randn(n, 2, generator=generator) * 6
    wh = 20 + torch.rand(n, 2, generator=generator) * 40
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("seed", range(6))
def test_static_nms_equals_torchvision_batched_nms(seed):
    generator = torch.Generator().manual_seed(seed)
    n = 400
    boxes, scores = _clustered_boxes(generator, n), torch.rand(n, generator=generator)
    classes = torch.randint(0, 3, (n,), generator=generator)
    expected = torchvision.ops.batched_nms(boxes, scores, classes, 0.5)
    order = torch.argsort(scores, descending=True)
    valid = torch.ones(n)
    valid[torch.rand(n, generator=generator) < 0.1] = 0  # below the threshold: no say either way
    keep = static_nms(boxes[order], classes[order], valid[order], 0.5)
    mask = valid.bool()
    expected = torchvision.ops.batched_nms(boxes[mask], scores[mask], classes[mask], 0.5)
    assert sorted(torch.flatten(torch.nonzero(mask))[expected].tolist()) == sorted(order[keep > 0].tolist())
    assert len(expected) < mask.sum()  # something was suppressed


def test_roi_align_equals_torchvision_on_each_level():
    generator = torch.Generator().manual_seed(0)
    channels = 5
    feats = [torch.randn(1, channels, 32, 24, generator=generator), torch.randn(1, channels, 16, 12, generator=generator)]
    flat = torch.cat([f.permute(0, 2, 3, 1).reshape(-1, channels) for f in feats])
    xy = torch.rand(60, 2, generator=generator) * 260 - 30  # some beyond the map's edges
    boxes = torch.cat([xy, xy + 0.5 + torch.rand(60, 2, generator=generator) * 120], dim=1)
    level = torch.randint(0, 2, (60,), generator=generator)
    scales = torch.tensor([1 / 8, 1 / 16])
    got = roi_align(flat, boxes, level, scales, torch.tensor([32, 16]), torch.tensor([24, 12]),
                    torch.tensor([0, 32 * 24]), 7, 2).reshape(60, 49, channels).permute(0, 2, 1).reshape(60, -1, 7, 7)
    expected = torch.stack([torchvision.ops.roi_align(feats[lv], [boxes[i:i + 1]], 7, float(scales[lv]), 2)[0]
                            for i, lv in enumerate(level.tolist())])
    assert (got - expected).abs().max() < 1e-4


@pytest.mark.parametrize("architecture", ["fasterrcnn", "retinanet", "fcos"])
def test_the_static_graph_computes_the_torch_models_detections(architecture):
    """Untrained heads (scores near their prior, thresholds lowered so that hundreds of boxes
    reach the NMS) on a 128 px input."""
    torch.manual_seed(0)
    levels = 4 if architecture == "fasterrcnn" else 5
    anchors = tuple((float(8 * 2 ** i),) for i in range(levels)) if architecture == "fcos" else \
        tuple((32.0 * 2 ** i,) for i in range(levels))
    config = DetectorConfig(backbone="efficientnet_lite0", architecture=architecture, num_classes=3,
                            input_size=(128, 128), anchor_sizes=anchors,
                            aspect_ratios=(1.0,) if architecture == "fcos" else (0.5, 1.0, 2.0))
    model = build_on_backbone(load_backbone(config.backbone), config).eval()
    threshold = 0.2
    set_score_threshold(model, threshold)
    if architecture != "fasterrcnn":  # their prior (0.01) would leave no box above any threshold
        torch.nn.init.zeros_(model.head.classification_head.cls_logits.bias)
    static, graph = static_detector(model, (128, 128)), DetectionGraph(model).eval()
    confident = 0
    for seed in range(3):
        image = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            expected = [t.numpy() for t in graph(image)]
            got = [t.numpy() for t in static(image)]
        assert got[0].shape == (100, 4) and got[2].dtype == np.int64
        for mine, theirs in ((expected, got), (got, expected)):
            count, missing = _unmatched(mine, theirs, threshold)
            confident += count
            assert not missing, missing[:3]
    assert confident > 0


def test_another_architecture_is_refused():
    with pytest.raises(StaticGraphUnsupported, match="no static-shape form"):
        static_detector(torch.nn.Linear(2, 2), (64, 64))


@pytest.mark.parametrize("name", ["fasterrcnn_mobilenet_v3_large_fpn_coco", "fasterrcnn_resnet50_fpn_v2_coco"])
def test_the_coco_pretrained_architectures_have_a_static_graph(name):
    """The COCO detectors a trainer image may bake in (the default starting point where present):
    random weights here, the architecture is what counts."""
    torch.manual_seed(0)
    config = DetectorConfig(backbone=name, architecture="fasterrcnn", num_classes=2, input_size=(128, 128))
    model = build_detector(config, pretrained=False).eval()
    set_score_threshold(model, 0.2)
    static, graph = static_detector(model, (128, 128)), DetectionGraph(model).eval()
    image = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = [t.numpy() for t in graph(image)], [t.numpy() for t in static(image)]
    for mine, theirs in ((expected, got), (got, expected)):
        count, missing = _unmatched(mine, theirs, 0.2)
        assert count > 0 and not missing, missing[:3]
