"""Drop-a-file registration against a real Azurite: the handler the Event Grid function and the
local watcher both call."""
from __future__ import annotations

import json
import threading

import pytest

from loupe.datasets.drop import DropRegistrar
from loupe.local.watcher import BlobWatcher
from loupe.storage.names import BLOB_EVENTS_TABLE
from tests.support.data import broken_detection_files, classification_files, detection_files, upload


@pytest.fixture
def container(services):
    return services.storage.container(services.settings.datasets_container)


@pytest.fixture
def registrar(services):
    return DropRegistrar(services.datasets)


def _events_for(services, dataset: str) -> list[dict]:
    table = services.storage.table(BLOB_EVENTS_TABLE)
    return list(table.query_entities("PartitionKey eq @dataset", parameters={"dataset": dataset}))


def test_a_dropped_coco_file_registers_its_folder_as_a_dataset(services, container, registrar, unique_name):
    name = unique_name("drop")
    upload(container, name, classification_files(("apple", "pear", "plum"), per_class=3))
    result = registrar.handle(f"{name}/annotations.json")
    assert result.outcome == "registered"
    record = services.datasets.get(name)
    assert record.annotation_kind.value == "imageClassification"
    assert record.source == "blob"
    assert record.annotation_file_uris == [container.get_blob_client(f"{name}/annotations.json").url]
    assert record.validation.wire()["status"] == "valid"
    assert record.validation.wire()["depth"] == "full"
    assert record.validation.wire()["imagesChecked"] == 9
    assert record.validation.wire()["multilabel"] is False
    assert {c["name"]: c["annotationCount"] for c in record.validation.wire()["categories"]} == {"apple": 3, "pear": 3, "plum": 3}
    wire = record.wire()
    assert "authentication" not in wire  # nothing was sent by a client


def test_detection_and_multilabel_kinds_are_inferred(services, container, registrar, unique_name):
    detection = unique_name("det")
    upload(container, detection, detection_files())
    registrar.handle(f"{detection}/annotations.json")
    assert services.datasets.get(detection).annotation_kind.value == "imageObjectDetection"

    multilabel = unique_name("ml")
    files = classification_files(("sky", "tree"), per_class=2)
    coco = json.loads(files["annotations.json"])
    coco["annotations"].append({"id": 5, "image_id": 1, "category_id": 2})  # image 1: sky and tree
    files["annotations.json"] = json.dumps(coco).encode()
    upload(container, multilabel, files)
    registrar.handle(f"{multilabel}/annotations.json")
    record = services.datasets.get(multilabel)
    assert record.annotation_kind.value == "imageClassification"
    assert record.validation.wire()["multilabel"] is True


def test_an_invalid_file_is_registered_with_a_precise_account(services, container, registrar, unique_name):
    name = unique_name("broken")
    files = broken_detection_files()
    upload(container, name, files)
    registrar.handle(f"{name}/annotations.json")
    record = services.datasets.get(name)
    assert record.validation.wire()["status"] == "invalid"
    errors = record.validation.wire()["errors"]
    assert any(e["target"].startswith("annotationFileUris[0].annotations[2].bbox") for e in errors), errors
    assert any(e["code"] == "ImageNotFound" and "box_1.jpg" in e["message"] for e in errors), errors
    assert record.validation.wire()["depth"] == "full"


def test_redelivery_and_concurrent_delivery_validate_once(services, container, registrar, unique_name):
    name = unique_name("twice")
    upload(container, name, classification_files())
    blob = f"{name}/annotations.json"
    etag = container.get_blob_client(blob).get_blob_properties().etag
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def deliver():
        barrier.wait()
        outcomes.append(registrar.handle(blob, etag).outcome)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate", "duplicate", "duplicate", "registered"]
    first = services.datasets.get(name)
    assert registrar.handle(blob, etag).outcome == "duplicate"
    again = services.datasets.get(name)
    assert (again.etag, again.validation) == (first.etag, first.validation)
    assert len(_events_for(services, name)) == 1


def test_a_reupload_revalidates_and_changes_the_etag(services, container, registrar, unique_name):
    name = unique_name("reup")
    upload(container, name, classification_files(("a", "b")))
    registrar.handle(f"{name}/annotations.json")
    before = services.datasets.get(name)
    upload(container, name, classification_files(("a", "b", "c")))
    assert registrar.handle(f"{name}/annotations.json").outcome == "revalidated"
    after = services.datasets.get(name)
    assert after.etag != before.etag
    assert after.created == before.created
    assert len(after.validation.wire()["categories"]) == 3


