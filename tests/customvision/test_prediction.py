"""Prediction, quick test, stored predictions, the smart labeler and region proposals through the
unchanged Custom Vision SDK (training and prediction clients), with models the real trainer made."""
from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import requests
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.cognitiveservices.vision.customvision.prediction.models import (
    CustomVisionErrorException as PredictionError,
)
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException,
    ImageIdCreateBatch,
    ImageIdCreateEntry,
    PredictionQueryTag,
    PredictionQueryToken,
    SuggestedTagAndRegionQueryToken,
)
from msrest.authentication import ApiKeyCredentials
from PIL import Image

from loupe.customvision.blobs import prediction_blob
from loupe.customvision.prediction import StoredPrediction, Suggestion, new_prediction_id, uncertainty
from loupe.sample_data import classification, detection, multilabel
from tests.conftest import TEST_API_KEY
from tests.customvision.conftest import TrainedProject, upload_sample, wait_trained
from tests.support.image_server import ImageServer

RESOURCE = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/loupe"
FOUR_MB = 4 * 1024 * 1024


@dataclass
class Trained:
    project_id: str
    tags: dict[str, str]  # name -> id
    iteration_id: str


def _truth(sample) -> dict[str, str]:
    names = {c["id"]: c["name"] for c in sample.coco["categories"]}
    by_id = {a["image_id"]: names[a["category_id"]] for a in sample.coco["annotations"]}
    return {image["file_name"]: by_id[image["id"]] for image in sample.coco["images"]}


@pytest.fixture(scope="module")
def trained(trainer, compact_detector: TrainedProject) -> dict[str, Trained]:
    """A Multiclass, a Multilabel and a detection project (the session's compact detector), trained
    (one job at a time: the local backend queues them) and published as "prod"."""
    suffix = uuid.uuid4().hex[:6]
    plans = {
        "multiclass": (trainer.create_project(f"cv-pred-mc-{suffix}", classification_type="Multiclass"),
                       classification("train", per_class=3)),
        "multilabel": (trainer.create_project(f"cv-pred-ml-{suffix}", classification_type="Multilabel"),
                       multilabel("train", count=8)),
    }
    started = {}
    for key, (project, sample) in plans.items():
        tags = upload_sample(trainer, project.id, sample)
        started[key] = (project.id, tags, trainer.train_project(project.id).id)
    out = {}
    for key, (project_id, tags, iteration_id) in started.items():
        iteration = wait_trained(trainer, project_id, iteration_id, timeout=900)
        assert iteration.status == "Completed", iteration.training_error_details
        out[key] = Trained(project_id, tags, iteration_id)
    out["detection"] = Trained(compact_detector.project_id, compact_detector.tags, compact_detector.iteration_id)
    for model in out.values():
        trainer.publish_iteration(model.project_id, model.iteration_id, "prod", RESOURCE)
    return out


@pytest.fixture(scope="module")
def url_predictor(make_settings, services, trained):
    """A second API over the same storage that may fetch http://127.0.0.1 URLs (the defaults refuse
    both). It shares the session's predictor cache, so it builds no job backend of its own."""
    from loupe.api.app import create_app
    from loupe.local.azurite import free_port
    from loupe.local.server import ServerThread
    from loupe.services import Services

    relaxed = Services(make_settings(allow_http_image_urls=True, allow_loopback_image_urls=True)).ready()
    relaxed._predictors = services.predictors
    server = ServerThread(create_app(relaxed), port=free_port()).start()
    yield CustomVisionPredictionClient(server.url, ApiKeyCredentials(in_headers={"Prediction-key": TEST_API_KEY}))
    server.stop()
    relaxed.close()


def _stored(trainer, project_id: str) -> list:
    """Every stored prediction of the project, through the query's continuation."""
    found, token = [], PredictionQueryToken(max_count=256)
    while True:
        page = trainer.query_predictions(project_id, token)
        found.extend(page.results)
        if not page.token.continuation:
            return found
        token = PredictionQueryToken(max_count=256, continuation=page.token.continuation)


def _noise_jpeg(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    return out.getvalue()


# --- the Prediction API
def test_classify_image_predicts_every_tag_and_mostly_right(predictor, trained):
    mc = trained["multiclass"]
    sample = classification("test", per_class=2)
    truth = _truth(sample)
    correct = 0
    for file_name, data in sample.images.items():
        result = predictor.classify_image_with_no_store(mc.project_id, "prod", data)
        assert result.project == mc.project_id and result.iteration == mc.iteration_id
        assert {p.tag_name for p in result.predictions} == set(mc.tags)
        assert all(p.tag_id == mc.tags[p.tag_name] and p.bounding_box is None and p.tag_type == "Regular"
                   for p in result.predictions)
        probabilities = [p.probability for p in result.predictions]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)
        correct += result.predictions[0].tag_name == truth[file_name]
    assert correct / len(sample.images) > 0.5


