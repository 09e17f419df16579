"""Datasets in other layouts into Loupe (docs/formats.md#drop, #upload), against the real Azurite
and API server: each sample dataset, written by its format's own writer, (a) dropped under
datasets/<name>/ with the marker and registered by the drop handler, (b) uploaded as a zip to
PUT /computervision/datasets/{name}:import; the registered annotation file, read back from blob
storage, is the sample again. Bad input: a clear error naming the place, nothing half-registered."""
from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from loupe.datasets.conversion import MARKER, output_prefix
from loupe.datasets.drop import DropRegistrar
from loupe.sample_data import classification, detection
from tests.conftest import TEST_API_KEY
from tests.formats import writers as w

DETECTION = detection("train")
CLASSIFICATION = classification("train")
API = {"api-version": "2024-02-01"}


def _label_studio(coco: dict, images: dict[str, bytes], folder: Path) -> None:
    w.write_label_studio(coco, images, folder, folder.parent)


def _azure_coco(coco: dict, images: dict[str, bytes], folder: Path) -> None:
    DETECTION.write(folder)  # already Azure COCO: copied unchanged into azure-coco/


FORMATS: dict[str, tuple[Callable, object]] = {
    "azure-coco": (_azure_coco, DETECTION),
    "yolo": (w.write_yolo, DETECTION), "voc": (w.write_voc, DETECTION), "coco": (w.write_coco, DETECTION),
    "cvat": (w.write_cvat, DETECTION), "label-studio": (_label_studio, DETECTION),
    "class-folders": (w.write_class_folders, CLASSIFICATION),
}


@pytest.fixture
def container(services):
    return services.storage.container(services.settings.datasets_container)


@pytest.fixture
def registrar(services):
    return DropRegistrar(services.datasets)


@pytest.fixture
def put_zip(api_server):
    session = requests.Session()
    session.headers["Ocp-Apim-Subscription-Key"] = TEST_API_KEY

    def put(name: str, body: bytes, content_type: str = "application/zip") -> requests.Response:
        return session.put(f"{api_server.url}/computervision/datasets/{name}:import", params=API, data=body,
                           headers={"Content-Type": content_type}, timeout=120)

    return put


def _written(tmp_path: Path, fmt: str) -> Path:
    writer, sample = FORMATS[fmt]
    folder = tmp_path / fmt / "src"
    folder.parent.mkdir(parents=True)
    writer(sample.coco, sample.images, folder)
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _drop(container, name: str, files: dict[str, bytes]) -> None:
    """Like a careful user: the dataset first, the marker last."""
    for rel, data in files.items():
        container.get_blob_client(f"{name}/{rel}").upload_blob(data, overwrite=True)
    container.get_blob_client(f"{name}/{MARKER}").upload_blob(b"{}", overwrite=True)


def _blobs(container, prefix: str) -> list[str]:
    return sorted(b.name for b in container.list_blobs(name_starts_with=prefix))


