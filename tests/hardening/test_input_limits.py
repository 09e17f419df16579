"""Input limits of dataset registration (docs/wire-contract.md#limits), each attack replayed
against the real server, Azurite and drop flow: oversize metadata, unbounded work per request,
control and bidirectional characters, and dataset URLs into Loupe's private containers."""
from __future__ import annotations

import json
import logging
import time

import pytest

from loupe.datasets.drop import DropRegistrar
from loupe.local.watcher import BlobWatcher
from loupe.storage.names import BLOB_EVENTS_TABLE
from tests.api import conftest as api_fixtures
from tests.support.data import classification_files, upload

http = api_fixtures.http  # the API tests' client: key and api-version added

CLASSIFICATION = "imageClassification"


@pytest.fixture
def datasets_container(services):
    return services.storage.container(services.settings.datasets_container)


@pytest.fixture
def staged(datasets_container, unique_name):
    """Uploads files under staging/ of the datasets container; returns name -> URL."""

    def make(files: dict[str, bytes]) -> dict[str, str]:
        return upload(datasets_container, f"staging/{unique_name('files')}", files)

    return make


def _with(files: dict[str, bytes], change) -> dict[str, bytes]:
    coco = json.loads(files["annotations.json"])
    change(coco)
    return {**files, "annotations.json": json.dumps(coco).encode()}


def _long_names(coco: dict) -> None:
    for category in coco["categories"]:
        category["name"] = f"{category['id']}" + "n" * 100_000


def _ten_classes() -> dict[str, bytes]:
    return classification_files([f"c{i}" for i in range(10)], per_class=2, size=(32, 32))


def _put(http, name: str, uris: list[str], **extra):
    return http("PUT", f"/computervision/datasets/{name}",
                json={"annotationKind": CLASSIFICATION, "annotationFileUris": uris, **extra})


def _gone(http, name: str) -> bool:
    return http("GET", f"/computervision/datasets/{name}").status_code == 404


# --- oversize metadata

def test_100k_character_category_names_are_a_400_naming_the_field(http, staged, unique_name):
    uri = staged(_with(_ten_classes(), _long_names))["annotations.json"]
    name = unique_name("longcat")
    response = _put(http, name, [uri])
    assert response.status_code == 400, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == "DatasetInvalidAnnotation"
    targets = [d["target"] for d in error["details"]]
    assert "annotationFileUris[0].categories[0].name" in targets, targets
    assert "100001 characters" in error["message"] and "at most 255" in error["message"]
    assert len(response.content) < 20_000  # the names are echoed as short prefixes only
    assert _gone(http, name)


def test_a_950k_character_custom_property_is_a_400_naming_it(http, staged, unique_name):
    uri = staged(classification_files())["annotations.json"]
    name = unique_name("bigprop")
    response = _put(http, name, [uri], customProperties={"notes": "x" * 950_000})
    assert response.status_code == 400, response.text[:500]
    error = response.json()["error"]
    assert (error["code"], error["target"]) == ("InvalidRequest", "customProperties.notes")
    assert "950000 characters" in error["message"]
    assert len(response.content) < 5_000
    assert _gone(http, name)


@pytest.mark.parametrize("props, target", [
    ({"k" * 300: "v"}, "customProperties"),
    ({f"k{i}": "v" * 4000 for i in range(5)}, "customProperties"),
])
def test_custom_property_keys_and_total_are_bounded(http, staged, unique_name, props, target):
    uri = staged(classification_files())["annotations.json"]
    name = unique_name("props")
    response = _put(http, name, [uri], customProperties=props)
    assert response.status_code == 400, response.text[:500]
    assert response.json()["error"]["target"].startswith(target)
    assert _gone(http, name)


def test_a_patch_with_oversize_custom_properties_changes_nothing(http, staged, unique_name):
    uri = staged(classification_files())["annotations.json"]
    name = unique_name("patchprop")
    created = _put(http, name, [uri], customProperties={"a": "b"})
    assert created.status_code == 201, created.text
    patched = http("PATCH", f"/computervision/datasets/{name}", json={"customProperties": {"a": "y" * 950_000}})
    assert patched.status_code == 400 and patched.json()["error"]["target"] == "customProperties.a"
    after = http("GET", f"/computervision/datasets/{name}").json()
    assert (after["customProperties"], after["eTag"]) == ({"a": "b"}, created.json()["eTag"])


# --- the same file dropped

def _events(services, dataset: str) -> list[dict]:
    table = services.storage.table(BLOB_EVENTS_TABLE)
    return list(table.query_entities("PartitionKey eq @d", parameters={"d": dataset}))


