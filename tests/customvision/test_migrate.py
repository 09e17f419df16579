"""``python -m loupe.migrate customvision`` between two real Loupe servers, through the SDK on both
sides: a second server (its own Services and key) is the source, the session's server the target."""
from __future__ import annotations

import pytest
import requests
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.training.models import (
    ImageFileCreateBatch,
    ImageFileCreateEntry,
    Region,
)
from msrest.authentication import ApiKeyCredentials

from loupe.migrate.cli import main
from loupe.migrate.customvision import SOURCE_ID_KEY, Migration, marker
from tests.conftest import TEST_API_KEY
from tests.customvision.conftest import jpeg

SOURCE_KEY = "source-key-0123456789"
DETECTION = "da2e3a8a-40a5-4171-82f4-58522f70fbc1"


@pytest.fixture(scope="module")
def source_server(make_settings):
    from loupe.api.app import create_app
    from loupe.local.azurite import free_port
    from loupe.local.server import ServerThread
    from loupe.services import Services

    services = Services(make_settings(api_keys=[SOURCE_KEY])).ready()
    server = ServerThread(create_app(services), port=free_port()).start()
    yield server
    server.stop()
    services.close()


@pytest.fixture(scope="module")
def source(source_server) -> CustomVisionTrainingClient:
    return CustomVisionTrainingClient(source_server.url, ApiKeyCredentials(in_headers={"Training-key": SOURCE_KEY}))


def _detection_project(source, name: str):
    project = source.create_project(name, description="parcels", domain_id=DETECTION)
    box, label = source.create_tag(project.id, "box"), source.create_tag(project.id, "label", description="sticker")
    for i in range(3):
        batch = ImageFileCreateBatch(images=[ImageFileCreateEntry(
            name=f"{i}.jpg", contents=jpeg((60 * i, 100, 160), seed=i),
            regions=[Region(tag_id=box.id, left=0.1, top=0.2, width=0.5, height=0.4),
                     Region(tag_id=label.id, left=0.6 - 0.1 * i, top=0.5, width=0.2, height=0.1)])],
            metadata={"shelf": f"s{i}"})
        assert source.create_images_from_files(project.id, batch).is_batch_successful
    source.create_images_from_data(project.id, jpeg((1, 2, 3), seed=7))  # untagged
    return project


def _classification_project(source, name: str):
    project = source.create_project(name, classification_type="Multilabel")
    cat, dog = source.create_tag(project.id, "cat"), source.create_tag(project.id, "dog")
    source.create_images_from_data(project.id, jpeg((200, 10, 10), seed=11), tag_ids=[cat.id, dog.id])
    source.create_images_from_data(project.id, jpeg((10, 200, 10), seed=12), tag_ids=[dog.id])
    return project


def _copy_of(trainer, project):
    found = [p for p in trainer.get_projects() if marker(project.id) in (p.description or "")]
    assert len(found) == 1, found
    return found[0]


def _images(client, project_id: str) -> dict[bytes, object]:
    return {requests.get(i.original_image_uri, timeout=30).content: i
            for i in client.get_images(project_id, take=256)}


def _labels(image) -> tuple:
    return (sorted((r.tag_name, round(r.left, 6), round(r.top, 6), round(r.width, 6), round(r.height, 6))
                   for r in image.regions or []),
            sorted(t.tag_name for t in image.tags or []))


def _migrate(source_server, api_server, *projects: str, key: str = SOURCE_KEY, target_key: str = TEST_API_KEY,
             quiet: bool = True) -> int:
    argv = ["customvision", "--source-endpoint", source_server.url, "--source-key", key,
            "--target-endpoint", api_server.url, "--target-key", target_key] + (["--quiet"] if quiet else [])
    for project in projects:
        argv += ["--project", project]
    return main(argv)


