"""Classifiers: the A.8 response shape, sorting, and agreement with the torch model exported."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from loupe.inference import analyze_result, decode_for, load_predictor
from loupe.preprocess import to_input
from tests.inference.builders import DictModelFiles
from tests.inference.conftest import MULTICLASS_LABELS, MULTILABEL_LABELS
from tests.inference.images import encode, noise_image


def _load(files: dict[str, bytes], name: str = "m"):
    store = DictModelFiles()
    store.put(name, files)
    return load_predictor(store, name)


def _torch_scores(model, image: Image.Image, pre) -> np.ndarray:
    tensor, _ = to_input(image, pre)
    with torch.no_grad():
        return model(torch.from_numpy(tensor)[None]).numpy()[0]


@pytest.mark.parametrize(
    ("fixture", "labels"), [("multiclass", MULTICLASS_LABELS), ("multilabel", MULTILABEL_LABELS)]
)
def test_every_class_sorted_and_equal_to_torch(request, fixture, labels):
    files, model = request.getfixturevalue(fixture)
    predictor = _load(files)
    for seed, (w, h, fmt) in enumerate([(120, 90, "PNG"), (64, 200, "JPEG"), (300, 300, "BMP")]):
        data = encode(noise_image(w, h, seed), fmt)
        response = analyze_result(predictor, data)

        assert set(response) == {"modelVersion", "metadata", "customModelResult"}
        assert response["metadata"] == {"width": w, "height": h}
        assert set(response["customModelResult"]) == {"tagsResult"}
        values = response["customModelResult"]["tagsResult"]["values"]
        assert all(set(tag) == {"name", "confidence"} for tag in values)
        assert sorted(tag["name"] for tag in values) == sorted(labels)
        confidences = [tag["confidence"] for tag in values]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 and isinstance(c, float) for c in confidences)

        image, _ = decode_for(predictor, data)
        expected = _torch_scores(model, image, predictor.preprocessing)
        got = {tag["name"]: tag["confidence"] for tag in values}
        np.testing.assert_allclose([got[name] for name in labels], expected, atol=1e-5)


def test_multiclass_confidences_sum_to_one_and_multilabel_do_not(multiclass, multilabel):
    data = encode(noise_image(100, 100, 7), "PNG")
    mc = analyze_result(_load(multiclass[0]), data)["customModelResult"]["tagsResult"]["values"]
    ml = analyze_result(_load(multilabel[0]), data)["customModelResult"]["tagsResult"]["values"]
    assert sum(t["confidence"] for t in mc) == pytest.approx(1.0, abs=1e-5)
    # three independent sigmoids: not a distribution
    assert sum(t["confidence"] for t in ml) != pytest.approx(1.0, abs=1e-3)


def test_model_version_is_content_derived(multiclass):
    files, _ = multiclass
    first, second = _load(files, "a"), _load(files, "b")
    assert re.fullmatch(r"[0-9a-f]{16}", first.model_version)
    assert first.model_version == second.model_version  # same artifacts, same version anywhere
    relabelled = dict(files, **{"labels.json": b'["w", "x", "y", "z"]'})
    assert _load(relabelled).model_version != first.model_version


def test_predict_accepts_any_pil_mode(multiclass):
    predictor = _load(multiclass[0])
    rgb = noise_image(80, 60, 3)
    from_rgb = predictor.predict(rgb)
    # an RGB image decoded by the caller and the same pixels as RGBA give the same tags
    from_rgba = predictor.predict(rgb.convert("RGBA"))
    assert from_rgb == from_rgba
    assert set(from_rgb) == {"tagsResult"}