def test_store_keeps_the_prediction_and_nostore_does_not(trainer, predictor, trained):
    mc = trained["multiclass"]
    data = next(iter(classification("test", per_class=1).images.values()))
    before = {p.id for p in _stored(trainer, mc.project_id)}
    stored = predictor.classify_image(mc.project_id, "prod", data, application="tests")
    unstored = predictor.classify_image_with_no_store(mc.project_id, "prod", data)
    after = {p.id: p for p in _stored(trainer, mc.project_id)}
    assert set(after) - before == {stored.id}
    assert unstored.id not in after
    kept = after[stored.id]
    assert kept.iteration == mc.iteration_id and kept.domain
    assert [p.tag_id for p in kept.predictions] == [p.tag_id for p in stored.predictions]
    assert kept.original_image_uri.startswith("http")
    by_app = trainer.query_predictions(mc.project_id, PredictionQueryToken(application="tests", max_count=256))
    assert stored.id in {p.id for p in by_app.results}


def test_classify_and_detect_image_url(predictor, url_predictor, trained):
    mc, od = trained["multiclass"], trained["detection"]
    image = next(iter(classification("test", per_class=1).images.values()))
    scene = next(iter(detection("test", count=1).images.values()))
    with ImageServer({"/c.jpg": image, "/d.jpg": scene}) as server:
        by_url = url_predictor.classify_image_url_with_no_store(mc.project_id, "prod", server.url("/c.jpg"))
        by_bytes = predictor.classify_image_with_no_store(mc.project_id, "prod", image)
        assert [(p.tag_id, p.probability) for p in by_url.predictions] == \
            [(p.tag_id, p.probability) for p in by_bytes.predictions]
        boxes = url_predictor.detect_image_url(od.project_id, "prod", server.url("/d.jpg"))
        assert boxes.predictions
        with pytest.raises(PredictionError) as missing:
            url_predictor.classify_image_url(mc.project_id, "prod", server.url("/nothing.jpg"))
        assert missing.value.error.code == "BadRequestImageUrl"
        # the session's server keeps the defaults: no plain http, no loopback
        with pytest.raises(PredictionError) as refused:
            predictor.classify_image_url(mc.project_id, "prod", server.url("/c.jpg"))
        assert refused.value.error.code == "BadRequestImageUrl"


def test_detect_image_gives_normalised_boxes(predictor, trained):
    od = trained["detection"]
    sample = detection("test", count=3)
    found = 0
    for data in sample.images.values():
        result = predictor.detect_image_with_no_store(od.project_id, "prod", data)
        for p in result.predictions:
            box = p.bounding_box
            assert 0 <= box.left <= 1 and 0 <= box.top <= 1 and 0 < box.width <= 1 and 0 < box.height <= 1
            assert box.left + box.width <= 1 + 1e-6 and box.top + box.height <= 1 + 1e-6
            assert p.tag_id == od.tags[p.tag_name]
        probabilities = [p.probability for p in result.predictions]
        assert probabilities == sorted(probabilities, reverse=True)
        found += len(result.predictions)
    assert found > 0


def test_multilabel_scores_each_tag_on_its_own(predictor, trained):
    ml = trained["multilabel"]
    data = next(iter(multilabel("test", count=1).images.values()))
    result = predictor.classify_image_with_no_store(ml.project_id, "prod", data)
    assert {p.tag_name for p in result.predictions} == set(ml.tags)
    assert all(0 <= p.probability <= 1 for p in result.predictions)


