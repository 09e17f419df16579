"""Broken or missing artifacts: a clear ModelUnusable (500) naming model and file, or ModelNotFound."""

from __future__ import annotations

import json

import pytest

from loupe.inference import ModelNotFound, ModelUnusable, load_predictor
from loupe.inference.files import FolderModelFiles
from tests.inference.builders import DictModelFiles


def _store(files: dict[str, bytes]) -> DictModelFiles:
    store = DictModelFiles()
    store.put("m", files)
    return store


def test_unknown_model_is_not_found():
    with pytest.raises(ModelNotFound) as info:
        load_predictor(DictModelFiles(), "nope")
    assert info.value.status == 404 and info.value.code == "NotFound"
    assert "nope" in info.value.message


def _pre(files: dict[str, bytes]) -> dict:
    return json.loads(files["preprocessing.json"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.pop("labels.json"), "labels.json"),
        (lambda f: f.update({"labels.json": b'{"a": 1}'}), "labels.json is invalid"),
        (lambda f: f.update({"labels.json": b'["a", "b"]'}), "scores 4 classes; labels.json has 2"),
        (lambda f: f.update({"model.onnx": b"not a model"}), "model.onnx cannot be loaded"),
        (
            lambda f: f.update(
                {"preprocessing.json": json.dumps({**_pre(f), "task": "segmentation"}).encode()}
            ),
            "preprocessing.json is invalid: task",
        ),
        (
            lambda f: f.update(
                {"preprocessing.json": json.dumps({**_pre(f), "input_name": "pixels"}).encode()}
            ),
            "names 'pixels'",
        ),
        (
            lambda f: f.update(
                {"preprocessing.json": json.dumps({**_pre(f), "format_version": 99}).encode()}
            ),
            "newer than this server reads",
        ),
    ],
)
def test_broken_artifacts_are_unusable_with_the_reason(multiclass, change, expected):
    files = dict(multiclass[0])
    change(files)
    with pytest.raises(ModelUnusable) as info:
        load_predictor(_store(files), "m")
    assert info.value.status == 500
    assert "'m'" in info.value.message and expected in info.value.message


def test_classifier_input_size_must_match_a_static_graph(detector_letterbox):
    files = dict(detector_letterbox)
    files["preprocessing.json"] = json.dumps({**_pre(files), "size": [64, 64]}).encode()
    with pytest.raises(ModelUnusable, match=r"size is \[64, 64\]"):
        load_predictor(_store(files), "m")


def test_detector_needs_the_contract_outputs(multiclass):
    files = dict(multiclass[0])
    files["preprocessing.json"] = json.dumps({**_pre(files), "task": "detection"}).encode()
    with pytest.raises(ModelUnusable, match="lacks the outputs"):
        load_predictor(_store(files), "m")


def test_folder_model_files(tmp_path, multiclass):
    folder = tmp_path / "flowers"
    folder.mkdir()
    for name, data in multiclass[0].items():
        (folder / name).write_bytes(data)
    files = FolderModelFiles(tmp_path)
    assert files.version("missing") is None
    assert files.version("..") is None  # never climbs out of the root
    version = files.version("flowers")
    predictor = load_predictor(files, "flowers")
    assert predictor.version == version
    assert predictor.labels == json.loads(multiclass[0]["labels.json"])
    with pytest.raises(FileNotFoundError):
        files.read("flowers", "../../etc/passwd")