def _registered_coco(container, record) -> dict:
    (uri,) = record.annotation_file_uris
    name = uri.split(f"/{container.container_name}/", 1)[1]
    assert name.startswith(output_prefix(record.name))
    coco = json.loads(container.download_blob(name).readall())
    folder = name.rsplit("/", 1)[0]
    for image in coco["images"]:  # every image the annotation file names was uploaded beside it
        assert container.get_blob_client(f"{folder}/{image['file_name']}").exists(), image["file_name"]
    return coco


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_dropped_folder_is_converted_beside_itself_and_registered(fmt, tmp_path, services, container, registrar,
                                                                    unique_name):
    name = unique_name(f"drop-{fmt}")
    files = _files(_written(tmp_path, fmt))
    _drop(container, name, files)
    result = registrar.handle(f"{name}/{MARKER}")
    assert result.outcome == "registered", result
    record = services.datasets.get(name)
    validation = record.validation.wire()
    assert validation["status"] == "valid", validation
    assert record.source == "blob"
    w.assert_same_dataset(_registered_coco(container, record), FORMATS[fmt][1].coco)
    for rel, data in files.items():  # the originals untouched
        assert container.download_blob(f"{name}/{rel}").readall() == data
    # the output's own events are no drops, and the marker's redelivery is a duplicate: no loop
    for blob in _blobs(container, output_prefix(name)):
        assert registrar.handle(blob).outcome == "ignored"
    assert registrar.handle(f"{name}/{MARKER}").outcome == "duplicate"
    assert all(not b.name.startswith(output_prefix(name)) for b in registrar.annotation_blobs(name))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_an_uploaded_zip_is_converted_and_registered(fmt, tmp_path, services, container, put_zip, unique_name):
    name = unique_name(f"zip-{fmt}")
    response = put_zip(name, _zip(_files(_written(tmp_path, fmt))))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == name and body["validation"]["status"] == "valid"
    assert body["annotationKind"] == ("imageClassification" if fmt == "class-folders" else "imageObjectDetection")
    record = services.datasets.get(name)
    w.assert_same_dataset(_registered_coco(container, record), FORMATS[fmt][1].coco)
    again = put_zip(name, _zip(_files(_written(tmp_path / "again", fmt))))
    assert again.status_code == 409 and again.json()["error"]["code"] == "DatasetAlreadyExists"


# --- bad input


def _bad_yolo(tmp_path: Path) -> tuple[dict[str, bytes], str]:
    files = _files(_written(tmp_path, "yolo"))
    label = next(rel for rel in files if rel.startswith("labels/") and files[rel].strip())
    files[label] = b"99 0.5 0.5 0.2 0.2\n" + files[label]
    return files, f"{label} line 1"


def _bad_voc(tmp_path: Path) -> tuple[dict[str, bytes], str]:
    files = _files(_written(tmp_path, "voc"))
    xml = next(rel for rel in files if rel.endswith(".xml") and b"<object>" in files[rel])
    start = files[xml].index(b"<xmax>") + len(b"<xmax>")
    end = files[xml].index(b"</xmax>")
    files[xml] = files[xml][:start] + b"100000" + files[xml][end:]
    return files, f"{xml} object 1"


@pytest.mark.parametrize("bad", [_bad_yolo, _bad_voc], ids=["yolo-class-index", "voc-box-outside"])
def test_bad_source_through_a_drop_is_an_invalid_entry_naming_the_place(bad, tmp_path, services, container,
                                                                         registrar, unique_name):
    name = unique_name("bad-drop")
    files, place = bad(tmp_path)
    _drop(container, name, files)
    assert registrar.handle(f"{name}/{MARKER}").outcome == "registered"
    validation = services.datasets.get(name).validation.wire()
    assert validation["status"] == "invalid"
    (error,) = validation["errors"]
    assert error["code"] == "DatasetConversionFailed"
    assert error["target"] == f"{name}/{place}", error
    assert _blobs(container, output_prefix(name)) == []


@pytest.mark.parametrize("bad", [_bad_yolo, _bad_voc], ids=["yolo-class-index", "voc-box-outside"])
def test_bad_source_through_the_route_is_a_400_leaving_nothing(bad, tmp_path, services, container, put_zip,
                                                                unique_name):
    name = unique_name("bad-zip")
    files, place = bad(tmp_path)
    response = put_zip(name, _zip(files))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "DatasetConversionFailed" and error["target"] == place, error
    assert place in error["message"]
    assert services.datasets.find(name) is None
    assert _blobs(container, f"{name}/") == []