def test_a_dropped_file_with_huge_names_becomes_one_invalid_entry(services, datasets_container, unique_name,
                                                                  caplog):
    name = unique_name("droplong")
    upload(datasets_container, name, _with(_ten_classes(), _long_names))
    blob = f"{name}/annotations.json"
    watcher = BlobWatcher(DropRegistrar(services.datasets))
    caplog.set_level(logging.INFO)
    outcomes = []
    for _ in range(4):  # the watcher polls about once a second; each poll must not revalidate
        outcomes += [outcome for delivered, outcome in watcher.poll_once() if delivered == blob]
    assert outcomes == ["registered"]
    validation = services.datasets.get(name).validation.wire()
    assert validation["status"] == "invalid"
    targets = [e["target"] for e in validation["errors"]]
    assert "annotationFileUris[0].categories[0].name" in targets, targets
    assert not [r for r in caplog.records if r.exc_info and name in r.getMessage()]
    [claim] = _events(services, name)
    assert (claim["state"], claim["outcome"]) == ("done", "registered")
    # a watcher restarted later finds the claim done: still no second validation
    assert dict(BlobWatcher(DropRegistrar(services.datasets)).poll_once())[blob] == "duplicate"


def _drop_failing_with(error: Exception, container, name: str, monkeypatch) -> tuple[str, str, list[str]]:
    """A dropped dataset whose registration raises ``error`` (a bug or a storage outage cannot be
    produced on cue against a real Azurite); returns (name, blob, the datasets it was tried for)."""
    upload(container, name, classification_files())
    calls: list[str] = []

    def failing(self, dataset):
        calls.append(dataset)
        raise error

    monkeypatch.setattr(DropRegistrar, "_register", failing)
    return name, f"{name}/annotations.json", calls


def test_a_drop_that_keeps_failing_is_recorded_once_not_retried(services, datasets_container, unique_name,
                                                                monkeypatch):
    name, blob, calls = _drop_failing_with(KeyError("a bug in the handler"), datasets_container,
                                           unique_name("dropbug"), monkeypatch)
    watcher = BlobWatcher(DropRegistrar(services.datasets))
    outcomes = []
    for _ in range(3):
        outcomes += [outcome for delivered, outcome in watcher.poll_once() if delivered == blob]
    assert outcomes == ["failed"] and calls == [name]
    [claim] = _events(services, name)
    assert (claim["state"], claim["outcome"]) == ("done", "failed")
    assert "KeyError" in claim["reason"]


def test_transient_failures_are_retried_a_bounded_number_of_times(services, datasets_container, unique_name,
                                                                  monkeypatch):
    from loupe.datasets import drop

    name, blob, calls = _drop_failing_with(ConnectionError("storage went away"), datasets_container,
                                           unique_name("dropflaky"), monkeypatch)
    registrar = DropRegistrar(services.datasets)
    for _ in range(drop.MAX_TRANSIENT_ATTEMPTS - 1):
        with pytest.raises(ConnectionError):
            registrar.handle(blob)
    result = registrar.handle(blob)  # the last attempt records the failure instead of raising
    assert result.outcome == "failed" and "ConnectionError" in result.detail
    assert registrar.handle(blob).outcome == "duplicate"
    assert len(calls) == drop.MAX_TRANSIENT_ATTEMPTS
    [claim] = _events(services, name)
    assert (claim["state"], claim["outcome"]) == ("done", "failed")


# --- unbounded work per request

def test_the_same_file_listed_100_times_is_refused_quickly(http, staged, unique_name):
    files = _with(classification_files(), lambda coco: coco.update(info={"padding": "p" * 4_000_000}))
    uri = staged(files)["annotations.json"]
    name = unique_name("hundred")
    started = time.monotonic()
    response = _put(http, name, [uri] * 100)
    assert response.status_code == 400, response.text[:500]
    assert response.json()["error"]["target"] == "annotationFileUris"
    assert time.monotonic() - started < 5
    twice = _put(http, name, [uri, uri.replace("annotations.json", "annotations%2Ejson")])
    assert twice.status_code == 400, twice.text[:500]
    error = twice.json()["error"]
    assert (error["code"], error["target"]) == ("DatasetInvalidAnnotationUri", "annotationFileUris[1]")
    assert "annotationFileUris[0]" in error["message"]
    assert _gone(http, name)


def test_the_bytes_read_per_registration_are_bounded(http, staged, unique_name, monkeypatch):
    from loupe.datasets import limits

    files = classification_files(("a", "b"))
    budget = 2 * len(files["annotations.json"]) - 1  # the second file is one byte too many
    monkeypatch.setattr(limits, "MAX_ANNOTATION_BYTES_PER_DATASET", budget)
    first = staged(files)["annotations.json"]
    second = staged(files)["annotations.json"]
    name = unique_name("bytes")
    response = _put(http, name, [first, second])
    assert response.status_code == 400, response.text[:500]
    error = response.json()["error"]
    assert (error["code"], error["target"]) == ("DatasetInvalidAnnotationUri", "annotationFileUris[1]")
    assert "together" in error["message"] and str(budget) in error["message"]
    assert _gone(http, name)


