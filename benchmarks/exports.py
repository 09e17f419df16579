"""Benchmark: every export package of a small classifier and a small detector (docs/exports.md):
build time, zip size, and prediction latency with the platform's own runtime beside onnxruntime
on the plain ONNX package, same images, same run.

The models are trained on loupe.sample_data as tests/packages/conftest.py trains them (classifier:
3 epochs; detector: 60 iterations at 256 px, stretch preprocessing), then every (platform, flavor)
of trainer.packages.PLATFORMS except the aliases (TensorFlowNormal/TensorFlowSavedModel = the
SavedModel, Linux = the plain DockerFile) is built with build_package, as an export job does.
Latency: median milliseconds per image over the test images (--rounds passes, after one warm-up
pass), the package's input already resized (the samples' PIL resize is outside the timing), one
thread for every runtime (the machine is shared): onnxruntime, OpenVINO (f32 hint), TFLite's
interpreter and a TensorFlow SavedModel (in the converter environment, .venv-convert, timed inside
that process), the DockerFile app over loopback HTTP (a JPEG upload: decode and resize included,
so its ratio is to onnxruntime's bare run plus Loupe's decode and preprocessing in-process). CoreML
packages are built and sized; coremltools predicts only on macOS, so their latency says so.

    .venv/bin/python benchmarks/exports.py [--rounds 3] [--only classifier|detector]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "trainer_image")]

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from trainer.classification import TrainOptions, export_classifier, train_classifier  # noqa: E402
from trainer.context import LocalContext  # noqa: E402
from trainer.detection import DetectorOptions, export_detector, train_detector  # noqa: E402
from trainer.packages import PLATFORMS, PackageError, build_package  # noqa: E402
from trainer.packages.tf_package import convert_python  # noqa: E402

from loupe import sample_data  # noqa: E402
from loupe.runner.examples import examples_from_coco  # noqa: E402

ALIASES = {("TensorFlow", "TensorFlowNormal"), ("TensorFlow", "TensorFlowSavedModel"), ("DockerFile", "Linux")}
DETECTOR = DetectorOptions(batch_size=2, input_side=(256, 256), min_iterations=60, max_iterations=60,
                           warmup_iterations=10, checkpoint_every_seconds=1e9, export_reserve_seconds=0.0,
                           device="cpu", threads=1, resize="stretch")

# timed inside the converter environment: argv = model path, inputs .npy (NHWC), rounds
_TIME_TF = """
import json, sys, time, numpy as np
path, inputs, rounds = sys.argv[1], np.load(sys.argv[2]), int(sys.argv[3])
if path.endswith(".tflite"):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    def run(x):
        interpreter.set_tensor(inp["index"], x[None].astype(inp["dtype"]))
        interpreter.invoke()
else:
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    def run(x):
        serve(tf.constant(x[None]))
times = []
for r in range(rounds + 1):
    for x in inputs:
        started = time.perf_counter()
        run(x)
        if r:
            times.append((time.perf_counter() - started) * 1000)
