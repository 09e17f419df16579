"""Build every package of a trained classifier and detector, unzip it, run it the way
Azure-Samples/customvision-export-samples does (tests/packages/consumer.py) and compare with
Loupe's own predictor on the sample test images. Figures print with -s (docs/exports.md)."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import onnx
import pytest
from PIL import Image
from trainer.packages import PackageError, build_package

from loupe import sample_data
from loupe.inference import load_predictor_from_folder
from tests.packages.conftest import sample_images
from tests.packages.consumer import OnnxConsumer, OpenVinoConsumer, unzip

FP16_TOLERANCE = 2e-2  # largest |probability difference| of a float16 package (measured 0.006-0.008)
KINDS = [("ONNX", None), ("ONNX", "ONNXFloat16"), ("OpenVino", None)]


def _consumer(folder, platform):
    return OpenVinoConsumer(folder) if platform == "OpenVino" else OnnxConsumer(folder)


def _build(model_folder, tmp_path, platform, flavor):
    info = build_package(model_folder, tmp_path / f"{platform}-{flavor}.zip", platform, flavor)
    return info, unzip(info.path, tmp_path / f"{platform}-{flavor}")


@pytest.mark.parametrize(("platform", "flavor"), KINDS)
def test_classifier_package_agrees_with_loupe(classifier_folder, tmp_path, platform, flavor):
    info, folder = _build(classifier_folder, tmp_path, platform, flavor)
    images = sample_images(sample_data.classification("test"))
    reference = load_predictor_from_folder(classifier_folder).class_scores(images).astype(np.float64)
    consumer = _consumer(folder, platform)
    sample = np.concatenate([consumer.predict(im)["model_output"] for im in images]).astype(np.float64)
    same_pixels = np.concatenate([consumer.predict(im, Image.BILINEAR)["model_output"] for im in images])
    agree = int((sample.argmax(1) == reference.argmax(1)).sum())
    exact = int((same_pixels.argmax(1) == reference.argmax(1)).sum())
    print(f"\nclassifier {platform}/{flavor}: top tag {agree}/{len(images)} sample resize, {exact}/{len(images)} "
          f"Loupe's; max |diff| sample resize {np.abs(sample - reference).max():.4f}, "
          f"Loupe's resize {np.abs(same_pixels - reference).max():.5f}")
    # the same pixels give the same top tag; the samples' resize (PIL's default filter, not Loupe's
    # bilinear) feeds other pixels, which may flip one image that lies near a decision boundary
    assert exact == len(images)
    assert agree >= len(images) - 1
    # fp16 keeps ~3 significant digits per layer; the calibration temperature folded into the head
    # (T < 1 sharpens) scales the logit error before the softmax, so a probability moves by up to ~1e-2
    assert np.abs(same_pixels - reference).max() < (FP16_TOLERANCE if flavor else 1e-4)
    assert (folder / "labels.txt").read_text().splitlines() == info.labels == list(sample_data.CLASSIFICATION_KINDS)
    assert list(consumer.input_shape) == [224, 224]


def _matched(reference, outputs, size) -> tuple[int, int, float]:
    """Loupe boxes above 0.5 matched by an exported box of its class with IoU >= 0.9."""
    width, height = size
    boxes = outputs["detected_boxes"][0].astype(np.float64) * [width, height, width, height]
    matched = total = 0
    worst = 1.0
    for box, score, label in zip(reference.boxes, reference.scores, reference.labels, strict=True):
        if score <= 0.5:
            continue
        box = np.clip(box, 0, [width, height, width, height])
        same = boxes[outputs["detected_classes"][0] == label]
        inter = np.prod(np.clip(np.minimum(box[2:], same[:, 2:]) - np.maximum(box[:2], same[:, :2]), 0, None), 1)
        union = np.prod(box[2:] - box[:2]) + np.prod(same[:, 2:] - same[:, :2], 1) - inter
        best = float((inter / union).max()) if len(same) else 0.0
        total, matched, worst = total + 1, matched + (best >= 0.9), min(worst, best)
    return matched, total, worst


@pytest.mark.parametrize(("platform", "flavor"), KINDS)
def test_detector_package_agrees_with_loupe(detector_folder, stretch_detector_folder, tmp_path, platform, flavor):
    images = sample_images(sample_data.detection("test"))
    figures = {}
    for name, model in (("letterbox", detector_folder), ("stretch", stretch_detector_folder)):
        info, folder = _build(model, tmp_path / name, platform, flavor)
        predictor, consumer = load_predictor_from_folder(model), _consumer(folder, platform)
        for resample in (None, Image.BILINEAR):
            counts = [_matched(predictor.detections(im), consumer.predict(im, resample), im.size) for im in images]
            figures[name, resample] = (sum(c[0] for c in counts), sum(c[1] for c in counts))
        outputs = consumer.predict(images[0])
        assert set(outputs) == {"detected_boxes", "detected_classes", "detected_scores"}
        assert outputs["detected_boxes"].shape[0] == 1 and outputs["detected_boxes"].shape[2] == 4
        assert np.all((outputs["detected_boxes"] >= 0) & (outputs["detected_boxes"] <= 1))
        assert (folder / "labels.txt").read_text().splitlines() == info.labels == list(sample_data.DETECTION_KINDS)
    print(f"\ndetector {platform}/{flavor}: boxes > 0.5 matched (IoU >= 0.9, same class): {figures}")
    # the package's own input handling is exact: same pixels in, the same boxes out
    matched, total = figures["stretch", Image.BILINEAR]
    assert total > 0 and matched == total


@pytest.mark.parametrize(("platform", "flavor"), [("ONNX", None), ("ONNX", "onnxfloat16")])
def test_onnx_package_contract(classifier_folder, tmp_path, platform, flavor):
    info, folder = _build(classifier_folder, tmp_path, platform, flavor)
    with zipfile.ZipFile(info.path) as archive:
        assert sorted(archive.namelist()) == ["cvexport.manifest", "labels.txt", "metadata_properties.json",
                                              "model.onnx"]
    model = onnx.load(str(folder / "model.onnx"))
    (inp,) = model.graph.input
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, 224, 224]
    float16 = inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert float16 == (flavor is not None)
    meta = {m.key: m.value for m in model.metadata_props}
    assert meta["Image.BitmapPixelFormat"] == "Bgr8" and meta["Image.NominalPixelRange"] == "NominalRange_0_255"
    assert json.loads((folder / "metadata_properties.json").read_text()) == meta
    manifest = json.loads((folder / "cvexport.manifest").read_text())
    assert manifest["Platform"] == "ONNX" and manifest["Flavor"] == info.flavor
    assert manifest["DomainType"] == "Classification" and manifest["ModelFileName"] == "model.onnx"
    assert [o.name for o in model.graph.output] == ["model_output"]
    # the original graph's ops are all still there
    original = onnx.load(str(classifier_folder / "model.onnx"))
    assert {n.op_type for n in original.graph.node} <= {n.op_type for n in model.graph.node}


@pytest.mark.parametrize(("flavor", "opset", "ir"), [("ONNX10", 10, 5), ("onnx12", 12, 7)])
def test_opset_flavors_run_in_onnxruntime_and_agree(classifier_folder, tmp_path, flavor, opset, ir):
    """Custom Vision's ONNX10/ONNX12: the package graph at that opset (and its release's IR
    version), the same scores as the plain package on the same pixels."""
    _, plain = _build(classifier_folder, tmp_path / "plain", "ONNX", None)
    info, folder = _build(classifier_folder, tmp_path, "ONNX", flavor)
    model = onnx.load(str(folder / "model.onnx"))
    assert [(o.domain, o.version) for o in model.opset_import] == [("", opset)] and model.ir_version == ir
    assert json.loads((folder / "cvexport.manifest").read_text())["Flavor"] == info.flavor == flavor.upper()
    images = sample_images(sample_data.classification("test"))[:8]
    reference, consumer = OnnxConsumer(plain), OnnxConsumer(folder)
    for image in images:
        expected, got = (c.predict(image)["model_output"] for c in (reference, consumer))
        assert np.abs(got - expected).max() < 1e-5


def test_a_detector_at_opset_10_is_refused_with_the_missing_operators(detector_folder, tmp_path):
    with pytest.raises(PackageError, match="do not exist at opset 10") as excinfo:
        build_package(detector_folder, tmp_path / "out.zip", "ONNX", "ONNX10")
    assert "Range" in excinfo.value.message


def test_a_detector_at_opset_12_agrees(stretch_detector_folder, tmp_path):
    _, plain = _build(stretch_detector_folder, tmp_path / "plain", "ONNX", None)
    _, folder = _build(stretch_detector_folder, tmp_path, "ONNX", "ONNX12")
    reference, consumer = OnnxConsumer(plain), OnnxConsumer(folder)
    for image in sample_images(sample_data.detection("test"))[:4]:
        expected, got = reference.predict(image), consumer.predict(image)
        assert set(got) == set(expected)
        for name in expected:
            assert got[name].shape == expected[name].shape and np.allclose(got[name], expected[name], atol=1e-4)


def test_openvino_package_layout(classifier_folder, tmp_path):
    info, folder = _build(classifier_folder, tmp_path, "openvino", None)
    assert sorted(p.name for p in folder.iterdir()) == ["cvexport.manifest", "labels.txt",
                                                        "metadata_properties.json", "model.bin", "model.xml"]
    assert json.loads((folder / "metadata_properties.json").read_text())["Image.BitmapPixelFormat"] == "Rgb8"
    assert json.loads((folder / "cvexport.manifest").read_text())["Platform"] == info.platform == "OpenVino"


@pytest.mark.parametrize(("platform", "flavor"), [("VAIDK", None), ("ONNX", "ONNX11"), ("OpenVino", "x")])
def test_unknown_platform_or_flavor_raises(tmp_path, platform, flavor):
    with pytest.raises(PackageError, match="unknown"):
        build_package(tmp_path, tmp_path / "out.zip", platform, flavor)


def test_a_folder_without_a_model_raises(tmp_path):
    with pytest.raises(PackageError, match="not a usable Loupe model"):
        build_package(tmp_path, tmp_path / "out.zip", "ONNX", None)


def test_a_corrupt_model_file_is_a_package_error(tmp_path, classifier_folder):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(classifier_folder, folder)
    (folder / "model.onnx").write_bytes(b"\x08\x07not protobuf at all" * 10)
    with pytest.raises(PackageError, match="cannot be read"):
        build_package(folder, tmp_path / "out.zip", "ONNX", None)
