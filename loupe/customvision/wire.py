"""The JSON shapes of Custom Vision v3.x (the msrest ``_attribute_map`` of SDK 3.1.1,
docs/customvision.md#shapes). Dates are ISO 8601; boxes and regions are normalised 0-1."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from loupe.customvision.blobs import image_prefix
from loupe.customvision.records import ImageRecord, IterationRecord, ProjectRecord, TagRecord
from loupe.storage.entities import wire_time

Link = Callable[[str], str]


def when(moment: datetime | None) -> str | None:
    return wire_time(moment) if moment is not None else None


def project(record: ProjectRecord, thumbnail: str | None = None) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "settings": {
            "domainId": record.domain_id,
            "classificationType": record.classification_type,
            "targetExportPlatforms": list(record.target_export_platforms),
            "useNegativeSet": record.use_negative_set,
            "detectionParameters": None,
            "imageProcessingSettings": {"augmentationMethods": dict(record.augmentation_methods)},
            "exportModelContainerUri": record.export_model_container_uri,
            "notificationQueueUri": record.notification_queue_uri,
        },
        "created": when(record.created),
        "lastModified": when(record.last_modified),
        "thumbnailUri": thumbnail,
        "drModeEnabled": False,
        "status": record.status,
    }


def tag(record: TagRecord, image_count: int = 0) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "description": record.description, "type": record.type,
            "imageCount": image_count}


def image(record: ImageRecord, tag_names: dict[str, str], link: Link) -> dict[str, Any]:
    prefix = image_prefix(record.project_id, record.id)
    return {
        "id": record.id,
        "created": when(record.created),
        "width": record.width,
        "height": record.height,
        "resizedImageUri": link(prefix + "resized"),
        "thumbnailUri": link(prefix + "thumbnail"),
        "originalImageUri": link(prefix + "original"),
        "tags": [{"tagId": t.tag_id, "tagName": tag_names.get(t.tag_id), "created": when(t.created)}
                 for t in record.tags] or None,
        "regions": [{"regionId": r.region_id, "tagName": tag_names.get(r.tag_id), "created": when(r.created),
                     "tagId": r.tag_id, "left": r.left, "top": r.top, "width": r.width, "height": r.height}
                    for r in record.regions] or None,
        "metadata": dict(record.metadata) or None,
    }


def iteration(record: IterationRecord, status: str, exportable: bool) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "status": status,
        "created": when(record.created),
        "lastModified": when(record.last_modified),
        "trainedAt": when(record.trained_at),
        "projectId": record.project_id,
        "exportable": exportable and status == "Completed",
        "exportableTo": ["CoreML", "TensorFlow", "DockerFile", "ONNX", "OpenVino"] if exportable else [],
        "domainId": record.domain_id,
        "classificationType": record.classification_type,
        "trainingType": record.training_type,
        "reservedBudgetInHours": record.reserved_budget_in_hours,
        "trainingTimeInMinutes": record.training_time_minutes,
        "publishName": record.publish_name,
        "originalPublishResourceId": record.prediction_resource_id,
        "customBaseModelInfo": None,
        "trainingErrorDetails": record.training_error,
    }
