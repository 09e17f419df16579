"""loupe.formats (docs/formats.md): the project's sample datasets, written in each format by that
format's own writer, convert back to the same Azure COCO dataset; bad input fails naming the place."""
from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from loupe.coco.quotas import Purpose
from loupe.coco.structure import validate_coco
from loupe.datasets.__main__ import main
from loupe.formats import FormatError, Layout, Limits, convert, parse_folder
from loupe.sample_data import classification, detection
from tests.formats import writers as w

DETECTION = detection("train")
CLASSIFICATION = classification("train")


def _convert(tmp_path: Path, src: Path) -> dict:
    out = tmp_path / "out"
    result = convert(src, out)
    coco = w.read_output(out)
    report = validate_coco((out / "annotations.json").read_bytes(), purpose=Purpose.TRAINING)
    assert report.ok, report.errors
    assert result.images == len(coco["images"])
    return coco


@pytest.mark.parametrize(("writer", "layout"), [
    (w.write_yolo, Layout.YOLO), (w.write_voc, Layout.VOC), (w.write_coco, Layout.COCO),
    (w.write_cvat, Layout.CVAT),
])
def test_detection_written_by_globox_converts_back(tmp_path: Path, writer: Callable, layout: Layout) -> None:
    src = tmp_path / "src"
    writer(DETECTION.coco, DETECTION.images, src)
    assert parse_folder(src).layout is layout
    coco = _convert(tmp_path, src)
    w.assert_same_dataset(coco, DETECTION.coco)


@pytest.mark.parametrize("writer", [w.write_yolo, w.write_voc, w.write_coco])
def test_round_trip_in_and_back_out_keeps_every_image_label_and_box(tmp_path: Path, writer: Callable) -> None:
    first = tmp_path / "first"
    writer(DETECTION.coco, DETECTION.images, first)
    once = _convert(tmp_path / "a", first)
    again = tmp_path / "again"  # the converted dataset, written out again by the library's writer
    writer(once, DETECTION.images, again)
    w.assert_same_dataset(_convert(tmp_path / "b", again), DETECTION.coco)


def test_label_studio_export_from_its_own_converter(tmp_path: Path) -> None:
    src = tmp_path / "src"
    w.write_label_studio(DETECTION.coco, DETECTION.images, src, tmp_path)
    assert parse_folder(src).layout is Layout.LABEL_STUDIO
    w.assert_same_dataset(_convert(tmp_path, src), DETECTION.coco)


def test_class_folders(tmp_path: Path) -> None:
    src = tmp_path / "src"
    w.write_class_folders(CLASSIFICATION.coco, CLASSIFICATION.images, src)
    assert parse_folder(src).layout is Layout.CLASS_FOLDERS
    w.assert_same_dataset(_convert(tmp_path, src), CLASSIFICATION.coco)


def test_azure_coco_is_copied_unchanged(tmp_path: Path) -> None:
    DETECTION.write(tmp_path / "src")
    result = convert(tmp_path / "src", tmp_path / "out")
    assert result.layout is Layout.AZURE_COCO
    assert (tmp_path / "out" / "annotations.json").read_bytes() == (tmp_path / "src" / "annotations.json").read_bytes()


def test_zip_source(tmp_path: Path) -> None:
    src = tmp_path / "src"
    w.write_yolo(DETECTION.coco, DETECTION.images, src)
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(src).as_posix())
    w.assert_same_dataset(_convert(tmp_path, archive), DETECTION.coco)


# --- bad input: a clear error naming the place in the source


