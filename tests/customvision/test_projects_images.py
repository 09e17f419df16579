"""Projects, tags and images through the unchanged Custom Vision SDK."""
from __future__ import annotations

import base64

import pytest
import requests
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException,
    ImageFileCreateBatch,
    ImageFileCreateEntry,
    ImageRegionCreateEntry,
    Region,
)

from tests.conftest import TEST_API_KEY
from tests.customvision.conftest import jpeg


def _code(excinfo) -> str:
    return excinfo.value.error.code


def test_domains_list_the_documented_ids(trainer):
    domains = trainer.get_domains()
    od = next(d for d in domains if d.type == "ObjectDetection" and d.name == "General")
    assert od.id == "da2e3a8a-40a5-4171-82f4-58522f70fbc1"
    compact = [d for d in domains if "compact" in d.name]
    assert compact and all(d.exportable for d in compact)
    assert not any(d.exportable for d in domains if "compact" not in d.name)


def test_project_lifecycle_and_tags(trainer, unique_name):
    project = trainer.create_project(unique_name("cv"), description="birds", classification_type="Multilabel")
    assert project.settings.classification_type == "Multilabel"
    assert project.settings.domain_id == "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31"
    assert trainer.get_project(project.id).name == project.name
    assert project.id in [p.id for p in trainer.get_projects()]
    project.name = project.name + "-renamed"
    assert trainer.update_project(project.id, project).name.endswith("-renamed")

    tag = trainer.create_tag(project.id, "Robin")
    negative = trainer.create_tag(project.id, "none", type="Negative")
    assert negative.type == "Negative"
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.create_tag(project.id, "robin")
    assert _code(excinfo) == "BadRequestTagNameNotUnique"
    assert {t.name for t in trainer.get_tags(project.id)} == {"Robin", "none"}
    trainer.delete_tag(project.id, tag.id)
    assert [t.name for t in trainer.get_tags(project.id)] == ["none"]
    trainer.delete_project(project.id)
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.get_project(project.id)
    assert _code(excinfo) == "NotFoundProject"
    assert excinfo.value.response.status_code == 404


def test_uploads_by_data_files_with_regions_and_duplicates(trainer, unique_name):
    project = trainer.create_project(unique_name("cv"))
    red, blue = trainer.create_tag(project.id, "red"), trainer.create_tag(project.id, "blue")
    summary = trainer.create_images_from_data(project.id, jpeg((200, 30, 30), seed=1), tag_ids=[red.id])
    assert summary.is_batch_successful and summary.images[0].status == "OK"
    image = summary.images[0].image
    assert (image.width, image.height) == (320, 240) and image.tags[0].tag_name == "red"
    # the links are signed and expire; a plain GET fetches them
    assert requests.get(image.thumbnail_uri, timeout=10).status_code == 200
    assert "sig=" in image.original_image_uri
    # the same bytes again: OKDuplicate, no second image
    again = trainer.create_images_from_data(project.id, jpeg((200, 30, 30), seed=1), tag_ids=[red.id])
    assert again.images[0].status == "OKDuplicate" and again.images[0].image.id == image.id

    batch = ImageFileCreateBatch(images=[
        ImageFileCreateEntry(name=f"blue{i}.jpg", contents=jpeg((30, 30, 200), seed=i), tag_ids=[blue.id],
                             regions=[Region(tag_id=blue.id, left=0.1, top=0.1, width=0.5, height=0.5)])
        for i in range(3)])
    summary = trainer.create_images_from_files(project.id, batch)
    assert summary.is_batch_successful and [i.source_url for i in summary.images][0] == '"blue0.jpg"'
    assert summary.images[0].image.regions[0].tag_name == "blue"
    assert trainer.get_tagged_image_count(project.id) == 4
    assert len(trainer.get_tagged_images(project.id, tag_ids=[blue.id])) == 3
    counts = {t.name: t.image_count for t in trainer.get_tags(project.id)}
    assert counts == {"red": 1, "blue": 3}

    created = trainer.create_image_regions(project.id, [
        ImageRegionCreateEntry(image_id=image.id, tag_id=red.id, left=0.2, top=0.2, width=0.3, height=0.3)])
    assert len(created.created) == 1 and created.created[0].region_id
    assert len(trainer.get_images_by_ids(project.id, [image.id])[0].regions) == 1
    trainer.delete_images(project.id, [image.id])
    assert trainer.get_image_count(project.id) == 3


