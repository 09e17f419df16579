"""The malformed-input corpus (tests/coco/corpus.py) replayed through the real drop flow:
files uploaded into Azurite, the blob-created handler run, the dataset entity inspected.

The drop flow infers the kind and validates for training first, so the corpus cases that
declare a kind or validate only for evaluation are covered by tests/coco, not here.
"""
from __future__ import annotations

import pytest

from loupe.coco import Purpose
from loupe.datasets.drop import DropRegistrar
from tests.coco.corpus import CASES, VALID_CASES
from tests.support.data import upload

DROP_CASES = [c for c in CASES if c.expected_kind is None and c.purpose is Purpose.TRAINING and c.expect]
WARNING_CASES = [c for c in CASES if c.expected_kind is None and c.purpose is Purpose.TRAINING and not c.expect]


def test_the_corpus_is_large_enough_for_the_drop_flow():
    assert len(DROP_CASES) >= 30


@pytest.fixture(scope="module")
def registrar(services):
    return DropRegistrar(services.datasets)


@pytest.mark.parametrize("case", DROP_CASES, ids=[c.name for c in DROP_CASES])
def test_each_malformed_drop_is_registered_as_invalid_with_its_error(case, services, registrar, unique_name):
    container = services.storage.container(services.settings.datasets_container)
    name = unique_name("corpus")
    upload(container, name, case.files)
    result = registrar.handle(f"{name}/annotations.json")  # never raises
    assert result.outcome == "registered"
    record = services.datasets.get(name)
    validation = record.validation.wire()
    assert validation["status"] in ("invalid", "evaluationOnly")  # either way: not trainable
    errors = [(e["code"], e["target"]) for e in validation["errors"]]
    for code, target in case.expect:
        wanted = f"annotationFileUris[0].{target}" if target else "annotationFileUris[0]"
        assert any(c == code and t.startswith(wanted) for c, t in errors), (code, wanted, errors)
    assert validation["errorCount"] >= len(case.expect)
    # the entity is whole: it reads back and renders the wire shape
    assert record.wire()["name"] == name


@pytest.mark.parametrize("case", [c for c in VALID_CASES if c.purpose is Purpose.TRAINING],
                         ids=lambda c: c.name)
def test_valid_drops_register_as_valid(case, services, registrar, unique_name):
    container = services.storage.container(services.settings.datasets_container)
    name = unique_name("valid")
    upload(container, name, case.files)
    registrar.handle(f"{name}/annotations.json")
    record = services.datasets.get(name)
    assert record.validation.wire()["status"] == "valid", record.validation.wire()["errors"]
    assert record.annotation_kind is case.kind
    assert record.validation.wire()["multilabel"] is case.multilabel
    assert record.validation.wire()["imageCount"] == case.counts[0]


@pytest.mark.parametrize("case", WARNING_CASES, ids=[c.name for c in WARNING_CASES])
def test_drops_with_only_warnings_register_as_valid_and_say_so(case, services, registrar, unique_name):
    container = services.storage.container(services.settings.datasets_container)
    name = unique_name("warn")
    upload(container, name, case.files)
    registrar.handle(f"{name}/annotations.json")
    validation = services.datasets.get(name).validation.wire()
    assert validation["status"] == "valid"
    warnings = [(w["code"], w["target"]) for w in validation["warnings"]]
    for code, target in case.expect_warnings:
        wanted = f"annotationFileUris[0].{target}" if target else "annotationFileUris[0]"
        assert any(c == code and t.startswith(wanted) for c, t in warnings), (code, wanted, warnings)
