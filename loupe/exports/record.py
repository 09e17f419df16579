"""An export as Loupe stores it: a run (its job builds the package) keyed by model and package."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loupe.jobs.spec import export_key
from loupe.runs.record import ERROR_KEYS, RunRecord
from loupe.storage.entities import wire_time


def export_blob(model_name: str, key: str) -> str:
    """The package's blob in the models container (removed with the model's folder)."""
    return f"{model_name}/exports/{key}.zip"


@dataclass(frozen=True, kw_only=True)
class ExportRecord(RunRecord):
    model_name: str
    platform: str  # canonical: "ONNX", "OpenVino"
    flavor: str | None = None  # canonical: None, "ONNXFloat16"
    # the flavor as the first request spelled it: Custom Vision echoes what was sent
    requested_flavor: str | None = None

    @property
    def name(self) -> str:
        return export_key(self.platform, self.flavor)

    @property
    def blob(self) -> str:
        return export_blob(self.model_name, self.name)

    def key(self) -> tuple[str, str]:
        return self.model_name, self.name

    def owner_properties(self) -> dict[str, Any]:
        return {"platform": self.platform, "flavor": self.flavor, "requestedFlavor": self.requested_flavor}

    @classmethod
    def owner_fields(cls, entity: dict[str, Any]) -> dict[str, Any]:
        return {"model_name": entity["PartitionKey"], "platform": entity["platform"],
                "flavor": entity.get("flavor"), "requested_flavor": entity.get("requestedFlavor")}

    def wire(self, download_uri: str | None) -> dict[str, Any]:
        """/computervision's shape (docs/exports.md#api): the run's status words of evaluations."""
        body: dict[str, Any] = {
            "modelName": self.model_name,
            "platform": self.platform,
            "flavor": self.requested_flavor,
            "status": self.status.value,  # notStarted, running, succeeded, failed
            "createdDateTime": wire_time(self.created),
            "updatedDateTime": wire_time(self.updated),
        }
        if download_uri:
            body["downloadUri"] = download_uri
        if self.error is not None:
            body["error"] = {k: v for k, v in self.error.items() if k in ERROR_KEYS}
        return body
