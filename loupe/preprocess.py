"""The one implementation of inference-time preprocessing, shared by the trainer (evaluation,
ONNX export checks) and the prediction service, so both see identical network inputs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from loupe.artifacts import Preprocessing
from loupe.imaging import ImageInfo, ImageLimits, decode_image


@dataclass(frozen=True)
class InputTransform:
    """Maps network-input pixel coordinates back to original-image pixels."""

    scale_x: float
    scale_y: float

    def to_original(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        out = boxes_xyxy.astype(np.float64, copy=True)
        out[:, [0, 2]] /= self.scale_x
        out[:, [1, 3]] /= self.scale_y
        return out


def resized_size(width: int, height: int, pre: Preprocessing) -> tuple[int, int]:
    """(width, height) the image is resized to before padding."""
    target_h, target_w = pre.size
    if pre.resize == "stretch":
        return target_w, target_h
    scale = min(target_w / width, target_h / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_input(image: Image.Image, pre: Preprocessing) -> tuple[np.ndarray, InputTransform]:
    """An RGB PIL image -> (float32 array [3,H,W], transform back to original pixels)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    new_w, new_h = resized_size(image.width, image.height, pre)
    resized = np.asarray(image.resize((new_w, new_h), Image.BILINEAR))  # uint8 HWC
    # (x / 255 - mean) / std as one multiply-add per value, written straight into CHW order:
    # this runs on every prediction, so no float temporaries
    std = np.asarray(pre.std, dtype=np.float32)
    scale = (1.0 / (255.0 * std)).reshape(3, 1, 1)
    bias = (np.asarray(pre.mean, dtype=np.float32) / std).reshape(3, 1, 1)
    target_h, target_w = pre.size
    chw = np.full((3, target_h, target_w), pre.pad_value, dtype=np.float32)
    region = chw[:, :new_h, :new_w]
    np.multiply(resized.transpose(2, 0, 1), scale, out=region, casting="unsafe")
    region -= bias
    return chw, InputTransform(scale_x=new_w / image.width, scale_y=new_h / image.height)


def draft_size(pre: Preprocessing) -> tuple[int, int]:
    """Smallest (width, height) a JPEG may be draft-decoded to (DCT scaling) without losing input
    detail: square on the larger input side, so it holds whatever the orientation and resize mode.
    Training, evaluation and prediction all decode with it, so they see the same pixels."""
    side = max(pre.size)
    return side, side


def decode_for_model(data: bytes, limits: ImageLimits, pre: Preprocessing) -> tuple[Image.Image, ImageInfo]:
    """Safe decode (raises ImageRejected) at the draft size of ``pre``: a JPEG at its DCT scale, a
    non-JPEG over 64 MB decoded box-reduced before conversion; what either allocates is bounded
    before decoding (loupe.imaging). Ordinary images decode whole, as they always did."""
    return decode_image(data, limits, draft_size=draft_size(pre))
