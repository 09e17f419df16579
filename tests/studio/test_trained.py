"""The studio's pages of a trained classification project, in Chromium: the precision-recall curve,
the confusion matrix and the images the model got wrong; the ONNX export downloaded through its
button and a failed export's reason in words; the iteration's model on the Image Analysis models
page (whose 2 s refresh keeps the keyboard focus) and its try-it page; stored predictions turned into
training images or deleted; a training cancelled from the Train tab.

One project, trained once through the API for the whole module (training is the slow part)."""
from __future__ import annotations

import re
import uuid
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
from loupe.artifacts import PREPROCESSING_FILE
from loupe.enums import ModelKind
from loupe.models.record import ModelRecord
from loupe.runs.record import RunStatus
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
    # attached, not visible: a model right at every threshold draws all its points on one spot,
    # a polyline with no extent, which Playwright calls hidden
    page.locator("#pr-curve .overall-line").wait_for(state="attached", timeout=60_000)
    points = page.locator("#pr-curve .overall-line").get_attribute("points").split()
    assert 2 <= len(points) <= 19, points  # thresholds where nothing is predicted are no point
    for xy in points:  # every point inside the plot area (viewBox 360 x 260)
        px, py = (float(v) for v in xy.split(","))
        assert 44 <= px <= 342 and 10 <= py <= 224, points
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
    shown = page.locator("#wrong-images img")
    for k in range(shown.count()):  # lazy images load once scrolled to, as a reader scrolls
        shown.nth(k).scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('#wrong-images img')].every(i => i.complete && i.naturalWidth > 0)")
    studio.both("performance-mistakes")
    studio.check_clean()


def test_an_onnx_export_downloads_through_its_button(studio, trained, tmp_path: Path):
    _open_project(studio, trained, "Export")
    names = studio.download_onnx_export("export-done", tmp_path / "onnx.zip")
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


