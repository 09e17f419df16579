"""Prediction, quick test, stored predictions, the smart labeler and region proposals
(docs/customvision.md#prediction).

Every prediction runs the iteration's Loupe model through the analyze route's machinery: the same
``PredictorCache`` (one loaded session per model, shared with /computervision) and the same safe,
draft-scale decode (``loupe.inference.decode_for``), so a Custom Vision prediction costs what an
analyze call costs. Model labels are the tag names at training time (``labels.json``); they map
back to tag ids through ``IterationRecord.tag_names``.

Stored predictions are rows of the predictions table (partition = project id) with the image
bytes in ``prediction_blob``. Their id is a GUID whose first 12 hex digits are an inverted
millisecond timestamp: the table returns a partition in RowKey order, so "Newest" pages are plain
range reads with the last RowKey as continuation, and ``startTime``/``endTime`` become RowKey bounds.

The smart labeler's scores are cached per (iteration, image) as rows of the same table under
partition ``<project>~suggestions`` (an image's bytes never change under its id), so repeated
queries do not re-run the model on every untagged image.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from azure.core.exceptions import ResourceNotFoundError
from pydantic import Field

from loupe.customvision import limits
from loupe.customvision.blobs import ImageBlobs, image_prefix, prediction_blob
from loupe.customvision.domains import find_domain
from loupe.customvision.errors import CustomVisionError, bad_request, cv_error, not_found, unknown_image
from loupe.customvision.images import ImageService, NewImage, region_list, tag_id_list
from loupe.customvision.performance import iou
from loupe.customvision.projects import ProjectService, parse_id
from loupe.customvision.records import (
    ImageRecord,
    IterationRecord,
    PredictionRecord,
    ProjectRecord,
    Record,
    TagRecord,
)
from loupe.customvision.store import CustomVisionStore, RecordTable
from loupe.customvision.training import COMPLETED, IterationService
from loupe.errors import shown, text_problem
from loupe.inference import InferenceError, ModelNotFound, Predictor, PredictorCache, decode_for
from loupe.net.safe_fetch import TOO_LARGE, UrlFetchError, fetch_url
from loupe.storage.entities import parse_time, utc_now, wire_time
from loupe.storage.names import CV_PREDICTIONS_TABLE

# the SDK's bounds: delete_prediction's ids and suggest_tags_and_regions' imageIds have max_items=64;
# query_predictions is "Limited to combining 2 tags" (its docstring)
MAX_DELETE_IDS = 64
MAX_SUGGEST_IMAGES = 64
MAX_QUERY_TAGS = 2
MAX_QUERY_COUNT = limits.MAX_TAKE  # maxCount of a query (stored predictions, suggested images)
MAX_APPLICATION = 256
MAX_URL = 8192
# a Newest page stops after reading this many rows (its continuation resumes there): a tag filter
# that matches little never turns one request into a scan of every stored prediction
MAX_SCANNED_ROWS = 5000
# the smart labeler scores at most this many not-yet-scored images per request; a bigger backlog of
# untagged images is covered by the following requests (scores are cached), never by one long call
MAX_SCORED_PER_REQUEST = 64
# the predictions a stored row keeps (a detector's floor already bounds them; this bounds the row)
MAX_STORED_PREDICTIONS = 500
# a URL fetch gives up after this long (analyze's fetch uses the same)
URL_TIMEOUT_S = 10.0
SUGGESTIONS = "~suggestions"
_SPAN = 16 ** 12 - 1  # the inverted-time prefix of a stored prediction's id: 12 hex digits of ms
_ORDERS = {"newest": "Newest", "oldest": "Oldest"}
_SORTS = {"uncertaintyascending": "UncertaintyAscending", "uncertaintydescending": "UncertaintyDescending"}
# loupe.inference inner codes -> Custom Vision codes (the same image refused the same way as an upload)
_IMAGE_CODES = {"InvalidImageSize": "BadRequestImageSizeBytes", "InvalidImageDimension": "BadRequestImageDimensions",
                "InvalidImageFormat": "BadRequestImageFormat"}


class StoredPrediction(PredictionRecord):
    """A stored prediction with what a query filters on beyond PredictionRecord."""

    application: str | None = None


class Suggestion(Record):
    """One image scored by one iteration, for the smart labeler (id = ``<iteration>_<image>``)."""

    id: str
    project_id: str
    iteration_id: str
    image_id: str
    created: datetime = Field(default_factory=utc_now)
    predictions: list[dict]
    uncertainty: float


@dataclass
class Target:
    """What a prediction runs: the project, the iteration, the task and the tags as they are now."""

    project: ProjectRecord
    iteration: IterationRecord
    detection: bool
    tags: dict[str, TagRecord]


def new_prediction_id(moment: datetime) -> str:
    """A GUID that sorts newest first: inverted milliseconds, then 80 random bits."""
    return str(uuid.UUID(f"{_SPAN - int(moment.timestamp() * 1000):012x}" + uuid.uuid4().hex[12:]))


def _time_key(moment: datetime) -> str:
    """The RowKey prefix of predictions made in this millisecond (as new_prediction_id formats it)."""
    digits = f"{_SPAN - int(moment.timestamp() * 1000):012x}"
    return f"{digits[:8]}-{digits[8:]}"


def _probability(value: float) -> float:
    """Clamped to 0-1, as the shortest decimal of the network's float32 (0.9, not 0.8999999761581421)."""
    return float(str(np.float32(min(1.0, max(0.0, float(value))))))


