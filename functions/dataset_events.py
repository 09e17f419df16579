"""Blob-created events on the datasets container (Event Grid source, as Flex Consumption requires)."""
from __future__ import annotations

import logging

import azure.functions as func

from loupe.storage.names import BLOB_FUNCTION_NAME

bp = func.Blueprint()
log = logging.getLogger(__name__)

# The container in the binding path must equal LOUPE_DATASETS_CONTAINER's default ("datasets");
# tests/functions/test_function_app.py checks it.
DATASETS_BINDING_PATH = "datasets/{name}"


@bp.function_name(BLOB_FUNCTION_NAME)
@bp.blob_trigger(arg_name="blob", path=DATASETS_BINDING_PATH, connection="AzureWebJobsStorage",
                 source=func.BlobSource.EVENT_GRID)
def dataset_blob_created(blob: func.InputStream) -> None:
    from loupe.services import default_services

    services = default_services()
    container, _, name = (blob.name or "").partition("/")
    if container != services.settings.datasets_container:
        log.warning("blob event for %s outside the datasets container ignored", blob.name)
        return
    result = services.drops.handle(name)
    log.info("blob %s: %s %s %s", blob.name, result.outcome, result.dataset or "", result.detail)
