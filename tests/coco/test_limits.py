"""Loupe's own limits in the structure check (docs/wire-contract.md#limits): category names (length,
characters, total), image URL length, bounded echoes of user text, and the policy's cache scope."""
from __future__ import annotations

import json

import pytest

from loupe.coco import Purpose, validate_coco
from loupe.coco.quotas import MAX_CATEGORY_NAME_LENGTH, MAX_CATEGORY_NAMES_CHARS, MAX_URL_LENGTH
from tests.coco.corpus import classification_doc

TRAIN = Purpose.TRAINING


def _errors(doc) -> list[tuple[str, str]]:
    return [(i.code, i.target) for i in validate_coco(json.dumps(doc).encode(), purpose=TRAIN).errors]


def test_a_category_name_at_the_limit_passes_one_past_it_does_not():
    doc = classification_doc()
    doc["categories"][0]["name"] = "a" * MAX_CATEGORY_NAME_LENGTH
    assert _errors(doc) == []
    doc["categories"][1]["name"] = "b" * 100_000
    report = validate_coco(json.dumps(doc).encode(), purpose=TRAIN)
    assert [(i.code, i.target) for i in report.errors] == [("InvalidCategoryName", "categories[1].name")]
    assert "100000 characters" in report.errors[0].message and len(report.errors[0].message) < 300


@pytest.mark.parametrize("char", ["\x00", "\n", "\x1b", "\x7f", "\x9b", "\u202a", "\u202e", "\u2067", "\u2069"])
def test_control_and_bidi_characters_in_category_names(char):
    doc = classification_doc()
    doc["categories"][1]["name"] = f"do{char}g"
    report = validate_coco(json.dumps(doc).encode(), purpose=TRAIN)
    assert [(i.code, i.target) for i in report.errors] == [("InvalidCategoryName", "categories[1].name")]
    assert f"U+{ord(char):04X}" in report.errors[0].message and "position 2" in report.errors[0].message


def test_ordinary_unicode_names_pass():
    doc = classification_doc(names=("árbol", "猫", "שלום", "a b-c_d.e"))
    assert _errors(doc) == []


def test_all_category_names_together_are_bounded():
    n = MAX_CATEGORY_NAMES_CHARS // 200 + 1
    doc = classification_doc(per_category=1, names=tuple(f"{i:04d}" + "x" * 196 for i in range(n)))
    assert ("CategoryNamesTooLong", "categories") in _errors(doc)


def test_duplicate_names_are_quoted_short():
    doc = classification_doc()
    doc["categories"][1]["name"] = doc["categories"][0]["name"] = "z" * MAX_CATEGORY_NAME_LENGTH
    report = validate_coco(json.dumps(doc).encode(), purpose=TRAIN)
    assert [w.code for w in report.warnings] == ["DuplicateCategoryName"]
    assert len(report.warnings[0].message) < 250


def test_image_urls_are_bounded():
    doc = classification_doc()
    doc["images"][0]["absolute_url"] = "https://a.blob.core.windows.net/c/" + "x" * MAX_URL_LENGTH
    report = validate_coco(json.dumps(doc).encode(), purpose=TRAIN)
    assert [(i.code, i.target) for i in report.errors] == [("InvalidUrl", "images[0].absolute_url")]
    assert len(report.errors[0].message) < 300


class _ByContainer:
    """A policy that judges by container, as Loupe's own account needs, with its cache scope."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, url: str) -> bool:
        self.asked.append(url)
        return "/private/" not in url

    def scope(self, url: str) -> str:
        return url.rsplit("/", 1)[0]

    def why(self, url: str) -> str:
        return "is in a private container"


def test_a_policy_with_a_scope_is_asked_per_scope_not_per_origin():
    doc = classification_doc()
    doc["images"][0]["absolute_url"] = "https://h.example/public/1.png"
    doc["images"][1]["absolute_url"] = "https://h.example/public/2.png"
    doc["images"][2]["absolute_url"] = "https://h.example/private/3.png"
    policy = _ByContainer()
    report = validate_coco(json.dumps(doc).encode(), purpose=TRAIN, url_allowed=policy)
    assert policy.asked == ["https://h.example/public/1.png", "https://h.example/private/3.png"]
    assert [(i.code, i.target) for i in report.errors] == [("ImageUrlNotAllowed", "images[2].absolute_url")]
    assert "private container" in report.errors[0].message
