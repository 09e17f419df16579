"""Prediction with trained models: onnxruntime sessions over the artifact contract
(loupe.artifacts), cached per model, returning the analyze response of api-spec.md A.8."""

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
from loupe.inference.files import FolderModelFiles, ModelFiles
from loupe.inference.predictor import Predictor, load_predictor

__all__ = [
    "BAD_ARGUMENT",
    "INVALID_IMAGE_DIMENSION",
    "INVALID_IMAGE_FORMAT",
    "INVALID_IMAGE_SIZE",
    "FolderModelFiles",
    "InferenceError",
    "InvalidRequest",
    "ModelFiles",
    "ModelNotFound",
    "ModelUnusable",
    "Predictor",
    "PredictorCache",
    "analyze_result",
    "decode_for",
    "fetch_image",
    "load_predictor",
]
