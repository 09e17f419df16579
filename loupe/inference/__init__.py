"""Running trained models: onnxruntime sessions over the artifact contract (loupe.artifacts),
cached per model, returning the analyze response (docs/wire-contract.md#analyze); evaluation scoring
(loupe.runner.scoring) runs exported models through the same Predictor."""

from loupe.inference.analyze import analyze_result, decode_for, fetch_image
from loupe.inference.cache import PredictorCache
from loupe.inference.errors import (
    BAD_ARGUMENT,
    INVALID_IMAGE_DIMENSION,
    INVALID_IMAGE_FORMAT,
    INVALID_IMAGE_SIZE,
    InferenceError,
    InvalidRequest,
    ModelNotFound,
    ModelUnusable,
)
from loupe.inference.files import FolderModelFiles, LocalModelFiles, ModelFiles
from loupe.inference.predictor import Detections, Predictor, load_predictor, load_predictor_from_folder

__all__ = [
    "BAD_ARGUMENT",
    "INVALID_IMAGE_DIMENSION",
    "INVALID_IMAGE_FORMAT",
    "INVALID_IMAGE_SIZE",
    "Detections",
    "FolderModelFiles",
    "InferenceError",
    "InvalidRequest",
    "LocalModelFiles",
    "ModelFiles",
    "ModelNotFound",
    "ModelUnusable",
    "Predictor",
    "PredictorCache",
    "analyze_result",
    "decode_for",
    "fetch_image",
    "load_predictor",
    "load_predictor_from_folder",
]
