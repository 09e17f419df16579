"""The studio's pages of a trained classification project, in Chromium: the precision-recall curve,
the confusion matrix and the images the model got wrong; the ONNX export downloaded through its
button; the iteration's model on the Image Analysis models page and its try-it page.

One project, trained once through the API for the whole module (training is the slow part)."""
from __future__ import annotations

import io
import re
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.training.models import (
    ImageFileCreateBatch,
    ImageFileCreateEntry,
)
from msrest.authentication import ApiKeyCredentials

from loupe import sample_data
from tests.conftest import TEST_API_KEY
from tests.customvision.conftest import upload_sample, wait_trained


@dataclass
class Trained:
    name: str
    project_id: str
    iteration_id: str
    tags: list[str]


@pytest.fixture(scope="module")
def trained(api_server) -> Trained:
    trainer = CustomVisionTrainingClient(api_server.url, ApiKeyCredentials(in_headers={"Training-Key": TEST_API_KEY}))
    name = f"studio-trained-{uuid.uuid4().hex[:6]}"
    project = trainer.create_project(name, classification_type="Multiclass")
    sample = sample_data.classification("train", per_class=5)
    tags = upload_sample(trainer, project.id, sample)
    iteration = wait_trained(trainer, project.id, trainer.train_project(project.id).id)
    assert iteration.status == "Completed", iteration.status
    # untagged images after the training, for the smart labeler
    untagged = sample_data.classification("test", per_class=1).images
    summary = trainer.create_images_from_files(project.id, ImageFileCreateBatch(
        images=[ImageFileCreateEntry(name=n, contents=d) for n, d in untagged.items()]))
    assert summary.is_batch_successful
    return Trained(name, project.id, iteration.id, sorted(tags))


def _open_project(studio, trained: Trained, tab: str) -> None:
    studio.open()
    studio.sign_in()
    studio.page.get_by_role("link", name=trained.name, exact=True).click()
    studio.page.get_by_role("heading", name=trained.name, exact=True).wait_for()
    studio.page.get_by_role("tab", name=tab, exact=True).click()


def test_the_precision_recall_curve_confusion_matrix_and_mistakes(studio, trained):
    page = studio.page
    _open_project(studio, trained, "Performance")
    page.locator("#pr-curve .overall-line").wait_for(timeout=60_000)
    points = page.locator("#pr-curve .overall-line").get_attribute("points").split()
    assert 2 <= len(points) <= 19, points  # thresholds where nothing is predicted are no point
    assert page.locator("#pr-curve .current").count() == 1
    matrix = page.locator("#confusion-matrix")
    matrix.wait_for()
    assert matrix.locator("tbody tr").count() == len(trained.tags)
    assert matrix.locator("thead th").count() == len(trained.tags) + 2  # the corner and "(none)"
    counts = [int(c) for c in matrix.locator("tbody td").all_inner_texts()]
    held_out = int(re.search(r"over (\d+) held-out", matrix.locator("caption").inner_text())[1])
    assert held_out > 0 and sum(counts) == held_out, (counts, held_out)  # multiclass: one cell per image
    page.locator("#wrong-images").get_by_text(re.compile(r"held-out image|held out")).first.wait_for()
    studio.both("performance-extras")

    # at 100% (almost) nothing is predicted: the mistakes are recomputed in the page, "(none)" fills up
    page.get_by_label("Probability threshold", exact=True).focus()
    page.keyboard.press("End")
    text = page.locator("#wrong-images p").first
    text.get_by_text(re.compile(r"at 100\.0%")).wait_for()
    wrong = int(re.match(r"(\d+) of", text.inner_text())[1]) if text.inner_text()[0].isdigit() else 0
    assert page.locator("#wrong-images figure").count() == min(wrong, 24)
    assert sum(int(c) for c in matrix.locator("tbody td").all_inner_texts()) == held_out
    assert int(matrix.locator("tbody tr td:last-child").all_inner_texts()[0]) >= 0
    page.wait_for_function("() => [...document.querySelectorAll('#wrong-images img')].every(i => i.complete && i.naturalWidth > 0)")
    studio.both("performance-mistakes")
    studio.check_clean()