def _yolo(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    w.write_yolo(DETECTION.coco, DETECTION.images, src)
    return src


def test_yolo_class_index_beyond_names(tmp_path: Path) -> None:
    src = _yolo(tmp_path)
    label = src / "labels" / "det_0002.txt"
    lines = label.read_text().splitlines()
    label.write_text("\n".join([lines[0], "7 0.5 0.5 0.1 0.1", *lines[1:]]) + "\n")
    with pytest.raises(FormatError, match=r"labels/det_0002\.txt line 2: class index 7 is not one of the 3 names in data.yaml \(0..2\)"):
        convert(src, tmp_path / "out")


def test_yolo_box_within_a_pixel_is_clipped_with_a_warning(tmp_path: Path) -> None:
    src = _yolo(tmp_path)
    (src / "labels" / "det_0001.txt").write_text("0 0.5 0.5 1.002 0.5\n")  # 240-320 px wide: < 1 px out
    result = convert(src, tmp_path / "out")
    assert any("clipped" in warning and "det_0001.txt line 1" in warning for warning in result.warnings)


def test_voc_box_outside_the_image(tmp_path: Path) -> None:
    src = tmp_path / "src"
    w.write_voc(DETECTION.coco, DETECTION.images, src)
    xml = src / "Annotations" / "det_0003.xml"
    text = xml.read_text()
    xml.write_text(text.replace("<xmax>", "<xmax>9", 2).replace("<xmax>9", "<xmax>", 1))  # the 2nd object
    with pytest.raises(FormatError, match=r"Annotations/det_0003\.xml object 2: box .* outside the \d+x\d+ image"):
        convert(src, tmp_path / "out")


def test_coco_pixel_box_beyond_the_image(tmp_path: Path) -> None:
    import json
    src = tmp_path / "src"
    w.write_coco(DETECTION.coco, DETECTION.images, src)
    path = src / "annotations" / "instances_default.json"
    doc = json.loads(path.read_text())
    doc["annotations"][4]["bbox"][2] += 5000
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"instances_default\.json annotations\[4\]: box .* outside"):
        convert(src, tmp_path / "out")


def _zip(tmp_path: Path, entries: dict[str, bytes]) -> Path:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return archive


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "a\\..\\evil.txt", "images/../../evil.txt"])
def test_zip_with_path_traversal_is_refused_before_extracting(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path, {"images/a.jpg": DETECTION.images["images/det_0001.jpg"], name: b"x"})
    with pytest.raises(FormatError, match=r"zip entry .*(not allowed|outside)"):
        convert(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


def test_zip_bomb_is_refused_before_extracting(tmp_path: Path) -> None:
    archive = _zip(tmp_path, {"images/big.jpg": b"\0" * (64 * 1024**2)})  # 64 MiB -> ~64 KB
    with pytest.raises(FormatError, match=r"compression ratio .* zip bomb"):
        convert(archive, tmp_path / "out")
    small = Limits(max_zip_uncompressed_bytes=1024, max_compression_ratio=10**9)
    with pytest.raises(FormatError, match=r"uncompressed, more than 1,024: refused before extracting"):
        convert(archive, tmp_path / "out", small)


def test_a_damaged_zip_entry_is_a_format_error(tmp_path: Path) -> None:
    # the archive's central directory is intact; one stored entry's bytes are not (its CRC fails)
    payload = b"not an image but long enough to be found " * 8
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("images/a.jpg", DETECTION.images["images/det_0001.jpg"])
        zf.writestr("images/b.jpg", payload)
    data = archive.read_bytes()
    at = data.index(payload)
    archive.write_bytes(data[:at] + b"X" + data[at + 1:])
    with pytest.raises(FormatError, match=r"zip entry 'images/b.jpg': cannot be read \(Bad CRC-32"):
        convert(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(FormatError, match=r"src: the folder holds no files"):
        convert(tmp_path / "src", tmp_path / "out")


def test_unknown_layout_names_the_layouts_looked_for(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b" / "c").mkdir(parents=True)
    (src / "a" / "b" / "c" / "x.jpg").write_bytes(DETECTION.images["images/det_0001.jpg"])
    with pytest.raises(FormatError, match=r"unknown layout; looked for: Azure COCO .* YOLO .* Pascal VOC"):
        convert(src, tmp_path / "out")


# --- the CLI


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _yolo(tmp_path)
    assert main(["convert", str(src), str(tmp_path / "out")]) == 0
    assert "yolo: 12 images" in capsys.readouterr().out
    (src / "labels" / "det_0001.txt").write_text("9 0.5 0.5 0.1 0.1\n")
    assert main(["convert", str(src), str(tmp_path / "out2")]) == 1
    assert "det_0001.txt line 1" in capsys.readouterr().err
    assert main(["convert", str(src), str(tmp_path / "out")]) == 2  # not empty
    with pytest.raises(SystemExit) as exc:
        main(["convert"])
    assert exc.value.code == 2


def test_image_sizes_follow_the_exif_rotation(tmp_path):
    """A photo stored 60x40 with EXIF orientation 6 (rotated 90 degrees) is 40x60 as displayed."""
    from PIL import Image

    from loupe.formats.images import ImageIndex

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (60, 40), (10, 20, 30)).save(tmp_path / "rotated.jpg", exif=exif)
    Image.new("RGB", (60, 40), (10, 20, 30)).save(tmp_path / "plain.jpg")
    index = ImageIndex(tmp_path, ["rotated.jpg", "plain.jpg"])
    assert index.size("rotated.jpg") == (40, 60)
    assert index.size("plain.jpg") == (60, 40)
