"""Starting points by name; COCO-pretrained detectors load from a local folder, never a download.

No COCO weights exist on this machine, so the folder path is tested with randomly initialised
weights of the same torchvision architecture: the plumbing is real even where weights can't be."""
from __future__ import annotations

import socket
from dataclasses import replace

import pytest
import torch
from trainer.context import LocalContext
from trainer.detection import export_detector, train_detector
from trainer.starting_points import (
    DETECTION_WEIGHTS_DIR_ENV,
    DetectorWeightsUnavailable,
    UnknownDetector,
    available_starting_points,
    load_pretrained_detector,
    starting_point,
)

from tests.trainer_detection.conftest import FAST, LABELS

NAME = "fasterrcnn_mobilenet_v3_large_fpn_coco"


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """A weights folder as the image build bakes it, holding random weights of the architecture."""
    folder = tmp_path_factory.mktemp("detection-weights")
    torch.manual_seed(0)
    torch.save(starting_point(NAME).build().state_dict(), folder / f"{NAME}.pth")
    return folder


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: weights must never be downloaded."""
    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_every_starting_point_is_listed():
    points = available_starting_points()
    assert "efficientnet_lite0" in points and NAME in points
    assert DETECTION_WEIGHTS_DIR_ENV in points[NAME]


def test_missing_weights_give_a_clear_error(monkeypatch, tmp_path, dataset):
    monkeypatch.delenv(DETECTION_WEIGHTS_DIR_ENV, raising=False)
    with pytest.raises(DetectorWeightsUnavailable, match=f"set {DETECTION_WEIGHTS_DIR_ENV} to the folder holding "
                                                         f"{NAME}.pth"):
        load_pretrained_detector(NAME)
    monkeypatch.setenv(DETECTION_WEIGHTS_DIR_ENV, str(tmp_path))
    with pytest.raises(DetectorWeightsUnavailable, match=f"{tmp_path / (NAME + '.pth')} not found"):
        train_detector(dataset, LABELS, context=LocalContext.with_budget(3600), starting_point=NAME, options=FAST)
    (tmp_path / f"{NAME}.pth").write_bytes(b"garbage")
    with pytest.raises(DetectorWeightsUnavailable, match="not a readable state dict"):
        load_pretrained_detector(NAME)
    torch.save({"backbone.body.0.weight": torch.zeros(1)}, tmp_path / f"{NAME}.pth")
    with pytest.raises(DetectorWeightsUnavailable, match="does not fit the architecture"):
        load_pretrained_detector(NAME)
    with pytest.raises(UnknownDetector, match="known: fasterrcnn_"):
        load_pretrained_detector("yolo")


def test_weights_are_loaded_from_the_folder(monkeypatch, weights_dir, no_network):
    monkeypatch.setenv(DETECTION_WEIGHTS_DIR_ENV, str(weights_dir))
    saved = torch.load(weights_dir / f"{NAME}.pth", weights_only=True)
    model = load_pretrained_detector(NAME)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items())


def test_a_detector_trains_and_exports_from_the_folder_weights(monkeypatch, weights_dir, no_network, dataset,
                                                               tmp_path):
    monkeypatch.setenv(DETECTION_WEIGHTS_DIR_ENV, str(weights_dir))
    saved = torch.load(weights_dir / f"{NAME}.pth", weights_only=True)
    result = train_detector(dataset, LABELS, context=LocalContext.with_budget(3600), starting_point=NAME,
                            options=replace(FAST, min_iterations=3, max_iterations=3))
    state = result.model.state_dict()
    body = [k for k in saved if k.startswith("backbone.body.") and saved[k].is_floating_point()]
    assert body and all(torch.equal(state[k], saved[k]) for k in body)  # the pretrained body is frozen
    assert state["roi_heads.box_predictor.cls_score.weight"].shape[0] == len(LABELS) + 1  # new categories
    assert result.preprocessing.backbone == NAME
    assert result.preprocessing.mean == (0.485, 0.456, 0.406)  # the normalisation torchvision's weights expect
    files = export_detector(result, tmp_path / "coco")
    assert (tmp_path / "coco" / "model.onnx") in files


def test_every_registered_detector_names_real_torchvision_weights():
    from trainer.detection.bake_weights import weights_of

    for name in available_starting_points("detector"):
        weights = weights_of(name)
        assert weights.url.startswith("https://download.pytorch.org/models/") and weights.url.endswith(".pth")
        assert len(weights.meta["categories"]) == 91  # COCO, as the architectures are built
    with pytest.raises(UnknownDetector):
        weights_of("nope")


def test_the_default_backbone_gives_way_to_baked_coco_weights(tmp_path, monkeypatch):
    from trainer.starting_points import DETECTION_WEIGHTS_DIR_ENV, preferred_starting_point

    monkeypatch.delenv(DETECTION_WEIGHTS_DIR_ENV, raising=False)
    assert preferred_starting_point("efficientnet_lite0", gpu=False) == "efficientnet_lite0"
    monkeypatch.setenv(DETECTION_WEIGHTS_DIR_ENV, str(tmp_path))
    assert preferred_starting_point("efficientnet_lite0", gpu=True) == "efficientnet_lite0"  # folder empty
    (tmp_path / "fasterrcnn_mobilenet_v3_large_fpn_coco.pth").write_bytes(b"")
    assert preferred_starting_point("efficientnet_lite0", gpu=True) == "fasterrcnn_mobilenet_v3_large_fpn_coco"
    (tmp_path / "fasterrcnn_resnet50_fpn_v2_coco.pth").write_bytes(b"")
    assert preferred_starting_point("efficientnet_lite0", gpu=True) == "fasterrcnn_resnet50_fpn_v2_coco"
    assert preferred_starting_point("efficientnet_lite0", gpu=False) == "fasterrcnn_mobilenet_v3_large_fpn_coco"
    assert preferred_starting_point("resnet50", gpu=True) == "resnet50"  # an explicit choice stands