def test_migration_copies_projects_once(source, source_server, api_server, trainer, unique_name, capsys):
    detection = _detection_project(source, unique_name("parcels"))
    classification = _classification_project(source, unique_name("pets"))
    assert _migrate(source_server, api_server, detection.id, classification.id, quiet=False) == 0
    captured = capsys.readouterr()
    assert "done: 2 projects, 6 images copied, 0 already there, 0 failed" in captured.out, captured
    assert detection.name in captured.err  # the progress bar

    copy = _copy_of(trainer, detection)
    assert copy.name == detection.name and copy.settings.domain_id == DETECTION
    assert copy.description.startswith("parcels ")
    tags = {t.name: t for t in trainer.get_tags(copy.id)}
    assert set(tags) == {"box", "label"} and tags["label"].description == "sticker"
    assert {t.name: t.image_count for t in tags.values()} == {"box": 3, "label": 3}
    originals, copies = _images(source, detection.id), _images(trainer, copy.id)
    assert set(copies) == set(originals) and len(copies) == 4
    for data, image in copies.items():
        assert _labels(image) == _labels(originals[data])
        assert {r.tag_id for r in image.regions or []} <= {t.id for t in tags.values()}
        assert image.metadata == {**(originals[data].metadata or {}), SOURCE_ID_KEY: originals[data].id}

    pets = _copy_of(trainer, classification)
    assert pets.settings.classification_type == "Multilabel"
    pet_originals, pet_copies = _images(source, classification.id), _images(trainer, pets.id)
    assert {d: _labels(i) for d, i in pet_copies.items()} == {d: _labels(i) for d, i in pet_originals.items()}

    # a rerun copies nothing; one image lost on the target is copied again, alone
    assert _migrate(source_server, api_server, detection.id, classification.id) == 0
    assert "done: 2 projects, 0 images copied, 6 already there, 0 failed" in capsys.readouterr().out
    assert trainer.get_image_count(copy.id) == 4 and len(trainer.get_tags(copy.id)) == 2
    trainer.delete_images(copy.id, [next(iter(copies.values())).id])
    assert _migrate(source_server, api_server, detection.id) == 0
    assert "done: 1 projects, 1 images copied, 3 already there, 0 failed" in capsys.readouterr().out
    assert trainer.get_image_count(copy.id) == 4
    _copy_of(trainer, detection)  # still one copy


def test_rejected_keys_and_unknown_projects_stop_before_copying(source, source_server, api_server, trainer,
                                                                 unique_name, capsys):
    project = _classification_project(source, unique_name("keys"))
    assert _migrate(source_server, api_server, project.id, key="wrong-key") == 2
    assert "the source rejected the key" in capsys.readouterr().err
    assert _migrate(source_server, api_server, project.id, target_key="wrong-key") == 2
    assert "the target rejected the key" in capsys.readouterr().err
    assert _migrate(source_server, api_server, "00000000-0000-0000-0000-000000000000") == 2
    assert "the source has no project 00000000-0000-0000-0000-000000000000" in capsys.readouterr().err
    assert not [p for p in trainer.get_projects() if marker(project.id) in (p.description or "")]


def test_a_training_the_target_refuses_is_reported(source, source_server, api_server, trainer, unique_name, capsys):
    project = source.create_project(unique_name("tiny"))
    tag = source.create_tag(project.id, "only")
    source.create_images_from_data(project.id, jpeg((90, 90, 9), seed=31), tag_ids=[tag.id])  # too few to train
    argv = ["customvision", "--source-endpoint", source_server.url, "--source-key", SOURCE_KEY, "--target-endpoint",
            api_server.url, "--target-key", TEST_API_KEY, "--project", project.id, "--train", "--quiet"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "1 images copied" in captured.out and "training was not started" in captured.err, captured
    assert trainer.get_image_count(_copy_of(trainer, project).id) == 1


def test_images_that_fail_are_retried_by_the_next_run(source, source_server, api_server, trainer, unique_name,
                                                      capsys, monkeypatch):
    project = _classification_project(source, unique_name("flaky"))
    real_download = Migration._download
    first = []

    def fail_once(self, image, outcome):
        if not first:
            first.append(image.id)
            outcome.failed.append(f"{image.id}: the download failed (injected)")
            return None
        return real_download(self, image, outcome)

    monkeypatch.setattr(Migration, "_download", fail_once)
    assert _migrate(source_server, api_server, project.id) == 1
    captured = capsys.readouterr()
    assert "1 images copied, 0 already there, 1 failed" in captured.out
    assert "run the command again" in captured.err
    assert _migrate(source_server, api_server, project.id) == 0
    assert "1 images copied, 1 already there, 0 failed" in capsys.readouterr().out
    assert trainer.get_image_count(_copy_of(trainer, project).id) == 2
