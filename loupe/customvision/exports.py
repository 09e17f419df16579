"""Custom Vision's iteration exports (docs/customvision.md#exports): the export jobs of the
iteration's Loupe model (loupe/exports), in Custom Vision's words and error codes."""
from __future__ import annotations

from typing import Any

from loupe.customvision.errors import bad_request, not_found
from loupe.customvision.training import IterationService, model_name_of
from loupe.errors import ServiceError
from loupe.exports.record import ExportRecord
from loupe.exports.service import ExportInProgress, ExportService, UnsupportedExport
from loupe.runs.record import RunStatus

# the run's status in Custom Vision's ExportStatus words
_STATUS = {RunStatus.SUCCEEDED: "Done", RunStatus.FAILED: "Failed", RunStatus.CANCELLED: "Failed"}


def export_wire(record: ExportRecord, download_uri: str | None, flavor: str | None) -> dict[str, Any]:
    """Custom Vision's Export; ``flavor`` is echoed exactly as the caller sent it."""
    return {"platform": record.platform, "status": _STATUS.get(record.status, "Exporting"),
            "downloadUri": download_uri, "flavor": flavor, "newerVersionAvailable": False}


class IterationExports:
    def __init__(self, iterations: IterationService, exports: ExportService) -> None:
        self.iterations = iterations
        self.exports = exports

    def list(self, project_id: str, iteration_id: str) -> list[dict[str, Any]]:
        record = self.iterations.get(project_id, iteration_id)
        found = self.exports.repo.of_model(model_name_of(record.id))
        return [export_wire(r, self.exports.link(r), r.requested_flavor) for r in found]

    def export(self, project_id: str, iteration_id: str, platform: str | None,
               flavor: str | None) -> dict[str, Any]:
        """Start an export; asking again while it runs is BadRequestExportAlreadyInProgress, once it
        is Done the existing export is answered (its link renewed); a Failed one is built again."""
        record = self.iterations.trained(project_id, iteration_id)
        try:
            started = self.exports.create(model_name_of(record.id), platform or "", flavor or None)
        except UnsupportedExport as exc:
            raise bad_request("BadRequestNotSupported", exc.message) from None
        except ExportInProgress as exc:
            raise bad_request("BadRequestExportAlreadyInProgress", exc.message) from None
        except ServiceError as exc:  # the iteration's model is gone or not trained
            if exc.status == 404:
                raise not_found("NotFoundIteration", f"Iteration '{record.id}' has no model.") from None
            raise bad_request("BadRequestIterationIsNotTrained", exc.message) from None
        return export_wire(started.record, self.exports.link(started.record), flavor)
