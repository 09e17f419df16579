#!/bin/sh
# Make the converter environment (TensorFlow, onnx2tf, TFLite, coremltools) at $1 with Python $2.
# The one recipe for both `make install` (.venv-convert) and the trainer image
# (/opt/loupe/convert-venv): requirements.txt beside this file is a complete lock, installed
# without resolution (see its header). Started afresh each time, so a changed lock leaves nothing
# behind.
set -eu
venv=$1
python=${2:-python3.11}
here=$(dirname "$0")
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt"
# fail here, not in the first export job, when the lock no longer imports
"$venv/bin/python" -c "import tensorflow, onnx2tf, onnxruntime, coremltools, ai_edge_litert" >/dev/null 2>&1 || {
    "$venv/bin/python" -c "import tensorflow, onnx2tf, onnxruntime, coremltools, ai_edge_litert"; exit 1; }
