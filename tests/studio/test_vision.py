"""The studio's Image Analysis 4.0 datasets pages in Chromium: a dataset dropped into blob storage
with a broken COCO file shows each error at its place; a broken file registered through the form
is refused with the same account; a valid dataset registered through the API is listed as valid."""
from __future__ import annotations

import httpx

from loupe.datasets.drop import DropRegistrar
from tests.conftest import TEST_API_KEY
from tests.support.data import broken_detection_files, classification_files, upload

VISION = "api-version=2023-04-01-preview"


def _open_vision(studio) -> None:
    studio.open()
    studio.sign_in()
    studio.page.get_by_role("button", name="Image Analysis", exact=True).click()
    studio.page.get_by_role("heading", name="Datasets", exact=True).wait_for()


def test_a_broken_coco_file_shows_each_error_at_its_place(studio, services, api_server, unique_name):
    page = studio.page
    container = services.storage.container(services.settings.datasets_container)
    # dropped into blob storage: one box outside its image, one image missing
    broken = unique_name("studio-broken")
    files = broken_detection_files()
    upload(container, broken, files)
    assert DropRegistrar(services.datasets).handle(f"{broken}/annotations.json").outcome == "registered"
    # registered through the API: valid
    good = unique_name("studio-good")
    uri = upload(container, f"staging/{good}", classification_files())["annotations.json"]
    response = httpx.put(f"{api_server.url.rstrip('/')}/computervision/datasets/{good}?{VISION}",
                         headers={"Ocp-Apim-Subscription-Key": TEST_API_KEY},
                         json={"annotationKind": "imageClassification", "annotationFileUris": [uri]}, timeout=60)
    assert response.status_code == 201, response.text

    _open_vision(studio)
    row = page.locator(f'tr[data-dataset="{broken}"]')
    row.get_by_text("Invalid", exact=True).wait_for()
    page.locator(f'tr[data-dataset="{good}"]').get_by_text("Valid", exact=True).wait_for()
    studio.both("datasets-list")

    row.get_by_role("button", name=f"Open {broken}").click()
    detail = page.locator("#dataset-detail")
    detail.get_by_role("heading", name=f"Dataset {broken} Invalid").wait_for()
    tree = detail.get_by_role("list", name="errors by place in the COCO files")
    # the box error sits under File 1 > annotations > [2] > bbox, as in the JSON it points into
    place = tree.locator("li.file").filter(has_text="File 1:").locator("li.place", has=page.locator("code", has_text="annotations")) \
        .locator("li.place", has=page.locator("code", has_text="[2]")).first
    assert "bbox" in place.inner_text(), place.inner_text()
    problem = place.locator("li.problem[data-target^='annotationFileUris[0].annotations[2].bbox']").first
    problem.wait_for()
    assert problem.inner_text().strip(), "the bbox error has no words"
    assert tree.locator("li.problem", has_text="box_1.jpg").count() >= 1  # the missing image, by name
    studio.both("dataset-broken")

    # the same broken file through the registration form: refused, each problem listed at its place
    page.get_by_label("Dataset name", exact=True).fill(unique_name("studio-refused"))
    page.get_by_label("Annotation kind", exact=True).select_option("imageObjectDetection")
    page.get_by_label("COCO file URLs (one a line)", exact=True).fill(container.get_blob_client(f"{broken}/annotations.json").url)
    page.get_by_role("button", name="Register dataset", exact=True).click()
    page.get_by_text("The dataset was not registered").wait_for()
    refused = page.get_by_role("form", name="Dataset registration").locator("li.problem[data-target^='annotationFileUris[0].annotations[2].bbox']")
    refused.first.wait_for()
    studio.both("dataset-refused")
    # the refused registration is a 400 Chromium logs as a failed resource: expected here, nothing else
    assert all("400" in p for p in studio.problems), studio.problems
    studio.problems.clear()
    studio.check_clean()
