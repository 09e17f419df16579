"""Small real datasets for tests: Pillow-drawn JPEGs and their COCO files."""
from __future__ import annotations

import io
import json
from typing import Iterable

from azure.storage.blob import ContainerClient
from PIL import Image, ImageDraw

PALETTE = [(220, 40, 40), (40, 160, 60), (40, 70, 220), (230, 200, 30), (160, 40, 200)]


def jpeg(width: int = 96, height: int = 72, color=(200, 30, 30), seed: int = 0) -> bytes:
    image = Image.new("RGB", (width, height), (245 - seed % 40, 240, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=color)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def classification_files(classes: Iterable[str] = ("red", "green"), per_class: int = 2,
                         size=(96, 72)) -> dict[str, bytes]:
    """{"annotations.json": ..., "images/<n>.jpg": ...} for a multiclass dataset."""
    coco = {"images": [], "annotations": [], "categories": []}
    files: dict[str, bytes] = {}
    for cid, name in enumerate(classes, start=1):
        coco["categories"].append({"id": cid, "name": name})
        for k in range(per_class):
            iid = len(coco["images"]) + 1
            path = f"images/{name}_{k}.jpg"
            files[path] = jpeg(*size, color=PALETTE[(cid - 1) % len(PALETTE)], seed=k)
            coco["images"].append({"id": iid, "width": size[0], "height": size[1], "file_name": path})
            coco["annotations"].append({"id": iid, "image_id": iid, "category_id": cid})
    files["annotations.json"] = json.dumps(coco).encode()
    return files


def detection_files(classes: Iterable[str] = ("ball", "box"), per_class: int = 2,
                    size=(96, 72)) -> dict[str, bytes]:
    files = classification_files(classes, per_class, size)
    coco = json.loads(files["annotations.json"])
    for annotation in coco["annotations"]:
        annotation["bbox"] = [0.25, 0.25, 0.5, 0.5]
    files["annotations.json"] = json.dumps(coco).encode()
    return files


def broken_detection_files() -> dict[str, bytes]:
    """detection_files with two faults: annotation #2's box runs off its image, and the image
    images/box_1.jpg is missing."""
    files = detection_files()
    coco = json.loads(files["annotations.json"])
    coco["annotations"][2]["bbox"] = [0.9, 0.1, 0.5, 0.2]
    files["annotations.json"] = json.dumps(coco).encode()
    del files["images/box_1.jpg"]
    return files


def upload(container: ContainerClient, prefix: str, files: dict[str, bytes], *, json_last: bool = True) -> dict[str, str]:
    """Upload files under ``prefix``/ (images first, like a careful user); returns name -> URL."""
    urls = {}
    names = sorted(files, key=lambda n: (json_last and n.endswith(".json"), n))
    for name in names:
        blob = container.get_blob_client(f"{prefix}/{name}" if prefix else name)
        blob.upload_blob(files[name], overwrite=True)
        urls[name] = blob.url
    return urls