# --- control and bidirectional characters

BAD_CHARACTERS = ["\x00", "\x1b", "\x85", "\u202e", "\u2066", "\t"]


@pytest.mark.parametrize("char", BAD_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in BAD_CHARACTERS])
def test_control_and_bidi_characters_in_category_names_are_refused(http, staged, unique_name, char):
    files = _with(classification_files(), lambda coco: coco["categories"][1].update(name=f"gre{char}en"))
    name = unique_name("ctl")
    response = _put(http, name, [staged(files)["annotations.json"]])
    assert response.status_code == 400, response.text[:500]
    error = response.json()["error"]
    assert error["target"] == "annotationFileUris[0].categories[1].name"
    assert f"U+{ord(char):04X}" in error["message"]
    assert _gone(http, name)


@pytest.mark.parametrize("char", BAD_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in BAD_CHARACTERS])
def test_control_and_bidi_characters_in_custom_properties_are_refused(http, staged, unique_name, char):
    uri = staged(classification_files())["annotations.json"]
    for props, target in (({"team": f"a{char}b"}, "customProperties.team"),
                          ({f"te{char}am": "x"}, "customProperties")):
        name = unique_name("ctlprop")
        response = _put(http, name, [uri], customProperties=props)
        assert response.status_code == 400, response.text[:500]
        assert response.json()["error"]["target"] == target
        assert f"U+{ord(char):04X}" in response.json()["error"]["message"]
        assert _gone(http, name)


def test_a_dropped_file_with_a_bidi_category_name_is_invalid_with_the_place(services, datasets_container,
                                                                           unique_name):
    name = unique_name("dropbidi")
    files = _with(classification_files(), lambda coco: coco["categories"][0].update(name="evil\u202egpj.exe"))
    upload(datasets_container, name, files)
    assert DropRegistrar(services.datasets).handle(f"{name}/annotations.json").outcome == "registered"
    validation = services.datasets.get(name).validation.wire()
    assert validation["status"] == "invalid"
    assert [e["target"] for e in validation["errors"]][:1] == ["annotationFileUris[0].categories[0].name"]


# --- Loupe's private containers

@pytest.fixture
def secret_in_models(services, unique_name):
    """A valid COCO file and its images in Loupe's private models container; returns name -> URL."""
    models = services.storage.container(services.settings.models_container)
    return upload(models, f"{unique_name('secret')}/jobs", classification_files())


@pytest.mark.parametrize("key", ["absolute_url", "coco_url"])
def test_an_image_url_into_the_models_container_is_refused(http, staged, unique_name, secret_in_models, key):
    files = _with(classification_files(), lambda coco: coco["images"][0].update({key: secret_in_models["images/red_0.jpg"]}))
    name = unique_name("private")
    response = _put(http, name, [staged(files)["annotations.json"]])
    assert response.status_code == 400, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == "DatasetInvalidAnnotation"
    assert error["target"] == f"annotationFileUris[0].images[0].{key}"
    assert "'models'" in error["message"] and "private" in error["message"]
    assert _gone(http, name)


def test_an_allowed_image_does_not_open_the_models_container_for_the_next(http, staged, unique_name,
                                                                           secret_in_models, datasets_container):
    """The verdict on a URL is cached; Loupe's account (path-style on Azurite) shares one origin for
    every container, so the cache must not carry the datasets container's 'yes' over to models/."""
    secret = secret_in_models["images/red_0.jpg"]
    shouting = secret.replace("http://", "HTTP://")  # another spelling of the same blob
    for url in (secret, shouting):
        files = classification_files()
        own = upload(datasets_container, f"staging/{unique_name('own')}", {"a.jpg": files["images/red_1.jpg"]})

        def point(coco, url=url, own=own):
            coco["images"][0]["absolute_url"] = own["a.jpg"]
            coco["images"][1]["absolute_url"] = url
        name = unique_name("cache")
        response = _put(http, name, [staged(_with(files, point))["annotations.json"]])
        assert response.status_code == 400, response.text[:500]
        assert response.json()["error"]["target"] == "annotationFileUris[0].images[1].absolute_url"
        assert _gone(http, name)


def test_annotation_uris_into_private_containers_are_refused(http, services, unique_name, secret_in_models,
                                                             datasets_container):
    secret = secret_in_models["annotations.json"]
    dot_dot = f"{datasets_container.url}/staging/../.." + secret[len(datasets_container.url) - len("/datasets"):]
    # HTTP stacks resolve "..": with a bearer token (managed identity) the second URI reads models/
    for uri, why in ((secret, "private container"), (dot_dot, "'..' path segments")):
        name = unique_name("privcoco")
        response = _put(http, name, [uri])
        assert response.status_code == 400, response.text[:500]
        error = response.json()["error"]
        assert (error["code"], error["target"]) == ("DatasetInvalidAnnotationUri", "annotationFileUris[0]")
        assert why in error["message"], error["message"]
        assert _gone(http, name)


