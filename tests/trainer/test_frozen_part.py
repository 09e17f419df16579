"""The frozen part as the trainer runs it on a CPU (docs/training.md#speed): an onnxruntime session
of its exported graph that computes what the torch modules compute, and the torch modules when the
exporter refuses the graph."""
from __future__ import annotations

import torch
from torch import nn
from trainer.classification.features import FrozenPart
from trainer.classification.model import ClassifierNet
from trainer.starting_points import load_backbone

CPU = torch.device("cpu")


def test_the_frozen_part_runs_in_onnxruntime_and_matches_torch():
    backbone = load_backbone("efficientnet_lite0")
    pre = backbone.preprocessing("multiclass")
    model = ClassifierNet(backbone.stages, backbone.tail_start, nn.Linear(backbone.feature_dim, 3),
                          multilabel=False).eval()
    frozen = FrozenPart(model, pre, CPU)
    assert frozen.session is not None
    images = torch.rand(3, 3, *pre.size) * 2 - 1
    with torch.no_grad():
        expected = model.frozen(images)
        got = frozen(images)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert float((got - expected).abs().max()) <= 1e-3 * max(1.0, float(expected.abs().max()))
    assert frozen(images[:0]).shape[0] == 0  # an empty batch never reaches onnxruntime
    # a batch of another size goes through the same session (the batch axis is dynamic)
    with torch.no_grad():
        assert torch.allclose(frozen(images[:1]), expected[:1], atol=1e-3 * max(1.0, float(expected.abs().max())))


class _Bessel(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.bessel_j0(x)  # no ONNX operator: the exporter refuses it


def test_a_graph_the_exporter_refuses_runs_in_torch(caplog):
    stages = nn.ModuleList([nn.Conv2d(3, 4, 3, padding=1), _Bessel(), nn.Conv2d(4, 4, 1)])
    model = ClassifierNet(stages, 2, nn.Linear(4, 2), multilabel=False).eval()
    pre = load_backbone("efficientnet_lite0").preprocessing("multiclass")
    with caplog.at_level("WARNING"):
        frozen = FrozenPart(model, pre, CPU)
    assert frozen.session is None
    assert "the frozen part runs in torch" in caplog.text
    images = torch.rand(2, 3, *pre.size)
    with torch.no_grad():
        assert torch.equal(frozen(images), model.frozen(images))
