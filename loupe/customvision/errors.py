"""Custom Vision's error body: a top-level ``{"code", "message"}`` (docs/customvision.md#errors).

The SDK (msrest) reads ``code`` from the top level into ``e.error.code``; the ``{"error": {...}}``
envelope of /computervision would leave it None. User errors are always 4xx: msrest retries 5xx,
POSTs included.
"""
from __future__ import annotations

from typing import Any

from loupe.errors import ServiceError


class CustomVisionError(ServiceError):
    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def cv_error(status: int, code: str, message: str) -> CustomVisionError:
    return CustomVisionError(status, code, message)


def bad_request(code: str, message: str) -> CustomVisionError:
    return CustomVisionError(400, code, message)


def not_found(code: str, message: str) -> CustomVisionError:
    return CustomVisionError(404, code, message)


def unknown_project(project_id: str) -> CustomVisionError:
    return not_found("NotFoundProject", f"Project '{project_id[:64]}' was not found.")


def unknown_iteration(iteration_id: str) -> CustomVisionError:
    return not_found("NotFoundIteration", f"Iteration '{iteration_id[:64]}' was not found.")


def unknown_tag(tag_id: str) -> CustomVisionError:
    return not_found("NotFoundTag", f"Tag '{tag_id[:64]}' was not found.")


def unknown_image(image_id: str) -> CustomVisionError:
    return not_found("NotFoundImage", f"Image '{image_id[:64]}' was not found.")