def test_the_job_side_refuses_private_image_urls_too(services, secret_in_models, datasets_container):
    from loupe.storage.blob_access import BlobReader, BlobUrlError, parse_blob_url
    from loupe.storage.dataset_files import DatasetFiles

    files = DatasetFiles(BlobReader(services.storage), services.settings)
    coco = parse_blob_url(f"{datasets_container.url}/staging/x/annotations.json", services.storage)
    assert files.image_url_allowed(coco)(f"{datasets_container.url}/staging/x/a.jpg")
    secret = secret_in_models["images/red_0.jpg"]
    assert not files.image_url_allowed(coco)(secret)
    with pytest.raises(BlobUrlError, match="private"):
        files.image_location(secret, "a.jpg", coco)
    # encoded slashes and dots: the same container in the text, another one once resolved
    from loupe.coco import Purpose, validate_coco
    from tests.coco.corpus import classification_doc

    escaped = f"{datasets_container.url}/x%2F..%2F..%2F{secret[len(datasets_container.url) - len('datasets'):]}"
    doc = classification_doc()
    doc["images"][0]["absolute_url"] = f"{datasets_container.url}/staging/x/a.jpg"
    doc["images"][1]["absolute_url"] = escaped
    report = validate_coco(json.dumps(doc).encode(), purpose=Purpose.TRAINING,
                           url_allowed=files.image_url_allowed(coco))
    assert [(i.code, i.target) for i in report.errors] == [("ImageUrlNotAllowed", "images[1].absolute_url")]
    with pytest.raises(BlobUrlError, match="'..' path segments"):
        files.image_location(escaped, "a.jpg", coco)


# --- the record always fits one Table entity

def test_the_largest_allowed_dataset_record_fits_one_entity():
    """Every limit at its maximum at once (astral characters take two UTF-16 units): the summary is
    trimmed to its budget and the record stays below the entity's 1 MiB."""
    from loupe.coco.quotas import MAX_CATEGORY_NAMES_CHARS
    from loupe.datasets import limits
    from loupe.datasets.record import DatasetRecord
    from loupe.datasets.validation import (
        MAX_CATEGORIES,
        CategoryCount,
        DatasetValidation,
        Problem,
        fit_for_storage,
    )
    from loupe.enums import AnnotationKind
    from loupe.storage.entities import ENTITY_BUDGET_BYTES, entity_bytes

    per_name = MAX_CATEGORY_NAMES_CHARS // MAX_CATEGORIES
    problem = Problem(code="InvalidBoundingBox", target="annotationFileUris[19]." + "x" * 270,
                      message="\U0001F600" * limits.MAX_PROBLEM_MESSAGE)
    validation = fit_for_storage(DatasetValidation(
        status="invalid", depth="full", annotation_kind=AnnotationKind.DETECTION, multilabel=False,
        categories=[CategoryCount(name=f"{i:04d}" + "\U0001F600" * (per_name - 4), image_count=10**6,
                                  annotation_count=10**7) for i in range(MAX_CATEGORIES)],
        errors=[problem] * 50, warnings=[problem] * 50, error_count=10**9, warning_count=10**9))
    assert validation.errors and validation.error_count == 10**9
    uris = [f"https://a.blob.core.windows.net/c/{i:02d}" + "u" * (limits.MAX_URI_LENGTH - 40)
            for i in range(limits.MAX_ANNOTATION_FILES)]
    record = DatasetRecord(
        name="n" * 255, annotation_kind=AnnotationKind.DETECTION, annotation_file_uris=uris,
        sas_token="s" * limits.MAX_SAS_TOKEN_LENGTH, source="blob", validation=validation,
        custom_properties={f"{i}" + "k" * 255: "\U0001F600" * 1400 for i in range(limits.MAX_CUSTOM_PROPERTIES)},
        blob_etags={uri: '"0x8DC0123456789AB"' for uri in uris})
    assert record.oversize_field() is None
    assert entity_bytes(record.to_entity()) <= ENTITY_BUDGET_BYTES


def test_an_oversize_record_names_its_largest_field():
    from loupe.datasets.record import DatasetRecord
    from loupe.enums import AnnotationKind

    record = DatasetRecord(name="n", annotation_kind=AnnotationKind.CLASSIFICATION, annotation_file_uris=["u"],
                           custom_properties={"a": "x" * 600_000})
    assert record.oversize_field() == "customProperties"
