"""Training images of Custom Vision projects (docs/customvision.md#images): uploads (bytes, base64
files, URLs, stored predictions), listing and counting, image tags, regions, metadata, deletion.

An upload batch is checked whole before anything is written (unknown tags, regions outside 0-1,
more than 64 images are a 400 for the batch); then each image gets its own status. An image's id
is derived from its bytes and its project, and its row is created atomically: the same bytes
uploaded again (a replayed POST, msrest retries) answer ``OKDuplicate`` with the stored image,
never a second copy. A batch where every image failed answers 400 with the first failure's code;
one where some failed answers 207.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from loupe.customvision import limits, wire
from loupe.customvision.blobs import ImageBlobs, image_prefix
from loupe.customvision.errors import bad_request, unknown_image
from loupe.customvision.projects import ProjectService, parse_id
from loupe.customvision.records import ImageRecord, ImageTag, ProjectRecord, Region, TagRecord
from loupe.customvision.store import CustomVisionStore
from loupe.errors import shown
from loupe.imaging import ImageRejected, decode_image
from loupe.storage.table_store import AlreadyExists

OK_STATUSES = ("OK", "OKDuplicate")
# the batch error of a batch whose every image failed, by the first image's status
_BATCH_CODES = {
    "ErrorImageFormat": "BadRequestImageFormat", "ErrorImageSize": "BadRequestImageSizeBytes",
    "ErrorImageDimensions": "BadRequestImageDimensions", "ErrorSource": "BadRequestImageUrl",
    "ErrorTagLimitExceed": "BadRequestExceedTagPerImageLimit", "ErrorRegionLimitExceed": "BadRequestImageRegions",
    "ErrorNegativeAndRegularTagOnSameImage": "BadRequestNegativeAndRegularTagOnSameImage",
    "ErrorLimitExceed": "BadRequestImageExceededCount", "ErrorStorage": "BadRequestImageStream",
}
_REJECTED = {"InvalidImageSize": "ErrorImageSize", "DecompressionBomb": "ErrorImageSize",
             "InvalidImageDimension": "ErrorImageDimensions"}


@dataclass
class RegionIn:
    tag_id: str
    left: float
    top: float
    width: float
    height: float


@dataclass
class NewImage:
    """One image of an upload batch: its bytes, or why there are none (a URL that failed)."""

    data: bytes | None
    source: str | None = None  # sourceUrl of the summary: the quoted file name, or the URL
    tag_ids: list[str] = field(default_factory=list)
    regions: list[RegionIn] = field(default_factory=list)
    failure: str | None = None  # a status when the bytes could not be had
    failure_message: str = ""


@dataclass
class Outcome:
    source: str | None
    status: str
    image: ImageRecord | None = None
    message: str = ""


def image_id_for(project_id: str, data: bytes) -> str:
    """The image's id: a GUID from its project and bytes (the same bytes, the same image)."""
    digest = hashlib.sha256(project_id.encode() + b"\0" + data).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def check_region(region: RegionIn, where: str) -> None:
    values = (region.left, region.top, region.width, region.height)
    if not all(isinstance(v, (int, float)) and v == v for v in values):
        raise bad_request("BadRequestImageRegions", f"{where}: left, top, width and height must be numbers.")
    if not (0 <= region.left <= 1 and 0 <= region.top <= 1 and 0 < region.width <= 1 and 0 < region.height <= 1
            and region.left + region.width <= 1 + 1e-6 and region.top + region.height <= 1 + 1e-6):
        raise bad_request("BadRequestImageRegions", f"{where}: the region ({region.left}, {region.top}, "
                          f"{region.width}, {region.height}) is not inside the image; left, top, width and "
                          "height are fractions of the image (0-1) and the box must end inside it.")


