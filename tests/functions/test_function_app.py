"""The Azure Functions layer: what the host will index, the adapters calling the core, and
azure-functions-doctor's static checks. (Functions Core Tools can't be installed here.)"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import azure.functions as func
import pytest

from loupe.paths import REPO_ROOT
from loupe.settings import Settings
from loupe.storage.names import BLOB_FUNCTION_NAME, RECONCILE_FUNCTION_NAME
from tests.conftest import TEST_API_KEY
from tests.support.data import classification_files, upload


def test_the_host_indexes_one_http_function_a_blob_trigger_and_a_timer():
    import function_app

    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    assert set(functions) == {"http_app_func", BLOB_FUNCTION_NAME, RECONCILE_FUNCTION_NAME}
    http = functions["http_app_func"].get_bindings()[0].get_dict_repr()
    assert http["route"] == "/{*route}" and http["authLevel"].value == "anonymous"
    blob = functions[BLOB_FUNCTION_NAME].get_bindings()[0].get_dict_repr()
    assert blob["type"] == "blobTrigger" and blob["source"] == "EventGrid"  # Flex Consumption needs Event Grid
    assert blob["path"].split("/")[0] == Settings.model_fields["datasets_container"].default
    assert blob["connection"] == "AzureWebJobsStorage"
    timer = functions[RECONCILE_FUNCTION_NAME].get_bindings()[0].get_dict_repr()
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "0 */1 * * * *"


def test_host_json_serves_the_api_at_the_root():
    host = json.loads((REPO_ROOT / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == ""
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"


def test_the_asgi_adapter_serves_the_api(services):
    from loupe.api.app import create_app

    middleware = func.AsgiMiddleware(create_app(services))
    request = func.HttpRequest("GET", "http://localhost/computervision//datasets?api-version=2023-04-01-preview",
                               headers={"Ocp-Apim-Subscription-Key": TEST_API_KEY},
                               params={"api-version": "2023-04-01-preview"}, body=b"")
    response = asyncio.run(middleware.handle_async(request))
    assert response.status_code == 200
    assert "value" in json.loads(response.get_body())
    denied = asyncio.run(middleware.handle_async(func.HttpRequest(
        "GET", "http://localhost/computervision/datasets?api-version=2023-04-01-preview", params={"api-version": "2023-04-01-preview"}, body=b"")))
    assert denied.status_code == 401


def test_the_blob_trigger_registers_a_dropped_dataset(services, unique_name, monkeypatch):
    from functions import dataset_events
    from loupe import services as services_module

    monkeypatch.setattr(services_module, "default_services", lambda: services)
    container = services.storage.container(services.settings.datasets_container)
    name = unique_name("fn")
    upload(container, name, classification_files())
    blob = func.blob.InputStream(data=b"{}", name=f"datasets/{name}/annotations.json", length=2,
                                 uri=container.get_blob_client(f"{name}/annotations.json").url)
    dataset_events.dataset_blob_created(blob)
    assert services.datasets.get(name).validation.wire()["status"] == "valid"


def test_azure_functions_doctor_finds_no_failures():
    result = subprocess.run(
        [sys.executable, "-m", "azure_functions_doctor.cli", "doctor", "--path", str(REPO_ROOT), "--profile",
         "full", "--format", "json"], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    report = json.loads(result.stdout)
    items = [item for group in report["results"] for item in group["items"]]
    failures = [(i["rule_id"], i["value"]) for i in items if i["status"] == "fail"]
    assert failures == []
    assert report["metadata"]["programming_model"] == "v2"
    assert sum(1 for i in items if i["status"] == "pass") >= 15


def test_the_reconcile_cadence_is_one_setting():
    """The Azure timer's schedule and the local reconciler thread both come from reconcile_interval_seconds."""
    from pydantic import ValidationError

    from loupe.settings import reconcile_schedule

    assert reconcile_schedule(Settings().reconcile_interval_seconds) == "0 */1 * * * *"
    assert (reconcile_schedule(15), reconcile_schedule(300)) == ("*/15 * * * * *", "0 */5 * * * *")
    with pytest.raises(ValidationError, match="reconcile interval 7 s"):
        Settings(reconcile_interval_seconds=7)