def test_bad_input_is_a_documented_4xx_and_stores_nothing(trainer, predictor, trained):
    mc, od = trained["multiclass"], trained["detection"]
    data = next(iter(classification("test", per_class=1).images.values()))
    before = len(_stored(trainer, mc.project_id)), len(_stored(trainer, od.project_id))
    padded = _noise_jpeg(600, 600)
    padded += b"\0" * (FOUR_MB + 1000 - len(padded))  # after the JPEG's end: still a JPEG, over 4 MB
    big = _noise_jpeg(2000, 1900)
    assert len(big) > FOUR_MB + 64 * 1024
    cases = [
        (lambda: predictor.classify_image(mc.project_id, "no-such-name", data), 404, "NotFoundIteration"),
        (lambda: predictor.classify_image(od.project_id, "prod", data), 400, "BadRequestUnsupportedDomain"),
        (lambda: predictor.detect_image(mc.project_id, "prod", data), 400, "BadRequestUnsupportedDomain"),
        (lambda: predictor.classify_image(mc.project_id, "prod", b"not an image"), 400, "BadRequestImageFormat"),
        (lambda: predictor.classify_image(mc.project_id, "prod", padded), 400, "BadRequestImageSizeBytes"),
        (lambda: predictor.classify_image(mc.project_id, "prod", big), 400, "BadRequestImageSizeBytes"),
        (lambda: predictor.classify_image(str(uuid.uuid4()), "prod", data), 404, "NotFoundProject"),
    ]
    for call, status, code in cases:
        with pytest.raises(PredictionError) as excinfo:
            call()
        assert (excinfo.value.response.status_code, excinfo.value.error.code) == (status, code)
        assert excinfo.value.error.message
    assert (len(_stored(trainer, mc.project_id)), len(_stored(trainer, od.project_id))) == before