class ImageService:
    def __init__(self, store: CustomVisionStore, blobs: ImageBlobs, projects: ProjectService) -> None:
        self.store = store
        self.blobs = blobs
        self.projects = projects

    # --- uploads
    def add(self, project_id: str, images: list[NewImage], batch_tag_ids: Iterable[str] = (),
            metadata: dict[str, str] | None = None) -> tuple[dict[str, Any], int]:
        """The ImageCreateSummary and its status code (200, or 207 when some images failed);
        raises a 400 when the batch is malformed or every image failed."""
        project = self.projects.get(project_id)
        if not images:
            raise bad_request("BadRequestImageBatch", "The batch holds no images.")
        if len(images) > limits.MAX_BATCH_IMAGES:
            raise bad_request("BadRequestImageBatch", f"The batch holds {len(images)} images; at most "
                              f"{limits.MAX_BATCH_IMAGES} are allowed per request.")
        tags = self.tag_map(project.id)
        batch_tags = self.check_tag_ids(list(batch_tag_ids), tags, "tagIds")
        if len(batch_tags) > limits.MAX_BATCH_TAGS:
            raise bad_request("BadRequestImageTags", f"At most {limits.MAX_BATCH_TAGS} tagIds may be given for a batch.")
        for index, item in enumerate(images):
            item.tag_ids = self.check_tag_ids(item.tag_ids, tags, f"images[{index}].tagIds")
            for r, region in enumerate(item.regions):
                region.tag_id = self.check_tag_ids([region.tag_id], tags, f"images[{index}].regions[{r}].tagId")[0]
                check_region(region, f"images[{index}].regions[{r}]")
        meta = check_metadata(metadata or {})
        outcomes = [self._add_one(project, item, batch_tags, meta, tags) for item in images]
        return self.summary(outcomes, tags)

    def summary(self, outcomes: list[Outcome], tags: dict[str, TagRecord]) -> tuple[dict[str, Any], int]:
        names = {t.id: t.name for t in tags.values()}
        good = [o for o in outcomes if o.status in OK_STATUSES]
        if not good:
            first = outcomes[0]
            code = _BATCH_CODES.get(first.status, "BadRequestImageBatch")
            raise bad_request(code, f"No image was added: {first.message or first.status}"
                              + (f" (and {len(outcomes) - 1} more images failed)" if len(outcomes) > 1 else ""))
        body = {"isBatchSuccessful": len(good) == len(outcomes), "images": [
            {"sourceUrl": o.source, "status": o.status,
             "image": wire.image(o.image, names, self.blobs.link) if o.image is not None else None}
            for o in outcomes]}
        return body, 200 if len(good) == len(outcomes) else 207

    def _add_one(self, project: ProjectRecord, item: NewImage, batch_tags: list[str], metadata: dict[str, str],
                 tags: dict[str, TagRecord]) -> Outcome:
        if item.failure:
            return Outcome(item.source, item.failure, message=item.failure_message)
        data = item.data or b""
        tag_ids = list(dict.fromkeys(batch_tags + item.tag_ids))
        if len(tag_ids) > limits.MAX_TAGS_PER_IMAGE:
            return Outcome(item.source, "ErrorTagLimitExceed", message=f"{len(tag_ids)} tags on one image; at most "
                           f"{limits.MAX_TAGS_PER_IMAGE} are allowed")
        if len(item.regions) > limits.MAX_REGIONS_PER_IMAGE:
            return Outcome(item.source, "ErrorRegionLimitExceed", message=f"{len(item.regions)} regions on one "
                           f"image; at most {limits.MAX_REGIONS_PER_IMAGE} are allowed")
        if mixes_negative(tag_ids + [r.tag_id for r in item.regions], tags):
            return Outcome(item.source, "ErrorNegativeAndRegularTagOnSameImage",
                           message="an image with the Negative tag cannot carry other tags")
        try:
            picture, info = decode_image(data, limits.TRAINING_IMAGE_LIMITS, draft_size=(1024, 1024))
        except ImageRejected as exc:
            return Outcome(item.source, _REJECTED.get(exc.code, "ErrorImageFormat"), message=exc.message)
        if max(info.width, info.height) > limits.MAX_ASPECT_RATIO * min(info.width, info.height):
            return Outcome(item.source, "ErrorImageDimensions", message=f"the image is {info.width}x{info.height}; "
                           f"the aspect ratio may be at most {limits.MAX_ASPECT_RATIO:.0f}:1")
        image_id = image_id_for(project.id, data)
        existing = self.store.images.get(project.id, image_id)
        if existing is not None:
            return Outcome(item.source, "OKDuplicate", existing)
        self.blobs.put_image(project.id, image_id, data, picture)
        record = ImageRecord(
            id=image_id, project_id=project.id, width=info.width, height=info.height, format=info.format,
            size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
            tags=[ImageTag(tag_id=t) for t in tag_ids],
            regions=[Region(region_id=str(uuid.uuid4()), tag_id=r.tag_id, left=r.left, top=r.top, width=r.width,
                            height=r.height) for r in item.regions],
            metadata=metadata, source=(item.source or "").strip('"')[:1024] or None)
        try:
            self.store.images.create(record)
        except AlreadyExists:  # the same bytes arrived concurrently (a replayed request)
            return Outcome(item.source, "OKDuplicate", self.store.images.get(project.id, image_id))
        return Outcome(item.source, "OK", record)

    # --- tags of a project, as a request refers to them
    def tag_map(self, project_id: str) -> dict[str, TagRecord]:
        return {t.id: t for t in self.store.tags.all(project_id)}

    @staticmethod
    def check_tag_ids(values: list[str], tags: dict[str, TagRecord], where: str) -> list[str]:
        out = []
        for value in values:
            tag_id = parse_id(value, "tag", "BadRequestImageTags")
            if tag_id not in tags:
                raise bad_request("BadRequestImageTags", f"{where}: tag '{tag_id}' is not a tag of this project.")
            out.append(tag_id)
        return list(dict.fromkeys(out))

    # --- reads
    def get(self, project_id: str, image_id: str) -> ImageRecord:
        record = self.store.images.get(project_id, parse_id(image_id, "image", "BadRequestInvalidIds"))
        if record is None:
            raise unknown_image(image_id)
        return record

    def all(self, project_id: str) -> list[ImageRecord]:
        return self.store.images.all(self.projects.get(project_id).id)

    def query(self, project_id: str, *, tag_ids: list[str] | None = None, tagging: str = "All",
              order_by: str | None = None, image_ids: set[str] | None = None) -> list[ImageRecord]:
        """Images filtered by tagging status (All, Tagged, Untagged), by tags (any of them) and by id,
        newest first unless ``order_by`` is Oldest."""
        project = self.projects.get(project_id)
        tags = self.tag_map(project.id)
        wanted = set(self.check_tag_ids(tag_ids or [], tags, "tagIds")) if tag_ids else None
        tagging = (tagging or "All").strip().lower()
        if tagging not in ("all", "tagged", "untagged"):
            raise bad_request("BadRequestInvalid", f"taggingStatus '{shown(tagging)}' is not All, Tagged or Untagged.")
        found = []
        for image in self.store.images.all(project.id):
            if image_ids is not None and image.id not in image_ids:
                continue
            if tagging == "tagged" and not image.tagged or tagging == "untagged" and image.tagged:
                continue
            if wanted is not None and not (wanted & image.tag_ids()):
                continue
            found.append(image)
        oldest = (order_by or "Newest").strip().lower() == "oldest"
        return sorted(found, key=lambda i: (i.created, i.id), reverse=not oldest)

    def wire_all(self, project_id: str, images: list[ImageRecord]) -> list[dict[str, Any]]:
        names = {t.id: t.name for t in self.store.tags.all(project_id)}
        return [wire.image(image, names, self.blobs.link) for image in images]

    # --- changes to stored images
    def delete(self, project_id: str, image_ids: list[str] | None, all_images: bool = False) -> None:
        project = self.projects.get(project_id)
        if all_images:
            targets = [image.id for image in self.store.images.all(project.id)]
        else:
            if not image_ids:
                raise bad_request("BadRequestInvalidIds", "Give imageIds (at most 256) or allImages=true.")
            if len(image_ids) > limits.MAX_TAKE:
                raise bad_request("BadRequestInvalidIds", f"At most {limits.MAX_TAKE} imageIds per request.")
            targets = [parse_id(i, "image", "BadRequestInvalidIds") for i in image_ids]
        for image_id in targets:
            self.store.images.delete(project.id, image_id)
            self.blobs.delete_prefix(image_prefix(project.id, image_id))

    def change(self, project_id: str, image_id: str, edit: Callable[[ImageRecord], ImageRecord | None]) -> ImageRecord:
        updated = self.store.images.update(project_id, image_id, edit)
        if updated is None:
            raise unknown_image(image_id)
        return updated


