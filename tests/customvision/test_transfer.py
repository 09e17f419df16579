"""Project export and import, and artifacts, through the unchanged Custom Vision SDK."""
from __future__ import annotations

import itertools

import pytest
import requests
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException,
    ImageFileCreateBatch,
    ImageFileCreateEntry,
    Region,
)
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from msrest.exceptions import HttpOperationError

from loupe.customvision import transfer as transfer_module
from loupe.customvision.errors import bad_request
from loupe.storage.names import CV_PROJECTS_TABLE
from tests.customvision.conftest import jpeg

DETECTION = "da2e3a8a-40a5-4171-82f4-58522f70fbc1"  # General (object detection)


def _project_with_images(trainer, name: str):
    project = trainer.create_project(name, description="shapes", domain_id=DETECTION)
    ball = trainer.create_tag(project.id, "ball", description="round things")
    box = trainer.create_tag(project.id, "box")
    batch = ImageFileCreateBatch(images=[
        ImageFileCreateEntry(name=f"{i}.jpg", contents=jpeg((40 * i, 90, 200), seed=i), regions=[
            Region(tag_id=ball.id, left=0.1, top=0.1, width=0.3, height=0.3),
            Region(tag_id=box.id, left=0.5, top=0.5, width=0.4, height=0.25)])
        for i in range(3)], metadata={"camera": "north"})
    assert trainer.create_images_from_files(project.id, batch).is_batch_successful
    trainer.create_images_from_data(project.id, jpeg((5, 5, 5), seed=9))  # an untagged one
    return project


def _by_bytes(trainer, project_id: str) -> dict[bytes, object]:
    images = trainer.get_images(project_id, take=256)
    return {requests.get(i.original_image_uri, timeout=30).content: i for i in images}


def _boxes(image) -> list[tuple]:
    return sorted((r.tag_name, r.left, r.top, r.width, r.height) for r in image.regions or [])


def test_export_then_import_copies_the_project(trainer, unique_name):
    source = _project_with_images(trainer, unique_name("export"))
    exported = trainer.export_project(source.id)
    assert (exported.image_count, exported.tag_count, exported.region_count, exported.iteration_count) == (4, 2, 6, 0)
    assert exported.token and exported.estimated_import_time_in_ms > 0

    copy = trainer.import_project(exported.token, name=source.name + "-copy")
    assert copy.id != source.id and copy.name == source.name + "-copy" and copy.status == "Succeeded"
    assert copy.description == "shapes" and copy.settings.domain_id == DETECTION
    source_tags = {t.name: t for t in trainer.get_tags(source.id)}
    copy_tags = {t.name: t for t in trainer.get_tags(copy.id)}
    assert set(copy_tags) == {"ball", "box"} and copy_tags["ball"].description == "round things"
    assert not {t.id for t in copy_tags.values()} & {t.id for t in source_tags.values()}
    assert {t.name: t.image_count for t in copy_tags.values()} == {"ball": 3, "box": 3}

    originals, copies = _by_bytes(trainer, source.id), _by_bytes(trainer, copy.id)
    assert set(copies) == set(originals) and len(copies) == 4
    for data, image in copies.items():
        assert _boxes(image) == _boxes(originals[data])
        assert {r.tag_id for r in image.regions or []} <= {t.id for t in copy_tags.values()}
        assert image.metadata == originals[data].metadata
        assert (image.width, image.height) == (originals[data].width, originals[data].height)
        assert requests.get(image.thumbnail_uri, timeout=30).status_code == 200

    # the token stays valid; without a name the copy is named as its source
    assert trainer.import_project(exported.token).name == source.name


def test_bad_tokens_are_refused(trainer, services, unique_name):
    for token in ("nope", "A" * 43, "../../etc"):
        with pytest.raises(CustomVisionErrorException) as excinfo:
            trainer.import_project(token)
        assert excinfo.value.error.code == "BadRequestInvalidImportToken"
        assert excinfo.value.response.status_code == 400
    project = trainer.create_project(unique_name("gone"))
    # an expired token is refused, and the next export forgets it
    expired = trainer.export_project(project.id).token
    tokens = services.storage.table(CV_PROJECTS_TABLE)
    tokens.update_entity({"PartitionKey": "export", "RowKey": expired,
                          "expires": "2000-01-01T00:00:00.000000+00:00"}, mode=UpdateMode.MERGE)
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.import_project(expired)
    assert excinfo.value.error.code == "BadRequestInvalidImportToken"
    token = trainer.export_project(project.id).token
    with pytest.raises(ResourceNotFoundError):
        tokens.get_entity("export", expired)
    trainer.delete_project(project.id)
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.import_project(token)
    assert excinfo.value.error.code == "BadRequestInvalidImportToken"
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.export_project(project.id)
    assert excinfo.value.error.code == "NotFoundProject"


def test_an_import_that_fails_midway_leaves_nothing(trainer, services, unique_name, monkeypatch):
    source = _project_with_images(trainer, unique_name("half"))
    token = trainer.export_project(source.id).token
    transfer = services.customvision.transfer
    calls = itertools.count()
    copied = []
    real_copy = transfer._copy_image

    def copy_then_fail(image, target_id, tag_ids):  # the first image is copied, the next fails
        if next(calls) > 0:
            raise bad_request("BadRequestImageStream", "injected failure")
        copied.append(real_copy(image, target_id, tag_ids))

    monkeypatch.setattr(transfer, "_copy_image", copy_then_fail)
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.import_project(token, name=source.name + "-broken")
    assert excinfo.value.error.code == "BadRequestImageStream"
    assert copied
    assert not [p for p in trainer.get_projects() if p.name == source.name + "-broken"]


def test_artifacts_by_relative_path(trainer, unique_name):
    project = trainer.create_project(unique_name("artifacts"))
    data = jpeg((10, 120, 10), seed=3)
    image = trainer.create_images_from_data(project.id, data).images[0].image
    assert b"".join(trainer.get_artifact(project.id, f"images/{image.id}/original")) == data
    for path in ("../other/images/x/original", f"/{project.id}/images/{image.id}/original",
                 f"images\\{image.id}\\original", f"images/{image.id}/../{image.id}/original", ""):
        with pytest.raises(HttpOperationError) as excinfo:
            b"".join(trainer.get_artifact(project.id, path))
        assert excinfo.value.response.status_code == 400, path
        assert excinfo.value.response.json()["code"] == "BadRequestInvalidArtifactUri"
    with pytest.raises(HttpOperationError) as excinfo:
        b"".join(trainer.get_artifact(project.id, "images/unknown/original"))
    assert excinfo.value.response.status_code == 404
    assert excinfo.value.response.json()["code"] == "NotFound"


def test_exports_are_bounded(trainer, unique_name, monkeypatch):
    project = trainer.create_project(unique_name("big"))
    trainer.create_images_from_data(project.id, jpeg((1, 100, 1), seed=1))
    trainer.create_images_from_data(project.id, jpeg((1, 100, 1), seed=2))
    monkeypatch.setattr(transfer_module, "MAX_IMPORT_IMAGES", 1)
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.export_project(project.id)
    assert excinfo.value.error.code == "BadRequestExportValidationFailed"
    assert "loupe.migrate" in excinfo.value.error.message