def uncertainty(predictions: list[dict], detection: bool, multilabel: bool) -> float:
    """``predictionUncertainty`` (the SDK documents it as the entropy of the suggestion), in 0-1.

    Multiclass: the entropy of the tag distribution over log(number of tags). Multilabel: the mean
    binary entropy of the tags (each is its own yes/no). Detection: 1 - the best box's score (no
    box: 1), as a detector's scores are per box, not a distribution.
    """
    scores = [p["probability"] for p in predictions]
    if detection:
        return round(1.0 - max(scores, default=0.0), 6)
    if not scores:
        return 1.0
    if multilabel:
        binary = [-(p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2) if 0 < p < 1 else 0.0
                  for p in scores]
        return round(sum(binary) / len(binary), 6)
    if len(scores) < 2:
        return 0.0
    total = sum(scores) or 1.0
    entropy = -sum(p / total * math.log(p / total) for p in scores if p > 0)
    return round(min(1.0, entropy / math.log(len(scores))), 6)


def _lower_keys(body: Any, what: str) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_request("BadRequest", f"{what} must be a JSON object.")
    return {str(k).lower(): v for k, v in body.items()}


def _max_count(value: Any) -> int:
    if value is None or value == 0:
        return limits.DEFAULT_TAKE
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_request("BadRequestPredictionInvalidQueryParameters", "maxCount must be a positive integer.")
    if value > MAX_QUERY_COUNT:
        raise bad_request("BadRequestPredictionResultsExceededCount", f"maxCount is {value}; at most "
                          f"{MAX_QUERY_COUNT} results are returned per request (page with the continuation).")
    return value


def _threshold(value: Any, name: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise bad_request("BadRequestPredictionInvalidQueryParameters", f"{name} must be a number from 0 to 1.")
    return float(value)


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(token: Any, prefix: str) -> str | None:
    """The position an opaque continuation holds, or None for the first page; a token this query
    did not make is a 400."""
    if token in (None, ""):
        return None
    try:
        text = base64.urlsafe_b64decode(str(token)[:512].encode()).decode() if isinstance(token, str) else ""
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith(prefix + ":"):
        raise bad_request("BadRequestPredictionInvalidQueryParameters",
                          "continuation is not one this query returned; send it back unchanged.")
    return text[len(prefix) + 1:]


@dataclass
class PredictionQuery:
    max_count: int
    order: str
    tags: list[tuple[str, float, float]]
    iteration_id: str | None
    start: datetime | None
    end: datetime | None
    application: str | None
    after: str | None  # the RowKey the previous page ended at

    @classmethod
    def parse(cls, token: dict[str, Any]) -> PredictionQuery:
        order = _ORDERS.get(str(token.get("orderby") or "Newest").strip().lower())
        if order is None:
            raise bad_request("BadRequestPredictionInvalidQueryParameters", f"orderBy "
                              f"'{shown(str(token.get('orderby')), 32)}' is not Newest or Oldest.")
        raw_tags = token.get("tags") or []
        if not isinstance(raw_tags, list) or not all(isinstance(t, dict) for t in raw_tags):
            raise bad_request("BadRequestPredictionInvalidQueryParameters", "tags must be a list of "
                              "{id, minThreshold, maxThreshold}.")
        if len(raw_tags) > MAX_QUERY_TAGS:
            raise bad_request("BadRequestPredictionTagsExceededCount", f"tags holds {len(raw_tags)} filters; at "
                              f"most {MAX_QUERY_TAGS} can be combined.")
        tags = []
        for raw in raw_tags:
            tag = {str(k).lower(): v for k, v in raw.items()}
            low = _threshold(tag.get("minthreshold"), "minThreshold", 0.0)
            high = _threshold(tag.get("maxthreshold"), "maxThreshold", 1.0)
            if low > high:
                raise bad_request("BadRequestPredictionInvalidQueryParameters", "minThreshold is above maxThreshold.")
            tags.append((parse_id(str(tag.get("id") or ""), "tag", "BadRequestPredictionInvalidQueryParameters"),
                         low, high))
        iteration = token.get("iterationid")
        application = token.get("application")
        return cls(max_count=_max_count(token.get("maxcount")), order=order, tags=tags,
                   iteration_id=parse_id(str(iteration), "iteration", "BadRequestPredictionInvalidQueryParameters")
                   if iteration else None,
                   start=_time(token.get("starttime"), "startTime"), end=_time(token.get("endtime"), "endTime"),
                   application=str(application) if application else None,
                   after=_id_position(_decode(token.get("continuation"), order)))

    def matches(self, record: StoredPrediction) -> bool:
        if self.iteration_id and record.iteration_id != self.iteration_id:
            return False
        if self.application and record.application != self.application:
            return False
        if self.start and record.created < self.start or self.end and record.created > self.end:
            return False
        return all(any(p.get("tagId") == tag and low <= p.get("probability", -1) <= high for p in record.predictions)
                   for tag, low, high in self.tags)


def _time(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = parse_time(str(value))
    except ValueError:
        raise bad_request("BadRequestPredictionInvalidQueryParameters", f"{name} is not an ISO 8601 time.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=utc_now().tzinfo)


def _id_position(value: str | None) -> str | None:
    if value is None:
        return None
    return parse_id(value, "continuation", "BadRequestPredictionInvalidQueryParameters")


class _RecentTargets:
    """(project id, publish name) -> Target, each kept ``ttl`` seconds; thread-safe, bounded."""

    MAX = 256

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], tuple[float, Target]] = {}

    def get(self, key: tuple[str, str]) -> Target | None:
        with self._lock:
            found = self._items.get(key)
        return found[1] if found and found[0] > time.monotonic() else None

    def put(self, key: tuple[str, str], target: Target) -> None:
        with self._lock:
            if len(self._items) >= self.MAX:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl, target)

    def forget(self, project_id: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == project_id]:
                del self._items[key]