def mixes_negative(tag_ids: Iterable[str], tags: dict[str, TagRecord]) -> bool:
    kinds = {tags[t].type == "Negative" for t in tag_ids if t in tags}
    return kinds == {True, False}


def check_metadata(metadata: dict) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise bad_request("BadRequestImageMetadataKey", "metadata must be an object of strings.")
    if len(metadata) > limits.MAX_METADATA_ENTRIES:
        raise bad_request("BadRequestImageMetadataKey", f"At most {limits.MAX_METADATA_ENTRIES} metadata entries "
                          "are allowed per image.")
    out = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or len(key) > limits.MAX_METADATA_KEY:
            raise bad_request("BadRequestImageMetadataKey", f"Metadata key '{shown(str(key))}' must be 1 to "
                              f"{limits.MAX_METADATA_KEY} characters.")
        if not isinstance(value, str) or len(value) > limits.MAX_METADATA_VALUE:
            raise bad_request("BadRequestImageMetadataValue", f"Metadata value of '{shown(key)}' must be a string of "
                              f"at most {limits.MAX_METADATA_VALUE} characters.")
        out[key] = value
    return out


class ImageEdits:
    """Batch edits of stored images: regions, image tags, metadata. Each image is changed with a
    read-modify-write on its own row, so concurrent edits of one image keep each other's changes."""

    def __init__(self, images: ImageService) -> None:
        self.images = images
        self.store = images.store

    def _tags(self, project_id: str) -> dict[str, TagRecord]:
        return self.images.tag_map(self.images.projects.get(project_id).id)

    def add_regions(self, project_id: str, regions: list[dict]) -> dict[str, Any]:
        """ImageRegionCreateSummary: ``created``, ``duplicated`` (the same box and tag), ``exceeded``."""
        project = self.images.projects.get(project_id)
        tags = self._tags(project.id)
        if not regions:
            raise bad_request("BadRequestImageRegions", "The batch holds no regions.")
        if len(regions) > limits.MAX_BATCH_IMAGES:
            raise bad_request("BadRequestExceededBatchSize", f"The batch holds {len(regions)} regions; at most "
                              f"{limits.MAX_BATCH_IMAGES} are allowed per request.")
        parsed = []
        for index, raw in enumerate(regions):
            where = f"regions[{index}]"
            image_id = parse_id(str(raw.get("imageId", "")), "image", "BadRequestInvalidIds")
            region = RegionIn(tag_id=str(raw.get("tagId", "")), left=raw.get("left"), top=raw.get("top"),
                              width=raw.get("width"), height=raw.get("height"))
            region.tag_id = self.images.check_tag_ids([region.tag_id], tags, f"{where}.tagId")[0]
            check_region(region, where)
            self.images.get(project.id, image_id)  # 404 for an unknown image, before anything is written
            parsed.append((image_id, region))
        summary: dict[str, list] = {"created": [], "duplicated": [], "exceeded": []}
        for image_id, region in parsed:
            self._add_region(project.id, image_id, region, tags, summary)
        return summary

    def _add_region(self, project_id: str, image_id: str, region: RegionIn, tags: dict[str, TagRecord],
                    summary: dict[str, list]) -> None:
        outcome: dict[str, Any] = {}

        def edit(image: ImageRecord) -> ImageRecord | None:
            outcome.clear()
            same = [r for r in image.regions if r.tag_id == region.tag_id and
                    max(abs(r.left - region.left), abs(r.top - region.top), abs(r.width - region.width),
                        abs(r.height - region.height)) < 1e-9]
            if same:
                outcome.update(kind="duplicated", region=same[0])
                return None
            if len(image.regions) >= limits.MAX_REGIONS_PER_IMAGE or mixes_negative(
                    image.tag_ids() | {region.tag_id}, tags):
                outcome.update(kind="exceeded", region=None)
                return None
            new = Region(region_id=str(uuid.uuid4()), tag_id=region.tag_id, left=region.left, top=region.top,
                         width=region.width, height=region.height)
            outcome.update(kind="created", region=new)
            return image.model_copy(update={"regions": image.regions + [new]})

        self.images.change(project_id, image_id, edit)
        found = outcome.get("region")
        entry = {"imageId": image_id, "tagId": region.tag_id, "left": region.left, "top": region.top,
                 "width": region.width, "height": region.height, "regionId": found.region_id if found else None,
                 "tagName": tags[region.tag_id].name, "created": wire.when(found.created) if found else None}
        summary[outcome["kind"]].append(entry)

    def delete_regions(self, project_id: str, region_ids: list[str]) -> None:
        project = self.images.projects.get(project_id)
        if not region_ids:
            raise bad_request("BadRequestInvalidIds", "Give regionIds.")
        wanted = {parse_id(r, "region", "BadRequestInvalidIds") for r in region_ids}
        for image in self.store.images.all(project.id):
            if wanted & {r.region_id for r in image.regions}:
                self.images.change(project.id, image.id, lambda current: current.model_copy(
                    update={"regions": [r for r in current.regions if r.region_id not in wanted]}))

    def add_tags(self, project_id: str, pairs: list[dict]) -> dict[str, Any]:
        """ImageTagCreateSummary: ``created``, ``duplicated``, ``exceeded``."""
        project = self.images.projects.get(project_id)
        tags = self._tags(project.id)
        if not pairs:
            raise bad_request("BadRequestImageTags", "The batch holds no tags.")
        if len(pairs) > limits.MAX_BATCH_IMAGES * limits.MAX_BATCH_TAGS:
            raise bad_request("BadRequestExceededBatchSize", f"The batch holds {len(pairs)} image tags; at most "
                              f"{limits.MAX_BATCH_IMAGES * limits.MAX_BATCH_TAGS} are allowed per request.")
        parsed = []
        for index, raw in enumerate(pairs):
            image_id = parse_id(str(raw.get("imageId", "")), "image", "BadRequestInvalidIds")
            tag_id = self.images.check_tag_ids([str(raw.get("tagId", ""))], tags, f"tags[{index}].tagId")[0]
            self.images.get(project.id, image_id)
            parsed.append((image_id, tag_id))
        summary: dict[str, list] = {"created": [], "duplicated": [], "exceeded": []}
        for image_id, tag_id in parsed:
            kind = {"value": "created"}

            def edit(image: ImageRecord, tag_id: str = tag_id) -> ImageRecord | None:
                if tag_id in {t.tag_id for t in image.tags}:
                    kind["value"] = "duplicated"
                    return None
                if len(image.tags) >= limits.MAX_TAGS_PER_IMAGE or mixes_negative(image.tag_ids() | {tag_id}, tags):
                    kind["value"] = "exceeded"
                    return None
                kind["value"] = "created"
                return image.model_copy(update={"tags": image.tags + [ImageTag(tag_id=tag_id)]})

            self.images.change(project.id, image_id, edit)
            summary[kind["value"]].append({"imageId": image_id, "tagId": tag_id})
        return summary

    def delete_tags(self, project_id: str, image_ids: list[str], tag_ids: list[str]) -> None:
        project = self.images.projects.get(project_id)
        if not image_ids or not tag_ids:
            raise bad_request("BadRequestInvalidIds", "Give imageIds and tagIds.")
        images = [parse_id(i, "image", "BadRequestInvalidIds") for i in image_ids]
        wanted = {parse_id(t, "tag", "BadRequestInvalidIds") for t in tag_ids}
        for image_id in images:
            if self.store.images.get(project.id, image_id) is None:
                continue
            self.images.change(project.id, image_id, lambda current: current.model_copy(
                update={"tags": [t for t in current.tags if t.tag_id not in wanted]}))

    def update_metadata(self, project_id: str, image_ids: list[str], metadata: dict) -> tuple[dict[str, Any], int]:
        """ImageMetadataUpdateSummary; 207 when some images were not found."""
        project = self.images.projects.get(project_id)
        if not image_ids:
            raise bad_request("BadRequestInvalidIds", "Give imageIds.")
        if len(image_ids) > limits.MAX_BATCH_IMAGES:
            raise bad_request("BadRequestExceededBatchSize", f"At most {limits.MAX_BATCH_IMAGES} imageIds per request.")
        meta = check_metadata(metadata)
        results = []
        for raw in image_ids:
            image_id = parse_id(raw, "image", "BadRequestInvalidIds")

            def edit(image: ImageRecord) -> ImageRecord:
                merged = {**image.metadata, **meta}
                if len(merged) > limits.MAX_METADATA_ENTRIES:
                    raise bad_request("BadRequestImageMetadataKey", f"Image '{image.id}' would have {len(merged)} "
                                      f"metadata entries; at most {limits.MAX_METADATA_ENTRIES} are allowed.")
                return image.model_copy(update={"metadata": merged})

            updated = self.store.images.update(project.id, image_id, edit)
            results.append({"imageId": image_id, "status": "OK" if updated else "ErrorImageNotFound",
                            "metadata": dict(updated.metadata) if updated else None})
        ok = all(r["status"] == "OK" for r in results)
        return {"isBatchSuccessful": ok, "images": results}, 200 if ok else 207