print(json.dumps(times))
"""


def _train(kind: str, root: Path) -> Path:
    torch.set_num_threads(1)
    if kind == "classifier":
        data = sample_data.classification("train")
        data.write(root / "data")
        train, labels = examples_from_coco(data.coco, root / "data")
        result = train_classifier(train, labels, context=LocalContext.with_budget(600, seed=1), multilabel=False,
                                  options=TrainOptions(views=2, epochs=3, threads=1))
        export_classifier(result, root / "shapes")
        return root / "shapes"
    data = sample_data.detection("train")
    data.write(root / "data")
    train, labels = examples_from_coco(data.coco, root / "data")
    result = train_detector(train, labels, context=LocalContext.with_budget(600, seed=1), options=DETECTOR)
    export_detector(result, root / "objects")
    return root / "objects"


def _median_ms(run, inputs: list, rounds: int) -> float:
    for x in inputs:  # warm-up
        run(x)
    times = []
    for _ in range(rounds):
        for x in inputs:
            started = time.perf_counter()
            run(x)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _nchw(images: list[Image.Image], side: int, bgr: bool, range255: bool, dtype) -> list[np.ndarray]:
    out = []
    for image in images:
        x = np.array(image.resize((side, side), Image.Resampling.BILINEAR), np.float32)[None].transpose(0, 3, 1, 2)
        x = x[:, ::-1] if bgr else x
        out.append(np.ascontiguousarray(x if range255 else x / 255).astype(dtype))
    return out


def _onnxruntime_ms(model: Path, images: list[Image.Image], rounds: int) -> float:
    import onnx

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    inputs = _nchw(images, inp.shape[2], meta["Image.BitmapPixelFormat"] == "Bgr8",
                   meta["Image.NominalPixelRange"] == "NominalRange_0_255", dtype)
    return _median_ms(lambda x: session.run(None, {inp.name: x}), inputs, rounds)


def _openvino_ms(folder: Path, images: list[Image.Image], rounds: int) -> float:
    import openvino as ov

    compiled = ov.Core().compile_model(str(folder / "model.xml"), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    side = list(compiled.inputs[0].shape)[2]
    inputs = _nchw(images, side, bgr=False, range255=False, dtype=np.float32)
    request = compiled.create_infer_request()
    return _median_ms(lambda x: request.infer([x]), inputs, rounds)


def _tensorflow_ms(folder: Path, side: int, images: list[Image.Image], rounds: int) -> float:
    manifest = json.loads((folder / "cvexport.manifest").read_text())
    main = folder / manifest["ModelFileName"]
    path = main if main.suffix == ".tflite" else main.parent
    batch = np.stack([np.array(im.resize((side, side), Image.Resampling.BILINEAR), np.float32)[..., ::-1]
                      for im in images])
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/in.npy", np.ascontiguousarray(batch))
        done = subprocess.run([str(convert_python()), "-c", _TIME_TF, str(path), f"{tmp}/in.npy", str(rounds)],
                              capture_output=True, text=True, timeout=1200, check=False,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""})
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return statistics.median(json.loads(done.stdout.strip().splitlines()[-1]))


def _docker_ms(folder: Path, jpegs: list[bytes], rounds: int) -> float:
    """The unzipped app run as the container would (its own Python, nothing of Loupe on its path)."""
    import re
    import select

    import requests

    process = subprocess.Popen([sys.executable, "-I", "app.py"], cwd=folder / "app", stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env={**os.environ, "PORT": "0", "HOST": "127.0.0.1"})
    try:
        ready, _, _ = select.select([process.stdout], [], [], 120)
        port = re.search(r":(\d+)$", process.stdout.readline().decode().strip()) if ready else None
        if port is None:
            raise RuntimeError("the app did not start")
        session = requests.Session()
        url = f"http://127.0.0.1:{port.group(1)}/image"
        return _median_ms(lambda data: session.post(url, data=data, timeout=60).raise_for_status(), jpegs, rounds)
    finally:
        process.kill()
        process.wait(timeout=30)


def _loupe_in_process_ms(model_folder: Path, jpegs: list[bytes], rounds: int) -> float:
    """Loupe's decode + preprocess + onnxruntime in-process: what the Docker app's request does."""
    from loupe.inference import analyze_result, load_predictor_from_folder

    predictor = load_predictor_from_folder(model_folder)
    return _median_ms(lambda data: analyze_result(predictor, data), jpegs, rounds)


def _packages() -> list[tuple[str, str | None]]:
    return [(p, f) for p, flavors in PLATFORMS.items() for f in flavors if (p, f) not in ALIASES]


def bench_kind(kind: str, root: Path, rounds: int) -> list[dict]:
    started = time.monotonic()
    folder = _train(kind, root / kind)
    print(f"{kind}: trained in {time.monotonic() - started:.0f} s", flush=True)
    dataset = sample_data.classification("test") if kind == "classifier" else sample_data.detection("test")
    jpegs = list(dataset.images.values())[:12]
    images = [Image.open(io.BytesIO(data)).convert("RGB") for data in jpegs]
    plain = build_package(folder, root / f"{kind}-onnx-plain.zip", "ONNX")
    with zipfile.ZipFile(plain.path) as archive:
        archive.extractall(root / f"{kind}-onnx-plain")
    side = plain.input_size[0]
    rows = []
    for platform, flavor in _packages():
        row = {"kind": kind, "package": f"{platform}/{flavor or '-'}"}
        out = root / f"{kind}-{platform}-{flavor}.zip"
        started = time.monotonic()
        try:
            build_package(folder, out, platform, flavor)
        except PackageError as exc:
            row.update(build_s=time.monotonic() - started, note=f"not built: {exc.message[:110]}")
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        row.update(build_s=time.monotonic() - started, size_mb=out.stat().st_size / 1e6)
        unzipped = root / f"{kind}-{platform}-{flavor}"
        with zipfile.ZipFile(out) as archive:
            archive.extractall(unzipped)
        try:
            if platform == "ONNX":
                row["ms"] = _onnxruntime_ms(unzipped / "model.onnx", images, rounds)
                runtime_name = "onnxruntime"
            elif platform == "OpenVino":
                row["ms"], runtime_name = _openvino_ms(unzipped, images, rounds), "OpenVINO"
            elif platform == "TensorFlow":
                row["ms"] = _tensorflow_ms(unzipped, side, images, rounds)
                runtime_name = "TFLite" if "Lite" in (flavor or "") else "TensorFlow"
            elif platform == "DockerFile":
                row["ms"], runtime_name = _docker_ms(unzipped, jpegs, rounds), "app over HTTP"
                row["onnx_ms"] = _loupe_in_process_ms(folder, jpegs, rounds)
                row["baseline"] = "Loupe in-process (decode+preprocess+run)"
            else:
                runtime_name = "-"
                row["note"] = "prediction not run: coremltools predicts only on macOS"
        except Exception as exc:  # noqa: BLE001 - a runtime that cannot run here is a row, not a stop
            runtime_name = "-"
            row["note"] = f"not run: {str(exc)[:110]}"
        row["runtime"] = runtime_name
        if "ms" in row and "onnx_ms" not in row:
            row["onnx_ms"] = _onnxruntime_ms(root / f"{kind}-onnx-plain" / "model.onnx", images, rounds)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the 12 test images")
    parser.add_argument("--only", choices=["classifier", "detector"], default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("classifier", "detector"):
            if args.only in (None, kind):
                rows += bench_kind(kind, Path(tmp), args.rounds)
    print("\n| model | package | build s | zip MB | runtime | ms/image | onnxruntime ms/image | ratio | note |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ms = f"{r['ms']:.1f}" if "ms" in r else "-"
        base = f"{r['onnx_ms']:.1f}" if "onnx_ms" in r else "-"
        ratio = f"{r['ms'] / r['onnx_ms']:.2f}" if "ms" in r else "-"
        size = f"{r['size_mb']:.1f}" if "size_mb" in r else "-"
        note = r.get("note") or r.get("baseline", "")
        print(f"| {r['kind']} | {r['package']} | {r['build_s']:.1f} | {size} | {r.get('runtime', '-')} | {ms} | "
              f"{base} | {ratio} | {note} |")
    print("\nms/image: median over the test images, input already resized, one thread; DockerFile: a JPEG "
          "POST over loopback HTTP against Loupe's decode+preprocess+run in-process.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