def test_an_onnx_export_downloads_through_its_button(studio, trained, tmp_path: Path):
    page = studio.page
    _open_project(studio, trained, "Export")
    row = page.locator('li[data-export="onnx"]')
    row.get_by_role("button", name="Export ONNX", exact=True).click()
    link = row.get_by_role("link", name="Download ONNX (zip)")
    link.wait_for(timeout=300_000)
    assert row.locator(".export-status").inner_text() == "Done"
    studio.both("export-done")
    with page.expect_download() as info:
        link.click()
    saved = tmp_path / "onnx.zip"
    info.value.save_as(saved)
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as package:
        names = package.namelist()
    assert any(n.endswith("model.onnx") for n in names), names
    studio.check_clean()


def test_the_iteration_model_on_the_models_and_try_it_pages(studio, trained, tmp_path: Path):
    page = studio.page
    model = f"customvision-{trained.iteration_id}"
    studio.open()
    studio.sign_in()
    page.get_by_role("button", name="Image Analysis", exact=True).click()
    page.get_by_role("tab", name="Models", exact=True).click()
    row = page.locator(f'tr[data-model="{model}"]')
    row.locator(".model-status").get_by_text("succeeded").wait_for()
    assert "accuracy" in row.locator(".model-metrics").inner_text()
    row.get_by_role("button", name=f"Details of {model}").click()
    page.locator("#model-detail").get_by_text("accuracyTop1").wait_for()
    studio.both("models")

    page.get_by_role("tab", name="Evaluations", exact=True).click()
    page.get_by_label("Model", exact=True).wait_for()
    studio.both("evaluations")

    page.get_by_role("tab", name="Models", exact=True).click()
    page.locator(f'tr[data-model="{model}"]').get_by_role("button", name=f"Try {model}").click()
    name, data = next(iter(sample_data.classification("test", per_class=1).images.items()))
    image = tmp_path / Path(name).name
    image.write_bytes(data)
    page.get_by_label("Image to analyze", exact=True).set_input_files(str(image))
    page.locator("#tags tbody tr").first.wait_for(timeout=60_000)
    assert page.locator("#tags tbody tr").count() == len(trained.tags)
    studio.both("try-it")
    studio.check_clean()


def test_the_smart_labeler_accepts_a_suggestion_in_one_action(studio, trained, api_server):
    page = studio.page
    _open_project(studio, trained, "Smart labeler")
    cards = page.locator("#suggestions figure.suggestion")
    cards.first.wait_for(timeout=60_000)
    assert cards.count() == 4
    shown = [float(t.split()[1].rstrip("%")) for t in page.locator("#suggestions figcaption > p:first-child").all_inner_texts()]
    assert shown == sorted(shown, reverse=True), shown  # most uncertain first
    studio.both("smart-labeler")
    first = cards.first.get_attribute("data-image")
    tag = cards.first.locator("input[type=radio]:checked").first.evaluate("i => i.labels[0].textContent.split(' ')[0]")
    page.get_by_role("button", name="Accept the suggestion for image 1").click()
    page.get_by_text("1 image labelled.").wait_for()
    assert cards.count() == 3
    images = httpx.get(f"{api_server.url.rstrip('/')}/customvision/v3.4-preview/training/projects/{trained.project_id}/images/id",
                       params={"imageIds": first}, headers={"Training-Key": TEST_API_KEY}, timeout=30).json()
    assert [t["tagName"] for t in images[0]["tags"]] == [tag]
    page.get_by_role("button", name="Accept all shown suggestions").click()
    page.get_by_text("3 images labelled.").wait_for()
    page.get_by_text("No untagged image to suggest tags for.").wait_for()
    studio.check_clean()