def tag_id_list(raw: Any, where: str) -> list[str]:
    """A request's list of tag ids (not yet checked against the project)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise bad_request("BadRequestImageTags", f"{where} must be a list of tag ids.")
    if len(raw) > limits.MAX_TAGS_PER_IMAGE:
        raise bad_request("BadRequestExceedTagPerImageLimit", f"{where} holds {len(raw)} tags; at most "
                          f"{limits.MAX_TAGS_PER_IMAGE} are allowed per image.")
    return list(raw)


def region_list(raw: Any, where: str) -> list[RegionIn]:
    """A request's regions, keys matched case-insensitively (checked later by ``check_region``)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise bad_request("BadRequestImageRegions", f"{where} must be a list of regions.")
    if len(raw) > limits.MAX_REGIONS_PER_IMAGE:
        raise bad_request("BadRequestImageRegions", f"{where} holds {len(raw)} regions; at most "
                          f"{limits.MAX_REGIONS_PER_IMAGE} are allowed per image.")
    out = []
    for item in raw:
        region = {str(k).lower(): v for k, v in item.items()}
        out.append(RegionIn(str(region.get("tagid", "")), region.get("left"), region.get("top"),
                            region.get("width"), region.get("height")))
    return out


def fetch_new_image(url: Any, tag_ids: list[str], regions: list[RegionIn], *, allow_http: bool,
                    allow_loopback: bool) -> NewImage:
    """An image of a URL batch, fetched through Loupe's SSRF-safe fetcher (loupe.net): a URL that
    cannot be fetched is that image's ``ErrorSource``, not the batch's failure."""
    from loupe.net.safe_fetch import UrlFetchError, fetch_url

    text = url if isinstance(url, str) else ""
    shown_url = text.split("?", 1)[0][:1024]  # never echo a query (it may hold a token)
    if not text or len(text) > 8192:
        return NewImage(None, shown_url, tag_ids, regions, failure="ErrorSource",
                        failure_message="the url is missing or longer than 8192 characters")
    try:
        data = fetch_url(text, max_bytes=limits.TRAINING_IMAGE_LIMITS.max_bytes, timeout_s=15.0,
                         allow_http=allow_http, allow_loopback=allow_loopback)
    except UrlFetchError as exc:
        status = "ErrorImageSize" if exc.code == "ImageTooLarge" else "ErrorSource"
        return NewImage(None, shown_url, tag_ids, regions, failure=status, failure_message=exc.message)
    return NewImage(data, shown_url, tag_ids, regions)
