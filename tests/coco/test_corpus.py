"""Every corpus case through validate_coco + check_images: the expected code must appear at the
expected place; valid datasets give no errors and the right counts, kind and categories."""

from __future__ import annotations

import pytest

from loupe.coco import (
    IMAGE_NOT_FOUND,
    CocoReport,
    ImageCheckResult,
    ImageEntry,
    ImageFetchError,
    Issue,
    check_images,
    image_limits_for,
    validate_coco,
)
from tests.coco.corpus import ANNOTATIONS, CASES, VALID_CASES, CorpusCase, url_allowed


def dict_fetcher(files: dict[str, bytes]):
    def fetch(entry: ImageEntry) -> bytes:
        if entry.url is not None:  # the corpus serves only relative names
            raise ImageFetchError(IMAGE_NOT_FOUND, f"no image at {entry.url}")
        try:
            return files[entry.file_name]
        except KeyError:
            raise ImageFetchError(
                IMAGE_NOT_FOUND, f"'{entry.file_name}' does not exist beside the COCO file"
            ) from None

    return fetch


def run(case) -> tuple[CocoReport, ImageCheckResult]:
    report = validate_coco(
        case.files[ANNOTATIONS],
        purpose=case.purpose,
        expected_kind=case.expected_kind,
        url_allowed=url_allowed,
    )
    images = check_images(
        report,
        dict_fetcher(case.files),
        limits=image_limits_for(case.purpose),
        full_limit=100,
        sample_size=10,
        concurrency=4,
    )
    return report, images


def matches(issue: Issue, code: str, target: str) -> bool:
    if issue.code != code:
        return False
    if issue.target == target:
        return True
    return bool(target) and issue.target.startswith(target) and issue.target[len(target)] in ".["


def describe(issues: list[Issue]) -> str:
    return "\n".join(f"  {i.code} @ {i.target!r}: {i.message}" for i in issues)


def test_the_corpus_is_big_and_distinct():
    assert len(CASES) >= 35
    assert len({c.name for c in CASES} | {c.name for c in VALID_CASES}) == len(CASES) + len(VALID_CASES)
    assert all(c.expect or c.expect_warnings for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_case(case: CorpusCase):
    report, images = run(case)
    stage_errors = report.errors if case.stage == "structure" else images.errors
    for code, target in case.expect:
        assert any(matches(i, code, target) for i in stage_errors), (
            f"{case.name}: expected {code} at {target!r} from the {case.stage} check; got\n"
            f"{describe(report.errors + images.errors)}"
        )
    for code, target in case.expect_warnings:
        warnings = report.warnings + images.warnings
        assert any(matches(i, code, target) for i in warnings), (
            f"{case.name}: expected warning {code} at {target!r}; got\n{describe(warnings)}"
        )
    if case.stage == "images":  # the file itself is fine, so the problem is the image's alone
        assert report.ok, describe(report.errors)
        assert images.depth == "full" and images.checked == report.image_count
    if not case.expect:  # warnings only: the dataset is usable
        assert report.ok and images.ok, describe(report.errors + images.errors)
    every = report.errors + report.warnings + images.errors + images.warnings
    assert not [i for i in every if i.code == "InternalValidationError"]
    for issue in report.errors + images.errors:
        assert issue.message and issue.code[0].isupper()
        if issue.target:  # messages name the place they are about
            assert (
                issue.target.split(".")[0].split("[")[0] in issue.message or issue.target in issue.message
            ), issue


@pytest.mark.parametrize("case", VALID_CASES, ids=lambda c: c.name)
def test_valid_datasets(case):
    report, images = run(case)
    assert report.ok and images.ok, describe(report.errors + images.errors)
    assert report.warning_count == 0 and images.warning_count == 0, describe(
        report.warnings + images.warnings
    )
    assert report.annotation_kind is case.kind
    assert report.multilabel is case.multilabel
    assert (report.image_count, report.annotation_count, report.category_count) == case.counts
    assert {c.name: (c.image_count, c.annotation_count) for c in report.categories} == case.categories
    assert images.depth == "full" and images.checked == images.total == case.counts[0]
    assert [e.index for e in report.images] == list(range(case.counts[0]))


def test_report_json_leaves_out_the_image_entries():
    report, _ = run(VALID_CASES[0])
    dumped = report.model_dump(mode="json")
    assert "images" not in dumped and dumped["image_count"] == 4
    assert len(report.images) == 4 and report.images[0].file_name == "images/1.png"
    assert "images" not in report.model_dump_json()