class PredictionService:
    def __init__(self, store: CustomVisionStore, blobs: ImageBlobs, projects: ProjectService,
                 iterations: IterationService, images: ImageService,
                 predictors: Callable[[], PredictorCache]) -> None:
        self.store = store
        self.blobs = blobs
        self.projects = projects
        self.iterations = iterations
        self.images = images
        self._predictors = predictors
        self.settings = store.storage.settings
        self.stored = RecordTable(store.storage, CV_PREDICTIONS_TABLE, StoredPrediction, lambda r: r.project_id)
        self.suggestions = RecordTable(store.storage, CV_PREDICTIONS_TABLE, Suggestion,
                                       lambda r: r.project_id + SUGGESTIONS)
        self._published = _RecentTargets(self.settings.inference_version_ttl_seconds)

    # --- which iteration runs
    def target(self, project_id: str, *, published_name: str | None = None, iteration_id: str | None = None,
               task: str | None = None) -> Target:
        """The iteration a request runs: by publish name (Prediction API), by id, or the project's
        newest Completed one (quick test without iterationId). A published target is remembered for
        ``inference_version_ttl_seconds``, as the predictors are: the Prediction API's hot path then
        reads no table (publishing, unpublishing and deletions in this process forget it at once)."""
        key = (project_id.strip().lower(), published_name) if published_name is not None else None
        target = self._published.get(key) if key else None
        if target is None:
            target = self._resolve(project_id, published_name, iteration_id)
            if key:
                self._published.put(key, target)
        if task is not None and (task == "detect") != target.detection:
            # a documented code for "not for this project's domain"; the message says which call to use
            detection = target.detection
            right = "detect_image / detect_image_url" if detection else "classify_image / classify_image_url"
            raise bad_request("BadRequestUnsupportedDomain", f"Project '{target.project.id}' is "
                              f"{'an object detection' if detection else 'a classification'} project; "
                              f"use {right} (the /{'detect' if detection else 'classify'}/ routes).")
        return target

    def forget_targets(self, project_id: str) -> None:
        self._published.forget(project_id.strip().lower())

    def _resolve(self, project_id: str, published_name: str | None, iteration_id: str | None) -> Target:
        project = self.projects.get(project_id)
        if published_name is not None:
            iteration = self.iterations.published(project.id, published_name)
            if iteration is None:
                # what the retired service answered for a name no iteration is published under
                raise not_found("NotFoundIteration", f"Invalid iteration: no iteration of project '{project.id}' "
                                f"is published as '{shown(published_name, 64)}'; publish one with publish_iteration.")
        elif iteration_id:
            iteration = self.iterations.get(project.id, parse_id(iteration_id, "iteration", "BadRequestInvalidIds"))
        else:
            done = [i for i in self.iterations.list(project.id) if i.status == COMPLETED]
            if not done:
                # the SDK: "The default iteration for the project will be used when not specified"
                raise not_found("NotFoundProjectDefaultIteration", f"Project '{project.id}' has no Completed "
                                "iteration to test with; train one, or pass iterationId.")
            iteration = max(done, key=lambda i: (i.created, i.id))
        if self.iterations.status(iteration) != COMPLETED:
            raise bad_request("BadRequestIterationIsNotTrained", f"Iteration '{iteration.id}' is "
                              f"{self.iterations.status(iteration)}; only a Completed iteration predicts.")
        domain = find_domain(iteration.domain_id) or self.projects.domain(project)
        return Target(project, iteration, domain.is_detection, self.images.tag_map(project.id))

    def _predictor(self, target: Target) -> Predictor:
        try:
            predictor = self._predictors().get(target.iteration.model_name)
        except ModelNotFound:
            raise not_found("ErrorPredictionModelNotFound", f"The model of iteration '{target.iteration.id}' no "
                            "longer exists (it was deleted under /computervision/models); train again.") from None
        except InferenceError as exc:
            raise cv_error(min(500, exc.status), "ErrorPrediction", exc.message) from None
        if predictor.is_detector != target.detection:
            raise cv_error(500, "ErrorPrediction", f"The model of iteration '{target.iteration.id}' is not a "
                           f"{'detector' if target.detection else 'classifier'}.")
        return predictor

    # --- running the model
    def run(self, target: Target, data: bytes,
            max_bytes: int = limits.PREDICTION_IMAGE_BYTES) -> tuple[list[dict], tuple[int, int]]:
        """The wire's Prediction objects for one image (every tag for a classifier, sorted by
        probability; every box over the model's floor for a detector), and the image's size."""
        if not data:
            raise bad_request("BadRequestImageStream", "The image is empty; send the image bytes.")
        if len(data) > max_bytes:
            raise bad_request("BadRequestImageSizeBytes", f"The image is {len(data)} bytes; at most {max_bytes} "
                              "are allowed.")
        predictor = self._predictor(target)
        try:
            image, info = decode_for(predictor, data)
        except InferenceError as exc:
            raise bad_request(_IMAGE_CODES.get(exc.inner_code or "", "BadRequestImageFormat"), exc.message) from None
        names = {name: tag_id for tag_id, name in target.iteration.tag_names.items()}
        if target.detection:
            found = predictor.detections(image, original_size=(info.width, info.height))
            return self._boxes(predictor, found, info.width, info.height, names, target.tags), (info.width, info.height)
        scores = np.asarray(predictor.class_scores([image])[0], dtype=np.float64)
        out = [self._prediction(label, float(score), names, target.tags, None)
               for label, score in zip(predictor.labels, scores, strict=False)]
        # stable: ties keep label order
        return sorted(out, key=lambda p: -p["probability"]), (info.width, info.height)

    @staticmethod
    def _prediction(label: str, score: float, names: dict[str, str], tags: dict[str, TagRecord],
                    box: dict | None) -> dict[str, Any]:
        tag_id = names.get(label)
        tag = tags.get(tag_id or "")
        return {"probability": _probability(score), "tagId": tag_id, "tagName": tag.name if tag else label,
                "boundingBox": box, "tagType": tag.type if tag else "Regular"}

    def _boxes(self, predictor: Predictor, found, width: int, height: int, names: dict[str, str],
               tags: dict[str, TagRecord]) -> list[dict]:
        out = []
        floor = predictor.preprocessing.score_threshold
        for (x1, y1, x2, y2), score, label in zip(found.boxes, found.scores, found.labels, strict=False):
            x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
            y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
            index = int(label)
            if not score >= floor or not (x2 > x1 and y2 > y1) or not 0 <= index < len(predictor.labels):
                continue  # below the floor (or NaN), empty or outside the image, or an unknown label
            left, top = round(x1 / width, 6), round(y1 / height, 6)
            box = {"left": left, "top": top, "width": min(round((x2 - x1) / width, 6), round(1 - left, 6)),
                   "height": min(round((y2 - y1) / height, 6), round(1 - top, 6))}
            out.append(self._prediction(predictor.labels[index], float(score), names, tags, box))
        return sorted(out, key=lambda p: -p["probability"])[:MAX_STORED_PREDICTIONS]

    # --- prediction and quick test
    def predict(self, project_id: str, image_bytes: bytes, *, published_name: str | None = None,
                iteration_id: str | None = None, store: bool, application: str | None = None,
                task: str | None = None, max_bytes: int = limits.PREDICTION_IMAGE_BYTES) -> dict[str, Any]:
        """ImagePrediction. ``store``: the image and the result are kept (query_predictions finds
        them, create_images_from_predictions turns them into training images)."""
        application = self._application(application)
        target = self.target(project_id, published_name=published_name, iteration_id=iteration_id, task=task)
        return self._predict(target, image_bytes, store, application, max_bytes)

    def predict_url(self, project_id: str, url: Any, *, published_name: str | None = None,
                    iteration_id: str | None = None, store: bool, application: str | None = None,
                    task: str | None = None, max_bytes: int = limits.PREDICTION_IMAGE_BYTES) -> dict[str, Any]:
        """The same for an image URL, fetched safely (loupe.net) only once the target is known."""
        application = self._application(application)
        target = self.target(project_id, published_name=published_name, iteration_id=iteration_id, task=task)
        return self._predict(target, self.fetch(url, max_bytes), store, application, max_bytes)

    def fetch(self, url: Any, max_bytes: int) -> bytes:
        if not isinstance(url, str) or not url.strip():
            raise bad_request("BadRequestImageUrl", 'The body must be {"url": "<image URL>"}.')
        if len(url) > MAX_URL:
            raise bad_request("BadRequestImageUrl", f"The URL is {len(url)} characters long; at most {MAX_URL}.")
        try:
            return fetch_url(url.strip(), max_bytes=max_bytes, timeout_s=URL_TIMEOUT_S,
                             allow_http=self.settings.allow_http_image_urls,
                             allow_loopback=self.settings.allow_loopback_image_urls)
        except UrlFetchError as exc:
            if exc.code == TOO_LARGE:
                raise bad_request("BadRequestImageSizeBytes", f"The image is larger than {max_bytes} bytes.") from None
            raise bad_request("BadRequestImageUrl", f"Cannot use the image URL: {exc.message}.") from None

    @staticmethod
    def _application(value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if len(value) > MAX_APPLICATION or text_problem(value):
            raise bad_request("BadRequestPredictionInvalidApplicationName", f"application '{shown(value, 64)}' must "
                              f"be at most {MAX_APPLICATION} printable characters.")
        return value

    def _predict(self, target: Target, data: bytes, store: bool, application: str | None,
                 max_bytes: int) -> dict[str, Any]:
        predictions, (width, height) = self.run(target, data, max_bytes)
        created = utc_now()
        if not store:
            prediction_id = str(uuid.uuid4())
        else:
            prediction_id = new_prediction_id(created)
            # the bytes first: a stored row never points at a missing image
            self.blobs.put(prediction_blob(target.project.id, prediction_id), data)
            self.stored.create(StoredPrediction(
                id=prediction_id, project_id=target.project.id, iteration_id=target.iteration.id, created=created,
                width=width, height=height, sha256=hashlib.sha256(data).hexdigest(), predictions=predictions,
                application=application))
        return {"id": prediction_id, "project": target.project.id, "iteration": target.iteration.id,
                "created": wire_time(created), "predictions": predictions}

    # --- stored predictions
    def query(self, project_id: str, token: Any) -> dict[str, Any]:
        """PredictionQueryResult: a page of stored predictions and the token of the next page
        (``continuation`` None when there is none)."""
        project = self.projects.get(project_id)
        raw = _lower_keys(token, "The query")
        query = PredictionQuery.parse(raw)
        found, position = (self._newest if query.order == "Newest" else self._oldest)(project.id, query)
        link = self.blobs.link
        results = []
        for record in found:
            original = link(prediction_blob(project.id, record.id))
            results.append({"resizedImageUri": original, "thumbnailUri": original, "originalImageUri": original,
                            "domain": project.domain_id, "id": record.id, "project": project.id,
                            "iteration": record.iteration_id, "created": wire_time(record.created),
                            "predictions": record.predictions})
        echoed = {"session": raw.get("session"), "continuation": _encode(f"{query.order}:{position}") if position
                  else None, "maxCount": query.max_count, "orderBy": query.order,
                  "tags": [{"id": t, "minThreshold": low, "maxThreshold": high} for t, low, high in query.tags],
                  "iterationId": query.iteration_id, "startTime": wire_time(query.start) if query.start else None,
                  "endTime": wire_time(query.end) if query.end else None, "application": query.application}
        return {"token": echoed, "results": results}

    def _range(self, project_id: str, query: PredictionQuery, after_op: str) -> tuple[str, dict[str, Any]]:
        clauses, values = ["PartitionKey eq @p"], {"p": project_id}
        if query.after:
            clauses.append(f"RowKey {after_op} @after")
            values["after"] = query.after
        if query.end:  # made at or before endTime: RowKey at or after its inverted time
            clauses.append("RowKey ge @low")
            values["low"] = _time_key(query.end)
        if query.start:
            clauses.append("RowKey lt @high")
            values["high"] = _time_key(query.start) + "~"
        return " and ".join(clauses), values

    def _newest(self, project_id: str, query: PredictionQuery) -> tuple[list[StoredPrediction], str | None]:
        found: list[StoredPrediction] = []
        for scanned, stored in enumerate(self.stored.store.query(*self._range(project_id, query, "gt")), start=1):
            if query.matches(stored.value):
                found.append(stored.value)
            if len(found) == query.max_count or scanned >= MAX_SCANNED_ROWS:
                return found, stored.value.id
        return found, None

    def _oldest(self, project_id: str, query: PredictionQuery) -> tuple[list[StoredPrediction], str | None]:
        """The table reads newest first: keep the last ``max_count`` matches of the range (the oldest)."""
        kept: deque[StoredPrediction] = deque(maxlen=query.max_count)
        total = 0
        for stored in self.stored.store.query(*self._range(project_id, query, "lt")):
            if query.matches(stored.value):
                kept.append(stored.value)
                total += 1
        page = list(reversed(kept))
        return page, (page[-1].id if total > len(page) and page else None)

    def delete(self, project_id: str, ids: list[str]) -> None:
        project = self.projects.get(project_id)
        if not ids:
            raise bad_request("BadRequestPredictionIdsMissing", "Give the ids of the predictions to delete.")
        if len(ids) > MAX_DELETE_IDS:
            raise bad_request("BadRequestPredictionIdsExceededCount", f"{len(ids)} ids; at most {MAX_DELETE_IDS} "
                              "predictions are deleted per request.")
        for prediction_id in [parse_id(i, "prediction", "BadRequestInvalidIds") for i in ids]:
            self.stored.delete(project.id, prediction_id)
            self.blobs.delete_prefix(prediction_blob(project.id, prediction_id).rsplit("/", 1)[0] + "/")

    def to_training_images(self, project_id: str, batch: Any) -> tuple[dict[str, Any], int]:
        """create_images_from_predictions: each stored prediction's image through ImageService.add,
        so every check and status of an upload applies; an unknown id is that image's ErrorSource."""
        project = self.projects.get(project_id)
        body = _lower_keys(batch, "The batch")
        entries = body.get("images")
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise bad_request("BadRequestImageBatch", "The batch must hold a non-empty 'images' list of {id, tagIds, "
                              "regions}.")
        if len(entries) > limits.MAX_BATCH_IMAGES:
            raise bad_request("BadRequestImageBatch", f"The batch holds {len(entries)} images; at most "
                              f"{limits.MAX_BATCH_IMAGES} are allowed per request.")
        images = [self._new_image(project.id, {str(k).lower(): v for k, v in entry.items()}, index)
                  for index, entry in enumerate(entries)]
        metadata = body.get("metadata")
        return self.images.add(project.id, images, tag_id_list(body.get("tagids"), "tagIds"), metadata)

    def _new_image(self, project_id: str, entry: dict[str, Any], index: int) -> NewImage:
        tag_ids = tag_id_list(entry.get("tagids"), f"images[{index}].tagIds")
        regions = region_list(entry.get("regions"), f"images[{index}].regions")
        raw = entry.get("id")
        source = shown(str(raw), 64) if raw is not None else None
        try:
            prediction_id = parse_id(str(raw or ""), "prediction", "BadRequestInvalidIds")
        except CustomVisionError as exc:
            return NewImage(None, source, tag_ids, regions, failure="ErrorSource", failure_message=exc.message)
        record = self.stored.get(project_id, prediction_id)
        if record is None:
            return NewImage(None, source, tag_ids, regions, failure="ErrorSource",
                            failure_message=f"prediction '{prediction_id}' is not a stored prediction of this project")
        try:
            data = self.blobs.read(prediction_blob(project_id, prediction_id))
        except ResourceNotFoundError:  # deleted meanwhile: this image's failure, not the batch's
            return NewImage(None, source, tag_ids, regions, failure="ErrorSource",
                            failure_message=f"the image of prediction '{prediction_id}' is gone")
        return NewImage(data, prediction_id, tag_ids, regions)

    # --- the smart labeler
    def _scored(self, target: Target, images: Iterable[ImageRecord], budget: int | None) -> dict[str, Suggestion]:
        """Cached suggestions of ``images`` for the iteration; up to ``budget`` missing ones are
        scored now (None: all of them, for an explicit list that is already bounded)."""
        iteration = target.iteration
        prefix = f"{iteration.id}_"
        cached = {s.value.image_id: s.value for s in self.suggestions.store.query(
            "PartitionKey eq @p and RowKey ge @low and RowKey lt @high",
            {"p": target.project.id + SUGGESTIONS, "low": prefix, "high": f"{iteration.id}`"})}
        out: dict[str, Suggestion] = {}
        scored = 0
        for image in images:
            found = cached.get(image.id)
            if found is None:
                if budget is not None and scored >= budget:
                    continue
                found = self._score(target, image)
                scored += 1
            out[image.id] = found
        return out

    def _score(self, target: Target, image: ImageRecord) -> Suggestion:
        try:
            # the resized copy (at most 1024 px) holds everything the network input does
            data = self.blobs.read(image_prefix(image.project_id, image.id) + "resized")
            predictions, _ = self.run(target, data, max_bytes=limits.TRAINING_IMAGE_LIMITS.max_bytes)
        except CustomVisionError as exc:
            if exc.status >= 500:
                raise
            predictions = []  # an image the model cannot read suggests nothing (and is not retried)
        except ResourceNotFoundError:
            predictions = []  # the image was deleted meanwhile
        multilabel = target.iteration.classification_type == "Multilabel"
        record = Suggestion(id=f"{target.iteration.id}_{image.id}", project_id=target.project.id,
                            iteration_id=target.iteration.id, image_id=image.id, predictions=predictions,
                            uncertainty=uncertainty(predictions, target.detection, multilabel))
        return self.suggestions.put(record)

    def _suggestion_wire(self, target: Target, suggestion: Suggestion, predictions: list[dict],
                         image: ImageRecord | None = None) -> dict[str, Any]:
        body = {"id": suggestion.image_id, "project": target.project.id, "iteration": target.iteration.id,
                "created": wire_time(suggestion.created),
                "predictions": predictions, "predictionUncertainty": suggestion.uncertainty}
        if image is not None:
            prefix = image_prefix(image.project_id, image.id)
            body.update({"width": image.width, "height": image.height, "domain": target.project.domain_id,
                         "resizedImageUri": self.blobs.link(prefix + "resized"),
                         "thumbnailUri": self.blobs.link(prefix + "thumbnail"),
                         "originalImageUri": self.blobs.link(prefix + "original")})
        return body

    def suggest(self, project_id: str, iteration_id: str | None, image_ids: list[str]) -> list[dict[str, Any]]:
        """SuggestedTagAndRegion of each image (its predictions and their uncertainty)."""
        target = self._labeler_target(project_id, iteration_id)
        if not image_ids:
            raise bad_request("BadRequestInvalidIds", "Give imageIds (at most 64) to suggest tags and regions for.")
        if len(image_ids) > MAX_SUGGEST_IMAGES:
            raise bad_request("BadRequestExceededBatchSize", f"{len(image_ids)} imageIds; at most "
                              f"{MAX_SUGGEST_IMAGES} are allowed per request.")
        images = []
        for raw in dict.fromkeys(parse_id(i, "image", "BadRequestInvalidIds") for i in image_ids):
            image = self.store.images.get(target.project.id, raw)
            if image is None:
                raise unknown_image(raw)
            images.append(image)
        scored = self._scored(target, images, None)
        return [self._suggestion_wire(target, scored[i.id], scored[i.id].predictions) for i in images]

    def _labeler_target(self, project_id: str, iteration_id: str | None) -> Target:
        if not iteration_id:
            raise bad_request("BadRequestRequiredParamIsNull", "iterationId is required: the iteration whose "
                              "model suggests the tags.")
        return self.target(project_id, iteration_id=iteration_id)

    def _untagged(self, target: Target) -> tuple[dict[str, ImageRecord], dict[str, Suggestion]]:
        untagged = sorted((i for i in self.store.images.all(target.project.id) if not i.tagged),
                          key=lambda i: (i.created, i.id), reverse=True)
        return {i.id: i for i in untagged}, self._scored(target, untagged, MAX_SCORED_PER_REQUEST)

    @staticmethod
    def _filter(predictions: list[dict], tag_ids: set[str] | None, threshold: float) -> list[dict]:
        return [p for p in predictions if p["probability"] >= threshold and (not tag_ids or p.get("tagId") in tag_ids)]

    def _tag_filter(self, target: Target, raw: Any) -> set[str] | None:
        if raw in (None, []):
            return None
        if not isinstance(raw, list) or len(raw) > limits.MAX_BATCH_TAGS:
            raise bad_request("BadRequestInvalidIds", f"tagIds must be a list of at most {limits.MAX_BATCH_TAGS} "
                              "tag ids.")
        return set(self.images.check_tag_ids([str(t) for t in raw], target.tags, "tagIds"))

    def query_suggested(self, project_id: str, iteration_id: str | None, token: Any) -> dict[str, Any]:
        """SuggestedTagAndRegionQuery: the project's untagged images whose suggestions match
        ``tagIds`` at ``threshold``, sorted by uncertainty, a page at a time."""
        target = self._labeler_target(project_id, iteration_id)
        raw = _lower_keys(token, "The query")
        tag_ids = self._tag_filter(target, raw.get("tagids"))
        threshold = _threshold(raw.get("threshold"), "threshold", 0.0)
        sort = _SORTS.get(str(raw.get("sortby") or "UncertaintyDescending").strip().lower())
        if sort is None:
            raise bad_request("BadRequestPredictionInvalidQueryParameters", "sortBy must be UncertaintyAscending or "
                              "UncertaintyDescending.")
        max_count = _max_count(raw.get("maxcount"))
        after = _decode(raw.get("continuation"), sort)
        images, scored = self._untagged(target)
        rows = []
        for suggestion in scored.values():
            matched = self._filter(suggestion.predictions, tag_ids, threshold)
            if matched or (not tag_ids and not threshold):
                rows.append((suggestion, matched))
        descending = sort == "UncertaintyDescending"

        def order(uncertainty: float, image_id: str) -> tuple[float, str]:
            return (-uncertainty if descending else uncertainty, image_id)

        rows.sort(key=lambda r: order(r[0].uncertainty, r[0].image_id))
        if after is not None:  # a keyset: images scored since the previous page still land in order
            last = order(*_parse_position(after))
            rows = [r for r in rows if order(r[0].uncertainty, r[0].image_id) > last]
        page = rows[:max_count]
        echoed = {"tagIds": sorted(tag_ids) if tag_ids else None, "threshold": threshold,
                  "session": raw.get("session"), "maxCount": max_count, "sortBy": sort,
                  "continuation": _encode(f"{sort}:{page[-1][0].uncertainty!r}|{page[-1][0].image_id}")
                  if len(rows) > max_count else None}
        return {"token": echoed, "results": [self._suggestion_wire(target, s, matched, images[s.image_id])
                                             for s, matched in page]}

    def suggested_count(self, project_id: str, iteration_id: str | None, tag_filter: Any) -> dict[str, int]:
        """{tagId: untagged images with a suggestion of that tag at or above the threshold}."""
        target = self._labeler_target(project_id, iteration_id)
        raw = _lower_keys(tag_filter, "The tag filter")
        tag_ids = self._tag_filter(target, raw.get("tagids"))
        threshold = _threshold(raw.get("threshold"), "threshold", 0.0)
        wanted = sorted(tag_ids) if tag_ids else sorted(t for t in target.iteration.tag_names if t in target.tags)
        counts = dict.fromkeys(wanted, 0)
        _, scored = self._untagged(target)
        for suggestion in scored.values():
            for tag_id in {p.get("tagId") for p in suggestion.predictions if p["probability"] >= threshold}:
                if tag_id in counts:
                    counts[tag_id] += 1
        return counts

    # --- region proposals
    def region_proposals(self, project_id: str, image_id: str) -> dict[str, Any]:
        """ImageRegionProposal. A detection project's proposals are its newest Completed
        iteration's boxes (class-agnostic: overlapping boxes of different tags count once). Without
        a trained detector there are none: the SDK documents "an empty array if no proposals are
        found"."""
        project = self.projects.get(project_id)
        image = self.images.get(project.id, image_id)
        proposals: list[dict] = []
        done = [i for i in self.iterations.list(project.id) if i.status == COMPLETED]
        if self.projects.domain(project).is_detection and done:
            target = self.target(project.id, iteration_id=max(done, key=lambda i: (i.created, i.id)).id)
            if target.detection:
                boxes = self._scored(target, [image], None)[image.id].predictions
                for box in boxes:  # sorted by probability: a box overlapping a better one is a duplicate
                    if box["boundingBox"] and all(_iou(box["boundingBox"], p["boundingBox"]) < 0.7 for p in proposals):
                        proposals.append({"confidence": box["probability"], "boundingBox": box["boundingBox"]})
        return {"projectId": project.id, "imageId": image.id, "proposals": proposals}

    # --- a deleted project
    def forget_project(self, project: ProjectRecord) -> None:
        """The suggestion cache (stored predictions' rows and blobs go with the project's partition
        and blob prefix)."""
        self.suggestions.delete_partition(project.id + SUGGESTIONS)


def _iou(a: dict, b: dict) -> float:
    """IoU of two wire bounding boxes (normalised left, top, width, height)."""
    keys = ("left", "top", "width", "height")
    return iou([a[k] for k in keys], [b[k] for k in keys])


def _parse_position(text: str) -> tuple[float, str]:
    value, _, image_id = text.partition("|")
    try:
        return float(value), image_id
    except ValueError:
        raise bad_request("BadRequestPredictionInvalidQueryParameters", "continuation is not one this query "
                          "returned; send it back unchanged.") from None
