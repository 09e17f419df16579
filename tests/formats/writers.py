"""Writing the project's sample datasets in other formats WITH THOSE FORMATS' OWN WRITERS
(globox for YOLO, VOC, COCO and CVAT; label-studio-converter for Label Studio JSON), and reading
an Azure COCO dataset back as (image name -> sorted labels and fractional boxes) to compare."""
from __future__ import annotations

import json
import posixpath
from pathlib import Path

import yaml
from globox import Annotation, AnnotationSet, BoundingBox, BoxFormat


def write_images(images: dict[str, bytes], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        (folder / posixpath.basename(name)).write_bytes(data)


def azure_to_globox(coco: dict) -> AnnotationSet:
    """An Azure COCO dict (fractions) as globox annotations keyed by the image's bare name."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_image = {img["id"]: Annotation(posixpath.basename(img["file_name"]), (img["width"], img["height"]))
                for img in coco["images"]}
    for ann in coco["annotations"]:
        target = by_image[ann["image_id"]]
        target.add(BoundingBox.create(label=names[ann["category_id"]], coords=tuple(ann["bbox"]),
                                      box_format=BoxFormat.LTWH, relative=True, image_size=target.image_size))
    return AnnotationSet(by_image.values())


def category_names(coco: dict) -> list[str]:
    return [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]


def write_yolo(coco: dict, images: dict[str, bytes], folder: Path) -> None:
    names = category_names(coco)
    write_images(images, folder / "images")
    azure_to_globox(coco).save_yolo_v5(folder / "labels", label_to_id={n: i for i, n in enumerate(names)})
    (folder / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images", "names": names}))


def write_voc(coco: dict, images: dict[str, bytes], folder: Path) -> None:
    write_images(images, folder / "JPEGImages")
    azure_to_globox(coco).save_pascal_voc(folder / "Annotations")


def write_coco(coco: dict, images: dict[str, bytes], folder: Path) -> None:
    """Standard COCO: pixel boxes, category and image ids from 0 (globox's own numbering)."""
    write_images(images, folder / "images")
    annotations = azure_to_globox(coco)
    label_to_id = {n: i for i, n in enumerate(category_names(coco))}
    image_to_id = {a.image_id: i for i, a in enumerate(annotations)}
    (folder / "annotations").mkdir()
    annotations.save_coco(folder / "annotations" / "instances_default.json", label_to_id=label_to_id,
                          imageid_to_id=image_to_id)


def write_cvat(coco: dict, images: dict[str, bytes], folder: Path) -> None:
    write_images(images, folder / "images")
    azure_to_globox(coco).save_cvat(folder / "annotations.xml")


def write_class_folders(coco: dict, images: dict[str, bytes], folder: Path) -> None:
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {img["id"]: img["file_name"] for img in coco["images"]}
    for ann in coco["annotations"]:
        name = files[ann["image_id"]]
        target = folder / "train" / names[ann["category_id"]] / posixpath.basename(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(images[name])


def write_label_studio(coco: dict, images: dict[str, bytes], folder: Path, work: Path) -> None:
    """Label Studio's own converter (label_studio_converter.imports.yolo) turns a YOLO folder into
    Label Studio JSON tasks with completed annotations, as Label Studio exports them."""
    from label_studio_converter.imports.yolo import convert_yolo_to_ls

    yolo = work / "ls-yolo"
    write_yolo(coco, images, yolo)
    (yolo / "classes.txt").write_text("\n".join(category_names(coco)) + "\n")
    out = work / "ls-out" / "export.json"
    out.parent.mkdir()
    convert_yolo_to_ls(str(yolo), str(out))
    write_images(images, folder / "images")
    (folder / "project-1-export.json").write_bytes(out.read_bytes())


def labels_by_image(coco: dict) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {img["id"]: posixpath.basename(img["file_name"]) for img in coco["images"]}
    out: dict[str, list] = {name: [] for name in files.values()}
    for ann in coco["annotations"]:
        out[files[ann["image_id"]]].append((names[ann["category_id"]], tuple(ann.get("bbox") or ())))
    return {k: sorted(v) for k, v in out.items()}


def assert_same_dataset(converted: dict, original: dict, tolerance: float = 1e-6) -> None:
    got, want = labels_by_image(converted), labels_by_image(original)
    assert sorted(got) == sorted(want), "the same images"
    for name, labels in want.items():
        assert [lab for lab, _ in got[name]] == [lab for lab, _ in labels], f"{name}: the same labels"
        for (_, a), (_, b) in zip(got[name], labels):
            assert len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b)), f"{name}: {a} != {b}"


def read_output(folder: Path) -> dict:
    coco = json.loads((folder / "annotations.json").read_text())
    for img in coco["images"]:
        assert (folder / img["file_name"]).is_file(), img["file_name"]
    return coco