def test_the_rest_body_forms(api_server, trained):
    """The REST quickstarts' octet-stream and image/* bodies, a multipart part without a filename,
    and the refusals of a JSON body on an image route and of an unknown verb."""
    mc = trained["multiclass"]
    data = next(iter(classification("test", per_class=1).images.values()))
    base = f"{api_server.url}/customvision/v3.0/Prediction/{mc.project_id}"
    headers = {"Prediction-Key": TEST_API_KEY}

    def post(path, **kwargs):
        return requests.post(base + path, headers={**headers, **kwargs.pop("headers", {})}, timeout=60, **kwargs)

    expected = post("/classify/iterations/prod/image/nostore", data=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert expected.status_code == 200, expected.text
    tags = [p["tagId"] for p in expected.json()["predictions"]]
    for kwargs in ({"data": data, "headers": {"Content-Type": "image/jpeg"}},
                   {"files": {"imageData": (None, data, "application/octet-stream")}},
                   {"files": {"imageData": ("a.jpg", data, "image/jpeg")}}):
        answer = post("/classify/iterations/prod/image/nostore", **kwargs)
        assert answer.status_code == 200, answer.text
        assert [p["tagId"] for p in answer.json()["predictions"]] == tags
    wrong = post("/classify/iterations/prod/image", json={"url": "https://example.com/a.jpg"})
    assert (wrong.status_code, wrong.json()["code"]) == (415, "UnsupportedMediaType")
    no_url = post("/classify/iterations/prod/url", json={"uri": "x"})
    assert (no_url.status_code, no_url.json()["code"]) == (400, "BadRequestImageUrl")
    assert post("/predict/iterations/prod/image", data=data).status_code == 404


# --- quick test, stored predictions
def test_quick_test_stores_by_default_and_becomes_a_training_image(trainer, trained):
    mc = trained["multiclass"]
    data = next(iter(classification("test", seed=5, per_class=1).images.values()))
    result = trainer.quick_test_image(mc.project_id, data)  # the newest Completed iteration
    assert result.iteration == mc.iteration_id
    pinned = trainer.quick_test_image(mc.project_id, data, iteration_id=mc.iteration_id, store=False)
    assert [p.tag_id for p in pinned.predictions] == [p.tag_id for p in result.predictions]
    stored = {p.id for p in _stored(trainer, mc.project_id)}
    assert result.id in stored and pinned.id not in stored
    top = result.predictions[0]
    filtered = trainer.query_predictions(mc.project_id, PredictionQueryToken(
        tags=[PredictionQueryTag(id=top.tag_id, min_threshold=top.probability, max_threshold=1.0)], max_count=256))
    assert result.id in {p.id for p in filtered.results}
    oldest = trainer.query_predictions(mc.project_id, PredictionQueryToken(order_by="Oldest", max_count=256))
    created = [p.created for p in oldest.results]
    assert created == sorted(created)

    count = trainer.get_image_count(mc.project_id)
    unknown = str(uuid.uuid4())
    summary = trainer.create_images_from_predictions(mc.project_id, ImageIdCreateBatch(images=[
        ImageIdCreateEntry(id=result.id, tag_ids=[top.tag_id]), ImageIdCreateEntry(id=unknown)]))
    assert [i.status for i in summary.images] == ["OK", "ErrorSource"]
    assert summary.is_batch_successful is False
    assert summary.images[0].image.tags[0].tag_id == top.tag_id
    assert trainer.get_image_count(mc.project_id) == count + 1

    trainer.delete_prediction(mc.project_id, [result.id])
    assert result.id not in {p.id for p in _stored(trainer, mc.project_id)}


def test_query_paging_and_refusals(trainer, predictor, trained):
    ml = trained["multilabel"]
    data = list(multilabel("test", count=3).images.values())
    made = [predictor.classify_image(ml.project_id, "prod", d).id for d in data]
    first = trainer.query_predictions(ml.project_id, PredictionQueryToken(max_count=2))
    assert [p.id for p in first.results] == made[::-1][:2] and first.token.continuation
    second = trainer.query_predictions(ml.project_id, PredictionQueryToken(
        max_count=2, continuation=first.token.continuation))
    assert made[0] in [p.id for p in second.results]
    for token, code in [(PredictionQueryToken(max_count=257), "BadRequestPredictionResultsExceededCount"),
                        (PredictionQueryToken(tags=[PredictionQueryTag(id=str(uuid.uuid4()))] * 3),
                         "BadRequestPredictionTagsExceededCount"),
                        (PredictionQueryToken(continuation="garbage"), "BadRequestPredictionInvalidQueryParameters")]:
        with pytest.raises(CustomVisionErrorException) as excinfo:
            trainer.query_predictions(ml.project_id, token)
        assert excinfo.value.error.code == code
    now = datetime.now(UTC)
    window = trainer.query_predictions(ml.project_id, PredictionQueryToken(
        max_count=256, start_time=now - timedelta(minutes=10), end_time=now + timedelta(minutes=1)))
    assert set(made) <= {p.id for p in window.results}
    for start, end in ((now + timedelta(hours=1), None), (None, now - timedelta(hours=1))):
        empty = trainer.query_predictions(ml.project_id, PredictionQueryToken(start_time=start, end_time=end))
        assert empty.results == [] and empty.token.continuation is None
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.delete_prediction(ml.project_id, [])
    assert excinfo.value.error.code == "BadRequestPredictionIdsMissing"


# --- the smart labeler, region proposals
def test_suggestions_for_untagged_images(trainer, trained):
    mc = trained["multiclass"]
    untagged = classification("test", seed=9, per_class=1)
    summary = trainer.create_images_from_data(mc.project_id, next(iter(untagged.images.values())))
    for data in list(untagged.images.values())[1:]:
        trainer.create_images_from_data(mc.project_id, data)
    image_id = summary.images[0].image.id
    suggested = trainer.suggest_tags_and_regions(mc.project_id, mc.iteration_id, [image_id])
    assert len(suggested) == 1 and suggested[0].id == image_id
    assert {p.tag_id for p in suggested[0].predictions} == set(mc.tags.values())
    assert 0 <= suggested[0].prediction_uncertainty <= 1

    for sort in ("UncertaintyAscending", "UncertaintyDescending"):
        query = trainer.query_suggested_images(mc.project_id, mc.iteration_id,
                                               SuggestedTagAndRegionQueryToken(sort_by=sort, max_count=256))
        values = [r.prediction_uncertainty for r in query.results]
        assert len(values) == trainer.get_untagged_image_count(mc.project_id)
        assert values == sorted(values, reverse=sort == "UncertaintyDescending")
        assert all(r.predictions and r.original_image_uri and r.width for r in query.results)
    paged = trainer.query_suggested_images(mc.project_id, mc.iteration_id, SuggestedTagAndRegionQueryToken(
        max_count=1))
    assert len(paged.results) == 1 and paged.token.continuation
    rest = trainer.query_suggested_images(mc.project_id, mc.iteration_id, SuggestedTagAndRegionQueryToken(
        max_count=256, continuation=paged.token.continuation))
    assert paged.results[0].id not in {r.id for r in rest.results}
    assert len(rest.results) + 1 == len(values)

    counts = trainer.query_suggested_image_count(mc.project_id, mc.iteration_id, tag_ids=list(mc.tags.values()),
                                                 threshold=0.5)
    assert set(counts) == set(mc.tags.values())
    assert sum(counts.values()) <= len(values)
    strict = trainer.query_suggested_images(mc.project_id, mc.iteration_id, SuggestedTagAndRegionQueryToken(
        tag_ids=list(mc.tags.values()), threshold=0.5, max_count=256))
    assert all(p.probability >= 0.5 for r in strict.results for p in r.predictions)
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.suggest_tags_and_regions(mc.project_id, str(uuid.uuid4()), [image_id])
    assert excinfo.value.error.code == "NotFoundIteration"


def test_region_proposals(trainer, trained):
    od, mc = trained["detection"], trained["multiclass"]
    image = trainer.create_images_from_data(od.project_id, next(iter(detection("test", seed=4, count=1)
                                                                     .images.values()))).images[0].image
    proposal = trainer.get_image_region_proposals(od.project_id, image.id)
    assert proposal.project_id == od.project_id and proposal.image_id == image.id
    assert proposal.proposals
    for p in proposal.proposals:
        assert 0 <= p.confidence <= 1 and 0 <= p.bounding_box.left <= 1 and 0 < p.bounding_box.width <= 1
    classified = trainer.get_images(mc.project_id, take=1)[0]
    assert trainer.get_image_region_proposals(mc.project_id, classified.id).proposals == []
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.get_image_region_proposals(od.project_id, str(uuid.uuid4()))
    assert excinfo.value.error.code == "NotFoundImage"


def test_quick_test_without_a_trained_iteration(trainer, unique_name):
    project = trainer.create_project(unique_name("cv-untrained"))
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.quick_test_image(project.id, b"\xff\xd8 whatever")
    assert excinfo.value.error.code == "NotFoundProjectDefaultIteration"


def test_deleting_a_project_deletes_its_predictions_and_suggestions(trainer, services):
    project = trainer.create_project(f"cv-pred-del-{uuid.uuid4().hex[:6]}")
    cv = services.customvision
    prediction_id = new_prediction_id(datetime.now(UTC))
    cv.blobs.put(prediction_blob(project.id, prediction_id), b"bytes")
    cv.predictions.stored.create(StoredPrediction(id=prediction_id, project_id=project.id, iteration_id="i",
                                                  width=1, height=1, sha256=""))
    cv.predictions.suggestions.put(Suggestion(id="i_x", project_id=project.id, iteration_id="i", image_id="x",
                                              predictions=[], uncertainty=1.0))
    trainer.delete_project(project.id)
    assert cv.predictions.suggestions.all(project.id + "~suggestions") == []
    assert cv.predictions.stored.all(project.id) == []
    assert list(cv.blobs.container.list_blobs(name_starts_with=f"{project.id}/")) == []


# --- the pure parts
def test_prediction_ids_sort_newest_first():
    now = datetime.now(UTC)
    ids = [new_prediction_id(now - timedelta(seconds=s)) for s in range(5)]
    assert ids == sorted(ids)
    assert all(str(uuid.UUID(i)) == i for i in ids)


def test_uncertainty():
    def preds(*values):
        return [{"probability": v} for v in values]

    assert uncertainty(preds(1.0, 0.0), False, False) == 0.0
    assert uncertainty(preds(0.5, 0.5), False, False) == 1.0
    assert 0 < uncertainty(preds(0.8, 0.1, 0.1), False, False) < 1
    assert uncertainty(preds(0.5), False, True) == 1.0
    assert uncertainty(preds(0.9), True, False) == pytest.approx(0.1)
    assert uncertainty([], True, False) == 1.0


def test_training_images_from_urls(url_predictor, unique_name):
    """create_images_from_urls fetches through the SSRF-safe fetcher: one URL that answers 404 is
    that image's ErrorSource (207), the others are stored with their tags and regions."""
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from azure.cognitiveservices.vision.customvision.training.models import (
        ImageUrlCreateBatch,
        ImageUrlCreateEntry,
        Region,
    )

    relaxed = CustomVisionTrainingClient(url_predictor.config.endpoint,
                                         ApiKeyCredentials(in_headers={"Training-Key": TEST_API_KEY}))
    project = relaxed.create_project(unique_name("cv-urls"), domain_id="da2e3a8a-40a5-4171-82f4-58522f70fbc1")
    tag = relaxed.create_tag(project.id, "thing")
    scenes = list(detection("test", count=2).images.values())
    with ImageServer({"/a.jpg": scenes[0], "/b.jpg": scenes[1]}) as server:
        batch = ImageUrlCreateBatch(images=[
            ImageUrlCreateEntry(url=server.url("/a.jpg"), regions=[
                Region(tag_id=tag.id, left=0.1, top=0.1, width=0.3, height=0.3)]),
            ImageUrlCreateEntry(url=server.url("/b.jpg"), tag_ids=[tag.id]),
            ImageUrlCreateEntry(url=server.url("/missing.jpg"), tag_ids=[tag.id])])
        summary = relaxed.create_images_from_urls(project.id, batch)
    assert not summary.is_batch_successful
    assert [i.status for i in summary.images] == ["OK", "OK", "ErrorSource"]
    assert summary.images[0].source_url == server.url("/a.jpg")
    assert summary.images[0].image.regions[0].tag_name == "thing"
    assert relaxed.get_image_count(project.id) == 2
    relaxed.delete_project(project.id)