def _training(api_server, method: str, path: str, **kwargs):
    response = httpx.request(method, f"{api_server.url.rstrip('/')}/customvision/v3.4-preview/training{path}",
                             headers={"Training-Key": TEST_API_KEY}, timeout=60, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def test_a_failed_export_shows_its_reason_in_words(studio, trained, services):
    # the iteration's model loses its preprocessing for the time of the export: the job fails
    # deterministically ("not a usable Loupe model"), then the file is put back for the other tests
    blob = services.storage.container(services.settings.models_container).get_blob_client(
        f"customvision-{trained.iteration_id}/{PREPROCESSING_FILE}")
    original = blob.download_blob().readall()
    blob.upload_blob(b'{"not": "preprocessing"}', overwrite=True)
    try:
        page = studio.page
        _open_project(studio, trained, "Export")
        row = page.locator('li[data-export="openvino"]')
        row.get_by_role("button", name="Export OpenVINO", exact=True).click()
        row.locator(".export-status").get_by_text("Failed", exact=True).wait_for(timeout=120_000)
        reason = row.locator(".error[role=alert]")
        reason.get_by_text("The OpenVINO export failed: ").wait_for()
        words = reason.inner_text()
        # the export run's own reason (from /computervision), in words, with its code
        assert "(ExportFailed)" in words and "no reason was recorded" not in words and "could not be read" not in words, words
        assert row.get_by_role("button", name="Export OpenVINO", exact=True).is_enabled()  # it can be built again
        studio.both("export-failed")
    finally:
        blob.upload_blob(original, overwrite=True)
    studio.check_clean()


def test_the_models_table_refresh_keeps_the_keyboard_focus(studio, trained, services, unique_name):
    page = studio.page
    # a model that stays "training" (no job behind it) keeps the page polling every 2 s
    running = unique_name("studio-running")
    services.models.repo.store.create(ModelRecord(
        name=running, training_dataset="d", budget_hours=1, model_kind=ModelKind.CLASSIFIER, run_id=f"run-{running}",
        status=RunStatus.RUNNING, progress={"phase": "training", "percent": 10.0, "etaSeconds": 90}))
    lists = []
    page.on("request", lambda r: "/computervision/models?" in r.url and lists.append(r.url))
    try:
        studio.open()
        studio.sign_in()
        page.get_by_role("button", name="Image Analysis", exact=True).click()
        page.get_by_role("tab", name="Models", exact=True).click()
        page.locator(f'tr[data-model="{running}"]').get_by_text("training 10%").wait_for()
        done = page.get_by_role("button", name=f"Details of customvision-{trained.iteration_id}", exact=True)
        # reached by keyboard: Shift+Tab from the next control lands on it with a visible focus ring
        done.focus()
        page.keyboard.press("Tab")
        page.keyboard.press("Shift+Tab")
        assert done.evaluate("b => b === document.activeElement && b.matches(':focus-visible')")
        done.evaluate("b => { b.dataset.kept = 'yes'; }")  # the very element, not a new one like it
        seen = len(lists)
        page.wait_for_timeout(4_500)  # two refreshes
        assert len(lists) >= seen + 2, lists
        assert page.evaluate("document.activeElement.dataset.kept") == "yes"  # an unchanged row is not re-rendered
        studio.shot("models-focus-kept")

        # the running model's row changes: it is rebuilt, and the focus moves to the same button of its new row
        mine = page.get_by_role("button", name=f"Details of {running}", exact=True)
        mine.focus()
        services.models.repo.update(running, lambda r: r.with_changes(
            progress={"phase": "training", "percent": 55.0, "etaSeconds": 30}))
        page.locator(f'tr[data-model="{running}"]').get_by_text("training 55%").wait_for()
        assert page.evaluate("document.activeElement.getAttribute('aria-label')") == f"Details of {running}"
        page.keyboard.press("Enter")  # still the keyboard's: Enter opens the details
        page.locator("#model-detail").get_by_role("heading", name=f"Model {running}: training").wait_for()
        studio.both("models-focus-moved")
    finally:
        services.models.repo.update(running, lambda r: r.with_changes(status=RunStatus.FAILED, progress=None))
    studio.check_clean()


def test_stored_predictions_become_training_images_or_are_deleted(studio, trained, api_server, tmp_path: Path):
    page = studio.page
    images = list(sample_data.classification("test", per_class=1, seed=7).images.items())[:2]
    for name, data in images:  # stored predictions, as an application's calls without /nostore leave them
        _training(api_server, "POST", f"/projects/{trained.project_id}/quicktest/image",
                  params={"iterationId": trained.iteration_id, "store": "true"}, files={"imageData": (name, data)})
    count = lambda **params: _training(api_server, "GET", f"/projects/{trained.project_id}/images/count",  # noqa: E731
                                       params={"taggingStatus": "Tagged", **params})
    first_tag = {"tagIds": _tag_id(api_server, trained, trained.tags[0])}
    tagged_before, first_tag_before = count(), count(**first_tag)
    _open_project(studio, trained, "Predictions")
    cards = page.locator("#stored-predictions figure.prediction")
    cards.nth(1).wait_for()
    assert cards.count() == 2
    page.wait_for_function("() => [...document.querySelectorAll('#stored-predictions img')].every(i => i.complete && i.naturalWidth > 0)")
    # the top tag is preselected; pick the first tag by hand instead
    tag = page.get_by_label("Tag for prediction 1", exact=True)
    assert tag.input_value()  # preselected from the prediction
    tag.select_option(label=trained.tags[0])
    studio.both("stored-predictions")
    page.get_by_role("button", name="Add prediction 1 to the training images", exact=True).click()
    page.get_by_text(f"Prediction 1 added as a training image ({trained.tags[0]}).").wait_for()
    assert cards.count() == 1
    assert (count(), count(**first_tag)) == (tagged_before + 1, first_tag_before + 1)  # a training image with that tag
    page.get_by_role("button", name="Delete prediction 2", exact=True).click()
    page.get_by_text("Prediction 2 deleted.").wait_for()
    page.get_by_text(re.compile("^No stored prediction")).wait_for()
    assert cards.count() == 0
    left = _training(api_server, "POST", f"/projects/{trained.project_id}/predictions/query", json={"maxCount": 10})
    assert left["results"] == [], left  # moved, then deleted: none is stored any more
    studio.check_clean()


def _tag_id(api_server, trained: Trained, name: str) -> str:
    tags = _training(api_server, "GET", f"/projects/{trained.project_id}/tags")
    return next(t["id"] for t in tags if t["name"] == name)


def test_a_training_is_cancelled_from_the_train_tab(studio, trained, api_server):
    # last in the module: the shared project gets a second (cancelled) iteration
    page = studio.page
    _open_project(studio, trained, "Train")
    page.get_by_role("button", name="Quick training", exact=True).click()
    cancel = page.get_by_role("button", name="Cancel training", exact=True)
    cancel.wait_for()
    # the model's live progress; cancelled once the trainer works (a trainer still starting is
    # stopped before it can say so, and only the reconciler, not run by the tests, notes that)
    page.locator("#train-phase").get_by_text(re.compile(r"^(extracting features|training) \d+%")).wait_for(timeout=300_000)
    studio.shot("training-progress")
    cancel.click()
    page.locator("#train-status").get_by_text(re.compile("Cancelled|Completed|Failed")).wait_for(timeout=120_000)
    assert "Cancelled" in page.locator("#train-status").inner_text(), page.locator("#train-status").inner_text()
    assert not any(page.locator("#tab .error[role=alert]").all_inner_texts())
    studio.both("training-cancelled")
    iterations = _training(api_server, "GET", f"/projects/{trained.project_id}/iterations")
    last = max(iterations, key=lambda it: it["created"])
    assert last["status"] == "Failed" and "cancelled" in (last.get("trainingErrorDetails") or ""), last
    studio.check_clean()
