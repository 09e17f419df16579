"""What Loupe stores for Custom Vision (docs/customvision.md#storage), as pydantic records.

Each record is one Table entity (``store.py``); its wire shape (the msrest ``_attribute_map`` of
SDK 3.1.1) is rendered by ``wire.py``, which adds what is computed per request (tag names, image
counts, signed links).
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from loupe.storage.entities import utc_now

ClassificationType = Literal["Multiclass", "Multilabel"]
TagType = Literal["Regular", "Negative", "GeneralProduct"]
TrainingType = Literal["Regular", "Advanced"]


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProjectRecord(Record):
    id: str
    name: str
    description: str = ""
    domain_id: str
    classification_type: ClassificationType | None = None  # None for detection projects
    target_export_platforms: list[str] = Field(default_factory=list)
    use_negative_set: bool = True
    augmentation_methods: dict[str, bool] = Field(default_factory=dict)
    export_model_container_uri: str | None = None
    notification_queue_uri: str | None = None
    created: datetime = Field(default_factory=utc_now)
    last_modified: datetime = Field(default_factory=utc_now)
    status: Literal["Succeeded", "Importing", "Failed"] = "Succeeded"


class TagRecord(Record):
    id: str
    project_id: str
    name: str
    description: str = ""
    type: TagType = "Regular"
    created: datetime = Field(default_factory=utc_now)


class ImageTag(Record):
    tag_id: str
    created: datetime = Field(default_factory=utc_now)


class Region(Record):
    region_id: str
    tag_id: str
    left: float
    top: float
    width: float
    height: float
    created: datetime = Field(default_factory=utc_now)


class ImageRecord(Record):
    id: str
    project_id: str
    created: datetime = Field(default_factory=utc_now)
    width: int
    height: int
    format: str
    size_bytes: int
    sha256: str
    tags: list[ImageTag] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    # how the image came in (the file name, or the URL without its query), for listings and migration
    source: str | None = None

    def tag_ids(self) -> set[str]:
        """Every tag the image carries, as an image tag or through a region."""
        return {t.tag_id for t in self.tags} | {r.tag_id for r in self.regions}

    @property
    def tagged(self) -> bool:
        return bool(self.tags or self.regions)


class IterationRecord(Record):
    id: str
    project_id: str
    name: str
    created: datetime = Field(default_factory=utc_now)
    last_modified: datetime = Field(default_factory=utc_now)
    trained_at: datetime | None = None
    domain_id: str
    classification_type: ClassificationType | None = None
    training_type: TrainingType = "Regular"
    reserved_budget_in_hours: int = 0
    # the Loupe model (and dataset) this iteration trained; both are visible under /computervision
    model_name: str
    dataset_name: str
    selected_tags: list[str] = Field(default_factory=list)
    # what the snapshot held: a new training with the same fingerprint is not needed
    fingerprint: str = ""
    image_count: int = 0
    # the outcome, copied from the model run once it is terminal (None while training)
    status: Literal["Training", "Completed", "Failed"] | None = None
    training_error: str | None = None
    training_time_minutes: int = 0
    publish_name: str | None = None
    prediction_resource_id: str | None = None
    # the tags as they were at training time: id -> name (label order of the model comes from its labels)
    tag_names: dict[str, str] = Field(default_factory=dict)


class PredictionRecord(Record):
    id: str
    project_id: str
    iteration_id: str
    created: datetime = Field(default_factory=utc_now)
    width: int
    height: int
    sha256: str
    predictions: list[dict] = Field(default_factory=list)  # the wire's Prediction objects