def test_the_watcher_does_not_reregister_after_a_restart(services, container, registrar, unique_name):
    name = unique_name("watch")
    upload(container, name, classification_files())
    first_watcher = BlobWatcher(registrar)
    delivered = dict(first_watcher.poll_once())
    assert delivered[f"{name}/annotations.json"] == "registered"
    before = services.datasets.get(name)
    restarted = BlobWatcher(DropRegistrar(services.datasets))
    delivered_again = dict(restarted.poll_once())
    assert delivered_again[f"{name}/annotations.json"] == "duplicate"
    assert services.datasets.get(name).etag == before.etag
    assert first_watcher.poll_once() == []  # nothing new


def test_images_and_nested_files_are_not_annotation_files(registrar, container, unique_name):
    name = unique_name("nested")
    upload(container, name, {"images/a.json": b"{}", "x.jpg": b"\xff\xd8"}, json_last=False)
    assert registrar.handle(f"{name}/images/a.json").outcome == "ignored"
    assert registrar.handle(f"{name}/x.jpg").outcome == "ignored"
    assert registrar.handle("-bad-name/annotations.json").outcome == "ignored"


def test_the_watcher_lists_annotation_files_not_images(registrar, container, unique_name):
    """Each poll lists folder by folder with a delimiter: the images below a folder never come back."""
    name = unique_name("listing")
    upload(container, name, {"a.json": b"{}", "b.JSON": b"{}", "c.jpg": b"\xff\xd8", "images/d.json": b"{}",
                              "images/e.jpg": b"\xff\xd8", "images/deep/f.jpg": b"\xff\xd8"}, json_last=False)
    mine = [blob.name for blob in registrar.annotation_blobs() if blob.name.startswith(f"{name}/")]
    assert sorted(mine) == [f"{name}/a.json", f"{name}/b.JSON"]
    assert sorted(blob.name for blob in registrar.annotation_blobs(name)) == sorted(mine)


def test_an_api_registered_dataset_is_not_overwritten_by_a_drop(services, container, registrar, unique_name):
    from loupe.datasets.requests import DatasetIn

    name = unique_name("owned")
    staged = upload(container, f"staging/{name}", classification_files())
    services.datasets.register(name, DatasetIn(annotation_kind="imageClassification",
                                               annotation_file_uris=[staged["annotations.json"]]))
    upload(container, name, classification_files(("x", "y")))
    assert registrar.handle(f"{name}/annotations.json").outcome == "conflict"
    assert services.datasets.get(name).annotation_file_uris == [staged["annotations.json"]]


def test_a_failed_handling_releases_its_claim_so_a_retry_registers(services, container, registrar, unique_name,
                                                                   monkeypatch):
    name = unique_name("retry")
    upload(container, name, classification_files())
    real = DropRegistrar._register

    def broken(self, dataset):
        raise ConnectionError("storage went away")

    monkeypatch.setattr(DropRegistrar, "_register", broken)
    with pytest.raises(ConnectionError):
        registrar.handle(f"{name}/annotations.json")
    assert services.datasets.find(name) is None
    monkeypatch.setattr(DropRegistrar, "_register", real)
    assert registrar.handle(f"{name}/annotations.json").outcome == "registered"


def test_a_folder_with_too_many_annotation_files_is_one_invalid_entry(services, container, registrar, unique_name):
    from loupe.datasets.limits import MAX_ANNOTATION_FILES

    name = unique_name("many")
    files = classification_files()
    upload(container, name, {**files, **{f"extra{i:02d}.json": files["annotations.json"]
                                         for i in range(MAX_ANNOTATION_FILES)}})
    assert registrar.handle(f"{name}/annotations.json").outcome == "registered"
    record = services.datasets.get(name)
    assert len(record.annotation_file_uris) == MAX_ANNOTATION_FILES
    validation = record.validation.wire()
    assert validation["status"] == "invalid"
    assert [(e["code"], e["target"]) for e in validation["errors"]] == [("TooManyAnnotationFiles", "annotationFileUris")]
    assert f"holds {MAX_ANNOTATION_FILES + 1} annotation files" in validation["errors"][0]["message"]
