from __future__ import annotations

import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet
from trainer.starting_points import (
    WEIGHTS_DIR_ENV,
    BackboneUnavailable,
    UnknownBackbone,
    available_backbones,
    load_backbone,
)


def test_default_backbone_loads_offline_and_maps_images_to_features():
    backbone = load_backbone("efficientnet_lite0")
    assert backbone.input_size == (224, 224) and backbone.feature_dim == 1280
    x = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        for stage in backbone.stages:
            x = stage(x)
    assert tuple(x.shape) == (1, 1280, 7, 7)
    pre = backbone.preprocessing("multiclass")
    assert pre.size == (224, 224) and pre.mean == (0.5, 0.5, 0.5) and pre.backbone == "efficientnet_lite0"


def test_unknown_backbone_names_the_known_ones():
    with pytest.raises(UnknownBackbone, match="unknown backbone 'vit_huge'.*efficientnet_lite0"):
        load_backbone("vit_huge")
    assert "efficientnet_lite0" in available_backbones()


def test_baked_in_weights_load_from_the_weights_folder(tmp_path, monkeypatch):
    # the plumbing for weights baked into the image at build time, with random weights of the
    # same architecture (no pretrained EfficientNet-Lite1 ships in any package)
    reference = EfficientNet.from_name("efficientnet-lite1")
    torch.save(reference.state_dict(), tmp_path / "efficientnet_lite1.pth")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    backbone = load_backbone("efficientnet_lite1")
    assert backbone.input_size == (240, 240)
    assert torch.equal(backbone.stages[0][0].weight, reference._conv_stem.weight)


def test_missing_baked_in_weights_say_where_they_were_expected(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    with pytest.raises(BackboneUnavailable, match=WEIGHTS_DIR_ENV):
        load_backbone("resnet50")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    with pytest.raises(BackboneUnavailable, match="resnet50.pth not found"):
        load_backbone("resnet50")