def test_an_empty_or_unknown_folder_says_what_was_looked_for(services, container, registrar, unique_name):
    empty = unique_name("empty")
    _drop(container, empty, {})
    assert registrar.handle(f"{empty}/{MARKER}").outcome == "registered"
    (error,) = services.datasets.get(empty).validation.wire()["errors"]
    assert error["target"] == f"{empty}/" and "no files besides the marker" in error["message"]

    unknown = unique_name("unknown")
    image = next(iter(DETECTION.images.values()))
    _drop(container, unknown, {"a.jpg": image, "notes.txt": b"hello"})
    registrar.handle(f"{unknown}/{MARKER}")
    (error,) = services.datasets.get(unknown).validation.wire()["errors"]
    assert "unknown layout; looked for" in error["message"] and "YOLO" in error["message"], error
    assert _blobs(container, output_prefix(unknown)) == []


def _traversal_zip() -> bytes:
    return _zip({"images/a.jpg": next(iter(DETECTION.images.values())), "../escaped.txt": b"x"})


def _bomb_zip() -> bytes:
    return _zip({"images/a.jpg": next(iter(DETECTION.images.values())), "big.bin": bytes(64 * 1024**2)})


@pytest.mark.parametrize(("archive", "words"), [
    (_traversal_zip, "path traversal"), (_bomb_zip, "zip bomb"), (lambda: _zip({}), "no files"),
    (lambda: b"not a zip", "not a readable zip"),
], ids=["path-traversal", "zip-bomb", "empty-zip", "not-a-zip"])
def test_unsafe_or_empty_zips_are_refused_before_anything_is_written(archive, words, services, container, put_zip,
                                                                      unique_name):
    name = unique_name("unsafe")
    response = put_zip(name, archive())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "DatasetConversionFailed" and words in error["message"], error
    assert response.headers["x-ms-error-code"] == "DatasetConversionFailed"
    assert services.datasets.find(name) is None
    assert _blobs(container, f"{name}/") == []


def test_the_route_bounds_the_body_and_its_type(put_zip, unique_name, monkeypatch, tmp_path):
    import loupe.api.routes.datasets as route

    body = _zip(_files(_written(tmp_path, "yolo")))
    wrong = put_zip(unique_name("type"), body, content_type="application/json")
    assert wrong.status_code == 415 and wrong.json()["error"]["code"] == "InvalidRequest"
    assert put_zip(unique_name("empty"), b"").status_code == 400
    monkeypatch.setattr(route, "MAX_IMPORT_ZIP_BYTES", len(body) - 1)
    large = put_zip(unique_name("large"), body)
    assert large.status_code == 413 and "larger than" in large.json()["error"]["message"]


def test_a_failed_registration_deletes_what_was_uploaded(tmp_path, services, container, put_zip, unique_name,
                                                         monkeypatch):
    from loupe.datasets.service import DatasetService
    from loupe.errors import bad_request

    def refuse(self, name, body):
        assert _blobs(container, output_prefix(name)), "the files were uploaded before registering"
        raise bad_request("refused for the test", code="DatasetInvalidAnnotation")

    monkeypatch.setattr(DatasetService, "register", refuse)
    name = unique_name("undo")
    response = put_zip(name, _zip(_files(_written(tmp_path, "yolo"))))
    assert response.status_code == 400 and response.json()["error"]["code"] == "DatasetInvalidAnnotation"
    assert services.datasets.find(name) is None
    assert _blobs(container, f"{name}/") == []


def test_a_marker_in_the_folder_of_an_imported_dataset_changes_nothing(tmp_path, services, container, put_zip,
                                                                       registrar, unique_name):
    name = unique_name("owned")
    assert put_zip(name, _zip(_files(_written(tmp_path, "yolo")))).status_code == 201
    before = services.datasets.get(name)
    output = {b: container.get_blob_client(b).get_blob_properties().etag for b in _blobs(container, output_prefix(name))}
    _drop(container, name, _files(_written(tmp_path / "other", "voc")))
    assert registrar.handle(f"{name}/{MARKER}").outcome == "conflict"
    assert services.datasets.get(name).etag == before.etag
    assert {b: container.get_blob_client(b).get_blob_properties().etag
            for b in _blobs(container, output_prefix(name))} == output