def test_bad_uploads_change_nothing(trainer, unique_name):
    project = trainer.create_project(unique_name("cv"))
    tag = trainer.create_tag(project.id, "a")
    negative = trainer.create_tag(project.id, "neg", type="Negative")
    cases = {
        "BadRequestImageFormat": lambda: trainer.create_images_from_data(project.id, b"not an image"),
        "BadRequestImageDimensions": lambda: trainer.create_images_from_data(project.id, jpeg((1, 2, 3), (8, 8))),
        "BadRequestNegativeAndRegularTagOnSameImage": lambda: trainer.create_images_from_data(
            project.id, jpeg((9, 9, 9)), tag_ids=[tag.id, negative.id]),
        "BadRequestImageBatch": lambda: trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=[
            ImageFileCreateEntry(name=f"{i}.jpg", contents=jpeg((5, 5, 5), (32, 32), seed=i)) for i in range(65)])),
        "BadRequestImageRegions": lambda: trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=[
            ImageFileCreateEntry(name="x.jpg", contents=jpeg((7, 7, 7)),
                                 regions=[Region(tag_id=tag.id, left=0.8, top=0.1, width=0.5, height=0.5)])])),
        "BadRequestImageTags": lambda: trainer.create_images_from_data(
            project.id, jpeg((8, 8, 8)), tag_ids=["00000000-0000-0000-0000-000000000000"]),
    }
    for code, call in cases.items():
        with pytest.raises(CustomVisionErrorException) as excinfo:
            call()
        assert _code(excinfo) == code and 400 <= excinfo.value.response.status_code < 500, code
    assert trainer.get_image_count(project.id) == 0
    assert all(t.image_count == 0 for t in trainer.get_tags(project.id))


def test_curl_style_calls_capitalised_paths_and_octet_stream(api_server, unique_name):
    base = f"{api_server.url}/customvision/v3.3/Training"
    headers = {"Training-key": TEST_API_KEY}
    created = requests.post(f"{base}/projects", params={"name": unique_name("curl")}, headers=headers, timeout=30)
    assert created.status_code == 200, created.text
    pid = created.json()["id"]
    tag = requests.post(f"{base}/projects/{pid}/tags", params={"name": "cat"}, headers=headers, timeout=30).json()
    upload = requests.post(f"{base}/projects/{pid}/images", params={"tagIds": tag["id"]},
                           headers={**headers, "Content-Type": "application/octet-stream"},
                           data=jpeg((10, 200, 10)), timeout=30)
    assert upload.status_code == 200 and upload.json()["images"][0]["status"] == "OK"
    wrong = requests.get(f"{base}/projects/{pid}", headers={"Training-key": "wrong"}, timeout=30)
    assert wrong.status_code == 401
    none = requests.get(f"{base}/projects/{pid}", timeout=30)
    assert none.status_code == 401
    files = requests.post(f"{base}/projects/{pid}/images/files", headers=headers, timeout=30, json={
        "images": [{"name": "g.jpg", "contents": base64.b64encode(jpeg((10, 10, 200))).decode()}]})
    assert files.status_code == 200


def test_concurrent_edits_of_one_image_keep_every_region_and_tag(trainer, unique_name):
    from concurrent.futures import ThreadPoolExecutor

    from azure.cognitiveservices.vision.customvision.training.models import ImageTagCreateEntry

    project = trainer.create_project(unique_name("cv"), domain_id="da2e3a8a-40a5-4171-82f4-58522f70fbc1")
    tags = [trainer.create_tag(project.id, f"t{i}") for i in range(4)]
    image = trainer.create_images_from_data(project.id, jpeg((90, 90, 90), seed=3)).images[0].image

    def region(i: int):
        return trainer.create_image_regions(project.id, [ImageRegionCreateEntry(
            image_id=image.id, tag_id=tags[i % 4].id, left=0.01 * i, top=0.02, width=0.1, height=0.1)])

    def tag(i: int):
        return trainer.create_image_tags(project.id, [ImageTagCreateEntry(image_id=image.id, tag_id=tags[i].id)])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(region, range(16)))
        list(pool.map(tag, range(4)))
    stored = trainer.get_images_by_ids(project.id, [image.id])[0]
    assert len(stored.regions) == 16 and len(stored.tags) == 4


def test_a_wrong_key_raises_in_the_sdk(api_server):
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from msrest.authentication import ApiKeyCredentials

    client = CustomVisionTrainingClient(api_server.url, ApiKeyCredentials(in_headers={"Training-Key": "wrong"}))
    with pytest.raises(CustomVisionErrorException) as excinfo:
        client.get_projects()
    assert excinfo.value.response.status_code == 401


def test_uploads_through_the_sdk_data_call_with_a_file_name(trainer, unique_name, tmp_path):
    project = trainer.create_project(unique_name("cv"))
    path = tmp_path / "leaf.jpg"
    path.write_bytes(jpeg((20, 160, 20), seed=9))
    with open(path, "rb") as stream:
        summary = trainer.create_images_from_data(project.id, stream)
    assert summary.images[0].status == "OK" and summary.images[0].image.width == 320
    big = trainer.create_images_from_data  # a 7 MB body is refused as too large, nothing stored
    with pytest.raises(CustomVisionErrorException) as excinfo:
        big(project.id, b"\xff\xd8" + bytes(7 * 1024 * 1024))
    assert excinfo.value.error.code == "BadRequestImageSizeBytes"
    assert trainer.get_image_count(project.id) == 1
