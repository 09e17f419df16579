"""Loupe Studio end to end: the served files and their headers; the box editor (boxes drawn, moved,
resized and deleted with the mouse and keys); a detection project from sign-in to its ONNX package
(upload, boxes drawn with the mouse, training to Completed, the threshold and overlap sliders, a quick
test with its boxes and threshold, the stored prediction made a training image, the export
downloaded); a classification project (upload, tagging, training, performance at two thresholds,
quick test, publish) and a multilabel one, in Chromium."""
from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import httpx
import pytest

from loupe import sample_data
from loupe.api.studio import STATIC_DIR as STATIC
from tests.conftest import TEST_API_KEY

TRAINING = "/customvision/v3.4-preview/training"


def rest(api_server, method: str, path: str, **kwargs):
    response = httpx.request(method, api_server.url.rstrip("/") + TRAINING + path,
                             headers={"Training-Key": TEST_API_KEY}, timeout=30, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def write_images(images: dict[str, bytes], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in images.items():
        path = folder / Path(name).name
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_the_studio_is_served_without_a_key_with_strict_headers(api_server):
    base = api_server.url.rstrip("/")
    page = httpx.get(base + "/studio/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    module = httpx.get(base + "/studio/app.js")
    assert module.status_code == 200 and module.headers["content-type"].startswith("text/javascript")
    assert httpx.get(base + "/studio").headers["location"] == "/studio/"
    for path in ("/studio/../pyproject.toml", "/studio/%2e%2e/api/app.py", "/studio/missing.js", "/studio/../../README.md"):
        assert httpx.get(base + path).status_code == 404, path
    # no third-party origin anywhere in what the browser loads
    # (the SVG namespace is a name, never fetched)
    for path in sorted(STATIC.iterdir()):
        text = httpx.get(f"{base}/studio/{path.name}").text.replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"https?://", text), path.name


def test_a_wrong_key_is_refused_in_words(studio):
    studio.open()
    studio.sign_in("not-the-key")
    error = studio.page.locator("#signin-error")
    error.get_by_text(re.compile("refused")).wait_for()
    studio.both("wrong-key")
    # the refused request itself is logged by Chromium as a failed resource: expected here, nothing else
    assert all("401" in p for p in studio.problems), studio.problems
    studio.problems.clear()
    assert studio.page.evaluate("sessionStorage.length") == 0
    studio.check_clean()


def _draw(page, box: tuple[float, float, float, float]) -> None:
    image = page.locator(".editor img")
    image.wait_for()
    page.wait_for_function("() => document.querySelector('.editor img').naturalWidth > 0")
    r = image.bounding_box()
    x0, y0, x1, y1 = box
    page.mouse.move(r["x"] + x0 * r["width"], r["y"] + y0 * r["height"])
    page.mouse.down()
    page.mouse.move(r["x"] + (x0 + x1) / 2 * r["width"], r["y"] + (y0 + y1) / 2 * r["height"], steps=4)
    page.mouse.move(r["x"] + x1 * r["width"], r["y"] + y1 * r["height"], steps=4)
    page.mouse.up()


def _drag(page, selector: str, dx: float, dy: float) -> None:
    image = page.locator(".editor img").bounding_box()
    handle = page.locator(selector).bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx * image["width"], y + dy * image["height"], steps=5)
    page.mouse.up()


def _saved_boxes(page, count: int) -> None:
    # a saved box carries its region id; the ghost of a drawing does not
    page.wait_for_function(f"() => document.querySelectorAll('.editor .box[data-region]').length === {count}"
                           " && !document.querySelector('.editor .box:not([data-region])')")


def test_a_detection_project_with_boxes_drawn_by_mouse(studio, api_server, tmp_path, unique_name):
    page = studio.page
    files = write_images(sample_data.detection("train", count=4).images, tmp_path / "det")
    studio.open()
    studio.sign_in()
    name = unique_name("studio-det")
    studio.create_project(name, "Detection")
    studio.add_tag("thing")
    page.get_by_text("1: thing (0)").wait_for()
    page.get_by_label("choose files", exact=True).set_input_files([str(p) for p in files])
    page.get_by_text("4 of 4 images uploaded.").wait_for()
    page.wait_for_function("() => document.querySelectorAll('.thumb').length === 4")
    page.wait_for_function("() => [...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth > 0)")
    studio.both("detection-uploaded")

    page.get_by_role("button", name="Edit boxes", exact=True).first.click()
    _draw(page, (0.2, 0.2, 0.6, 0.7))
    _saved_boxes(page, 1)
    _draw(page, (0.05, 0.05, 0.15, 0.15))
    _saved_boxes(page, 2)
    page.keyboard.press("Delete")  # the box just drawn is the selected one
    _saved_boxes(page, 1)
    studio.shot("detection-first-image")
    page.keyboard.press("n")  # the next image
    _saved_boxes(page, 0)
    _draw(page, (0.1, 0.1, 0.3, 0.4))
    _saved_boxes(page, 1)
    _drag(page, ".editor .box", 0.2, 0.1)  # move
    page.wait_for_timeout(300)
    _saved_boxes(page, 1)
    _drag(page, ".editor .box .handle", 0.1, 0.1)  # resize
    page.wait_for_timeout(300)
    _saved_boxes(page, 1)
    studio.shot("detection-second-image")

    project = next(p for p in rest(api_server, "GET", "/projects") if p["name"] == name)
    images = rest(api_server, "GET", f"/projects/{project['id']}/images", params={"taggingStatus": "Tagged"})
    boxes = sorted((round(r["left"], 2), round(r["top"], 2), round(r["width"], 2), round(r["height"], 2))
                   for image in images for r in image["regions"])
    assert len(images) == 2 and len(boxes) == 2, boxes
    expected = [(0.2, 0.2, 0.4, 0.5), (0.3, 0.2, 0.3, 0.4)]  # drawn; drawn, moved by (0.2, 0.1), grown by 0.1
    for got, want in zip(boxes, expected):
        assert got == pytest.approx(want, abs=0.03), boxes
    studio.check_clean()


def _boxes_overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _drawable(boxes: list[list[float]]) -> bool:
    """Boxes a mouse can draw one after the other: none starts inside another, none is tiny."""
    return all(not _boxes_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]) \
        and all(w > 0.05 and h > 0.05 for _, _, w, h in boxes)


def _changes(page, key: str, label: str, output: int, shown: str, metrics) -> tuple:
    """Press ``key`` on the slider ``label``; the figures once its debounced re-fetch has answered."""
    page.get_by_label(label, exact=True).focus()
    page.keyboard.press(key)
    page.locator("output").nth(output).get_by_text(shown, exact=True).wait_for()
    page.wait_for_timeout(600)
    assert not any(page.locator(".error[role=alert]").all_inner_texts())
    return metrics(page)


# A tag boxed in 20 images or more lets the trainer hold images out for good: one training pass (fewer
# would add the estimate pass, docs/training.md#estimates). One tag, ring, which 22 of the 32 sample
# scenes hold (one tag keeps the training at its floor of iterations)
DETECTION_SCENES, DETECTION_TAG = 32, "ring"


@pytest.mark.slow
@pytest.mark.timeout(2700)  # a detector's training: 5-30 minutes on two busy cores
def test_a_detection_project_from_sign_in_to_its_onnx_package(studio, api_server, services, tmp_path, unique_name):
    """The issue's walk-through: every step of a detection project in the browser, each one shot."""
    page = studio.page
    sample = sample_data.detection("train", count=DETECTION_SCENES)
    kinds = {c["id"]: c["name"] for c in sample.coco["categories"]}
    by_id = {i["id"]: Path(i["file_name"]).name for i in sample.coco["images"]}
    truth: dict[str, list[list[float]]] = {}
    for a in sample.coco["annotations"]:
        if kinds[a["category_id"]] == DETECTION_TAG:
            truth.setdefault(by_id[a["image_id"]], []).append(a["bbox"])
    chosen = {f: d for f, d in sample.images.items() if Path(f).name in truth}
    assert len(chosen) >= 20, len(chosen)
    files = write_images(chosen, tmp_path / "det")
    studio.open()
    studio.shot("detection-flow-sign-in")
    studio.sign_in()
    name = unique_name("studio-flow")
    studio.create_project(name, "Detection")
    studio.add_tag(DETECTION_TAG)
    page.get_by_label("choose files", exact=True).set_input_files([str(p) for p in files])
    page.get_by_text(f"{len(files)} of {len(files)} images uploaded.").wait_for(timeout=60_000)
    page.wait_for_function(f"() => document.querySelectorAll('.thumb').length === {min(24, len(files))}"
                           " && [...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth > 0)")
    studio.both("detection-flow-uploaded")

    # two images get their boxes by mouse; the others through the regions API (the amount of
    # labelling a detector needs, not what the walk-through shows)
    project = next(p for p in rest(api_server, "GET", "/projects") if p["name"] == name)
    tag_id = rest(api_server, "GET", f"/projects/{project['id']}/tags")[0]["id"]
    digest = {hashlib.sha256(data).hexdigest(): Path(f).name for f, data in chosen.items()}
    stored = services.customvision.store.images.all(project["id"])
    file_of = {r.id: digest.get(r.sha256) or Path(r.source or "").name for r in stored}
    by_mouse = [f for f in sorted(truth) if _drawable(truth[f])][:2]
    assert len(by_mouse) == 2 and sorted(file_of.values()) == sorted(truth), file_of
    regions = [{"imageId": image_id, "tagId": tag_id, "left": b[0], "top": b[1], "width": b[2], "height": b[3]}
               for image_id, f in file_of.items() if f not in by_mouse for b in truth[f]]
    for start in range(0, len(regions), 64):
        rest(api_server, "POST", f"/projects/{project['id']}/images/regions", json={"regions": regions[start:start + 64]})

    page.get_by_label("Show", exact=True).select_option(label="Untagged")
    page.wait_for_function("() => document.querySelectorAll('.thumb').length === 2")
    shown = [file_of[i] for i in page.locator(".thumb").evaluate_all("els => els.map(e => e.dataset.image)")]
    page.get_by_role("button", name="Edit boxes", exact=True).first.click()
    for n, f in enumerate(shown):
        if n:
            page.keyboard.press("n")  # the next image
            _saved_boxes(page, 0)
        for count, box in enumerate(truth[f], start=1):
            _draw(page, (box[0], box[1], box[0] + box[2], box[1] + box[3]))
            _saved_boxes(page, count)
        studio.shot(f"detection-flow-boxes-{n + 1}")
    page.get_by_role("button", name="Close", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('.thumb').length === 0")  # none is untagged now
    mouse_ids = [i for i, f in file_of.items() if f in by_mouse]
    for image in rest(api_server, "GET", f"/projects/{project['id']}/images/id", params={"imageIds": ",".join(mouse_ids)}):
        want = sorted(truth[file_of[image["id"]]])
        got = sorted([r["left"], r["top"], r["width"], r["height"]] for r in image["regions"])
        assert len(got) == len(want) and {r["tagId"] for r in image["regions"]} == {tag_id}, image
        for g, w in zip(got, want):
            assert g == pytest.approx(w, abs=0.02), (got, want)

    page.get_by_role("tab", name="Train", exact=True).click()
    started = time.monotonic()
    page.get_by_role("button", name="Quick training", exact=True).click()
    page.locator("#train-phase").get_by_text(re.compile(r"\d+%")).wait_for(timeout=60_000)
    studio.both("detection-flow-training")
    page.locator("#train-status").get_by_text(re.compile("Completed|Failed|Cancelled")).wait_for(timeout=2_400_000)
    assert "Completed" in page.locator("#train-status").inner_text(), page.locator("#train-status").inner_text()
    print(f"detector trained through the studio: {time.monotonic() - started:.1f} s")
    page.locator('tr[data-iteration] .it-status').get_by_text("Completed").wait_for()
    studio.both("detection-flow-trained")
    _a_trained_detector_measured_tested_and_exported(studio, api_server, project["id"], tmp_path)
    studio.check_clean()


def _a_trained_detector_measured_tested_and_exported(studio, api_server, project_id: str, tmp_path: Path) -> None:
    """The walk-through's steps after training: the performance sliders, a quick test with its
    threshold, the stored prediction made a training image, the ONNX export downloaded."""
    page = studio.page
    page.get_by_role("tab", name="Performance", exact=True).click()
    page.locator("#precision").wait_for()
    metrics = lambda p: (p.locator("#precision").inner_text(), p.locator("#recall").inner_text())  # noqa: E731
    page.wait_for_timeout(600)
    start = metrics(page)
    assert start != ("0.0%", "0.0%"), start  # something was held out and found at 50% / 30%
    low = _changes(page, "Home", "Probability threshold", 0, "0%", metrics)
    high = _changes(page, "End", "Probability threshold", 0, "100%", metrics)
    assert len({start, low, high}) >= 2, f"the figures did not follow the threshold: {start, low, high}"
    _changes(page, "Home", "Probability threshold", 0, "0%", metrics)
    strict = _changes(page, "End", "Overlap threshold", 1, "100%", metrics)  # no drawn box matches exactly
    assert strict != low, f"the figures did not follow the overlap: {low} -> {strict}"
    studio.both("detection-flow-performance")

    page.get_by_role("tab", name="Quick test", exact=True).click()
    test_name, test_data = next(iter(sample_data.detection("test", count=1).images.items()))
    test_image = write_images({test_name: test_data}, tmp_path / "quick")[0]
    page.get_by_label("Keep it among the stored predictions", exact=True).check()
    page.get_by_label("Image to test", exact=True).set_input_files(str(test_image))
    page.locator("#predictions caption").wait_for(timeout=60_000)
    boxes = page.locator(".result .box")
    assert boxes.count() >= 1, page.locator("#predictions caption").inner_text()
    page.wait_for_function("() => document.querySelector('.result img').complete")
    studio.both("detection-flow-quick-test")
    at_default = boxes.count()
    slider = page.get_by_label("Show from probability", exact=True)
    slider.focus()
    page.keyboard.press("End")  # instant, in the page: nothing is at 100%
    page.locator("#quick-threshold").get_by_text("100%", exact=True).wait_for()
    assert boxes.count() == 0 and page.locator("#predictions tbody tr").count() == 0
    page.keyboard.press("Home")
    page.locator("#quick-threshold").get_by_text("0%", exact=True).wait_for()
    assert boxes.count() >= at_default
    assert page.locator("#predictions tbody tr").count() == boxes.count()
    studio.shot("detection-flow-quick-test-all")

    page.get_by_role("tab", name="Predictions", exact=True).click()
    card = page.locator("#stored-predictions figure.prediction")
    card.first.wait_for()
    assert card.count() == 1
    floor = page.get_by_label("Keep boxes from probability", exact=True)
    floor.focus()
    page.keyboard.press("Home")
    for _ in range(30):  # 30%: the boxes the quick test showed at first
        page.keyboard.press("ArrowRight")
    page.get_by_text("at or above 30%").wait_for()
    kept = card.first.locator(".box").count()
    assert kept == at_default and f"{kept} box" in card.first.locator(".kept").inner_text()
    studio.both("detection-flow-predictions")
    before = rest(api_server, "GET", f"/projects/{project_id}/images/count")
    page.get_by_role("button", name="Add prediction 1 to the training images", exact=True).click()
    page.get_by_text(re.compile(rf"Prediction 1 added as a training image \({kept} regions?\)\.")).wait_for()
    assert rest(api_server, "GET", f"/projects/{project_id}/images/count") == before + 1
    newest = rest(api_server, "GET", f"/projects/{project_id}/images", params={"take": 1, "orderBy": "Newest"})[0]
    assert len(newest["regions"]) == kept, newest

    page.get_by_role("tab", name="Export", exact=True).click()
    names = studio.download_onnx_export("detection-flow-export", tmp_path / "detector-onnx.zip")
    assert any(n.endswith("model.onnx") for n in names), names


def _tag_uploaded(page, tag: str, files: list[Path]) -> None:
    page.get_by_label("choose files", exact=True).set_input_files([str(p) for p in files])
    page.get_by_text(f"{len(files)} of {len(files)} images uploaded.").wait_for()
    page.get_by_label("Show", exact=True).select_option(label="Untagged")
    page.wait_for_function(f"() => document.querySelectorAll('.thumb').length === {len(files)}"
                           " && [...document.querySelectorAll('.thumb .tags')].every(t => t.textContent === 'untagged')")
    for index in range(len(files)):
        page.get_by_label(f"Select image {index + 1}", exact=True).check()
    page.get_by_label("Tag", exact=True).select_option(label=tag)
    page.get_by_role("button", name="Tag selected images", exact=True).click()
    page.get_by_text(f"{len(files)} images tagged {tag}.").wait_for()
    page.wait_for_function("() => document.querySelectorAll('.thumb').length === 0")


def _at_or_above(shown: list[float], threshold: float) -> range:
    """How many of the probabilities (shown rounded to 0.1%) can be at or above the threshold."""
    return range(sum(p >= threshold + 0.0005 for p in shown), sum(p >= threshold - 0.0005 for p in shown) + 1)


def _metrics(page) -> tuple[str, str]:
    return page.locator("#precision").inner_text(), page.locator("#recall").inner_text()


def test_a_classification_project_trained_tested_and_published(studio, api_server, tmp_path, unique_name):
    page = studio.page
    sample = sample_data.classification("train", per_class=3)
    by_tag: dict[str, list[Path]] = {}
    names = {c["id"]: c["name"] for c in sample.coco["categories"]}
    for image in sample.coco["images"]:
        label = next(a["category_id"] for a in sample.coco["annotations"] if a["image_id"] == image["id"])
        by_tag.setdefault(names[label], []).append(image["file_name"])
    studio.open()
    studio.sign_in()
    name = unique_name("studio-cls")
    studio.create_project(name)
    for tag in by_tag:
        studio.add_tag(tag)
    for tag, images in by_tag.items():
        files = write_images({f: sample.images[f] for f in images}, tmp_path / tag)
        _tag_uploaded(page, tag, files)
    page.get_by_label("Show", exact=True).select_option(label="All images")
    page.wait_for_function(f"() => document.querySelectorAll('.thumb').length === {len(sample.images)}")
    studio.both("classification-tagged")

    page.get_by_role("tab", name="Train", exact=True).click()
    started = time.monotonic()
    page.get_by_role("button", name="Quick training", exact=True).click()
    page.locator("#train-status").get_by_text(re.compile("Completed|Failed")).wait_for(timeout=600_000)
    assert "Completed" in page.locator("#train-status").inner_text(), page.locator("#train-status").inner_text()
    print(f"training through the studio: {time.monotonic() - started:.1f} s")
    page.get_by_label("Publish name", exact=True).fill("studio-published")
    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_text("Published as studio-published").wait_for()
    studio.both("classification-trained")

    page.get_by_role("tab", name="Performance", exact=True).click()
    page.locator("#precision").wait_for()
    slider = page.get_by_label("Probability threshold", exact=True)
    slider.focus()
    seen = set()
    for key in ("Home", "End"):
        before = _metrics(page)
        page.keyboard.press(key)
        page.locator("output").get_by_text("100%" if key == "End" else "0%", exact=True).wait_for()
        page.wait_for_timeout(500)  # the debounced re-fetch
        seen.add(_metrics(page))
        assert not any(page.locator(".error[role=alert]").all_inner_texts()), before
    assert len(seen) == 2, f"precision and recall did not change with the threshold: {seen}"
    studio.both("classification-performance")

    page.get_by_role("tab", name="Quick test", exact=True).click()
    test_image = write_images(dict([next(iter(sample_data.classification("test", per_class=1).images.items()))]),
                              tmp_path / "quick")
    page.get_by_label("Image to test", exact=True).set_input_files(str(test_image[0]))
    page.locator("#predictions tbody tr").first.wait_for(timeout=60_000)
    assert page.locator("#predictions tbody tr").count() == len(by_tag)
    studio.both("classification-quick-test")

    page.get_by_role("tab", name="Train", exact=True).click()
    page.get_by_role("button", name="Unpublish", exact=True).click()
    page.get_by_text("Not published").wait_for()
    studio.check_clean()


def test_the_projects_page_fits_a_phone(studio):
    studio.page.set_viewport_size({"width": 390, "height": 800})
    studio.open()
    studio.sign_in()
    studio.page.get_by_role("button", name="Create project", exact=True).wait_for()
    width = studio.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px: {width}"
    studio.shot("projects-phone")
    studio.check_clean()


def test_a_multilabel_project_tagged_trained_and_quick_tested(studio, tmp_path, unique_name):
    page = studio.page
    sample = sample_data.multilabel("train", count=12)
    names = {c["id"]: c["name"] for c in sample.coco["categories"]}
    labels: dict[str, list[str]] = {}
    for a in sample.coco["annotations"]:
        labels.setdefault(a["image_id"], []).append(names[a["category_id"]])
    groups: dict[tuple[str, ...], list[str]] = {}  # images with the same tags are uploaded and tagged together
    for image in sample.coco["images"]:
        groups.setdefault(tuple(sorted(labels[image["id"]])), []).append(image["file_name"])
    studio.open()
    studio.sign_in()
    name = unique_name("studio-ml")
    studio.create_project(name, "Multilabel")
    for tag in names.values():
        studio.add_tag(tag)
    for n, (tags, images) in enumerate(groups.items()):
        files = write_images({f: sample.images[f] for f in images}, tmp_path / f"group{n}")
        page.get_by_label("choose files", exact=True).set_input_files([str(p) for p in files])
        page.get_by_text(f"{len(files)} of {len(files)} images uploaded.").wait_for()
        page.get_by_label("Show", exact=True).select_option(label="Untagged")
        page.wait_for_function(f"() => document.querySelectorAll('.thumb').length === {len(files)}")
        for index in range(len(files)):
            page.get_by_label(f"Select image {index + 1}", exact=True).check()
        page.get_by_label("Tags", exact=True).select_option(label=list(tags))  # several tags at once
        page.get_by_role("button", name="Tag selected images", exact=True).click()
        plural = "image" if len(files) == 1 else "images"
        page.get_by_text(f"{len(files)} {plural} tagged {', '.join(t for t in names.values() if t in tags)}.").wait_for()
        page.wait_for_function("() => document.querySelectorAll('.thumb').length === 0")
    page.get_by_label("Show", exact=True).select_option(label="All images")
    page.wait_for_function(f"() => document.querySelectorAll('.thumb').length === {len(sample.images)}")
    assert any(", " in t for t in page.locator(".thumb .tags").all_inner_texts())  # some images hold two tags or more
    studio.both("multilabel-tagged")

    page.get_by_role("tab", name="Train", exact=True).click()
    page.get_by_role("button", name="Quick training", exact=True).click()
    page.locator("#train-status").get_by_text(re.compile("Completed|Failed")).wait_for(timeout=600_000)
    assert "Completed" in page.locator("#train-status").inner_text(), page.locator("#train-status").inner_text()
    studio.both("multilabel-trained")

    page.get_by_role("tab", name="Performance", exact=True).click()
    page.locator("#precision").wait_for()
    low = _changes(page, "Home", "Probability threshold", 0, "0%", _metrics)
    high = _changes(page, "End", "Probability threshold", 0, "100%", _metrics)
    assert low != high, f"precision and recall did not change with the threshold: {low} {high}"
    studio.both("multilabel-performance")

    page.get_by_role("tab", name="Quick test", exact=True).click()
    test_image = write_images(dict([next(iter(sample_data.multilabel("test", count=1).images.items()))]), tmp_path / "quick")
    page.get_by_label("Image to test", exact=True).set_input_files(str(test_image[0]))
    page.locator("#predictions tbody tr").first.wait_for(timeout=60_000)
    assert page.locator("#predictions tbody tr").count() == len(names)  # from 0%: every tag
    studio.both("multilabel-quick-test")
    # the threshold hides the tags below it at once, in the page (no request)
    probabilities = [float(t.rstrip("%")) / 100 for t in page.locator("#predictions tbody td:nth-child(2)").all_inner_texts()]
    page.get_by_label("Show from probability", exact=True).focus()
    page.keyboard.press("End")
    page.locator("#quick-threshold").get_by_text("100%", exact=True).wait_for()
    assert page.locator("#predictions tbody tr").count() in _at_or_above(probabilities, 1.0)
    for _ in range(50):
        page.keyboard.press("ArrowLeft")
    page.locator("#quick-threshold").get_by_text("50%", exact=True).wait_for()
    assert page.locator("#predictions tbody tr").count() in _at_or_above(probabilities, 0.5)
    assert f"of {len(names)} tags at or above 50%" in page.locator("#predictions caption").inner_text()
    studio.shot("multilabel-quick-test-50")
    studio.check_clean()
