"""The datasets REST API over HTTP against a real uvicorn server and a real Azurite."""
from __future__ import annotations

import json

import pytest
import requests

from tests.conftest import TEST_API_KEY
from tests.support.data import classification_files, detection_files, upload


@pytest.fixture
def uploaded(services, unique_name):
    """Upload a dataset's files into a fresh folder of the datasets container ('staging' prefix,
    so the drop flow does not see them as <dataset>/<file>.json) and return the COCO URL."""
    container = services.storage.container(services.settings.datasets_container)

    def make(files: dict[str, bytes]) -> str:
        prefix = f"staging/{unique_name('files')}"
        return upload(container, prefix, files)["annotations.json"]

    return make


def test_put_get_patch_delete_roundtrip(http, uploaded, unique_name):
    uri = uploaded(classification_files())
    name = unique_name("ds")
    body = {"AnnotationKind": "imageClassification", "AnnotationFileUris": [uri],
            "customProperties": {"team": "vision"}}
    created = http("PUT", f"/computervision/datasets/{name}", json=body)
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["name"] == name
    assert data["annotationKind"] == "imageClassification"
    assert data["annotationFileUris"] == [uri]
    assert data["customProperties"] == {"team": "vision"}
    assert "authentication" not in data  # none was sent: none is echoed (G7)
    assert data["createdDateTime"].endswith("Z") and data["updatedDateTime"].endswith("Z")
    assert data["validation"]["status"] == "valid"
    assert data["validation"]["depth"] == "full"
    assert {c["name"]: c["imageCount"] for c in data["validation"]["categories"]} == {"red": 2, "green": 2}
    assert created.headers["ETag"] == f'"{data["eTag"]}"'

    fetched = http("GET", f"/computervision/datasets/{name}")
    assert fetched.status_code == 200 and fetched.json()["eTag"] == data["eTag"]

    stale = http("PATCH", f"/computervision/datasets/{name}", json={"customProperties": {"a": "b"}},
                 headers={"If-Match": '"not-the-etag"'})
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "PreconditionFailed"

    patched = http("PATCH", f"/computervision/datasets/{name}", json={"customProperties": {"a": "b"}},
                   headers={"If-Match": f'"{data["eTag"]}"'})
    assert patched.status_code == 200, patched.text
    assert patched.json()["customProperties"] == {"a": "b"}
    assert patched.json()["eTag"] != data["eTag"]

    gone = http("DELETE", f"/computervision/datasets/{name}", headers={"If-Match": f'"{data["eTag"]}"'})
    assert gone.status_code == 412
    deleted = http("DELETE", f"/computervision/datasets/{name}")
    assert deleted.status_code == 204 and deleted.content == b""
    missing = http("GET", f"/computervision/datasets/{name}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NotFound"
    assert missing.headers["x-ms-error-code"] == "NotFound"


def test_put_twice_is_a_conflict(http, uploaded, unique_name):
    uri = uploaded(classification_files())
    name = unique_name("dup")
    body = {"annotationKind": "imageClassification", "annotationFileUris": [uri]}
    assert http("PUT", f"/computervision/datasets/{name}", json=body).status_code == 201
    again = http("PUT", f"/computervision/datasets/{name}", json=body)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "DatasetAlreadyExists"


def _container_sas(services, *, read: bool = True) -> str:
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from loupe.local.azurite import ACCOUNT, ACCOUNT_KEY

    return generate_container_sas(ACCOUNT, services.settings.datasets_container, account_key=ACCOUNT_KEY,
                                  permission=ContainerSasPermissions(read=read, list=read),
                                  expiry=datetime.now(timezone.utc) + timedelta(hours=1))


def test_sas_token_is_used_and_never_echoed(http, services, uploaded, unique_name):
    uri = uploaded(detection_files())
    token = _container_sas(services)
    signature = [p for p in token.split("&") if p.startswith("sig=")][0].split("=", 1)[1]
    name = unique_name("sas")
    body = {"annotationKind": "imageObjectDetection", "annotationFileUris": [uri],
            "authentication": {"kind": "sas", "sasToken": token}}
    created = http("PUT", f"/computervision/datasets/{name}", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["authentication"] == {"kind": "sas"}
    assert created.json()["validation"]["status"] == "valid"
    for response in (created, http("GET", f"/computervision/datasets/{name}"), http("GET", "/computervision/datasets")):
        assert signature not in response.text and "sig=" not in response.text


def test_a_wrong_sas_token_is_refused_without_echo(http, uploaded, unique_name):
    uri = uploaded(detection_files())
    body = {"annotationKind": "imageObjectDetection", "annotationFileUris": [uri],
            "authentication": {"kind": "sas", "sasToken": "sv=2022-11-02&sr=c&sp=r&se=2099-01-01&sig=Zm9vYmFy"}}
    response = http("PUT", f"/computervision/datasets/{unique_name('badsas')}", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "DatasetInvalidAnnotationUri"
    assert "denied" in response.json()["error"]["message"]
    assert "Zm9vYmFy" not in response.text


def test_legacy_list_kind_is_echoed_verbatim(http, uploaded, unique_name):
    uri = uploaded(classification_files())
    name = unique_name("legacy")
    body = {"AnnotationKind": "imageClassification", "AnnotationFileUris": [uri],
            "authentication": {"kind": ["managedIdentity"], "sasToken": None}}
    created = http("PUT", f"/computervision/datasets/{name}", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["authentication"] == {"kind": ["managedIdentity"]}


@pytest.mark.parametrize(
    "body, status, code, target",
    [
        ({"annotationFileUris": ["https://x.blob.core.windows.net/c/a.json"]}, 400, "InvalidRequest", "annotationKind"),
        ({"annotationKind": "imageSegmentation", "annotationFileUris": ["https://x.blob.core.windows.net/c/a.json"]},
         400, "InvalidRequest", "annotationKind"),
        ({"annotationKind": "imageClassification", "annotationFileUris": []}, 400, "InvalidRequest", "annotationFileUris"),
        ({"annotationKind": "imageClassification", "annotationFileUris": ["ftp://example.com/a.json"]},
         400, "DatasetInvalidAnnotationUri", "annotationFileUris[0]"),
        ({"annotationKind": "imageClassification", "annotationFileUris": ["https://example.com/a.json"]},
         400, "DatasetInvalidAnnotationUri", "annotationFileUris[0]"),
        ({"annotationKind": "imageClassification", "annotationFileUris": ["http://169.254.169.254/latest/meta-data"]},
         400, "DatasetInvalidAnnotationUri", "annotationFileUris[0]"),
        ({"annotationKind": "imageClassification",
          "annotationFileUris": ["https://x.blob.core.windows.net/c/a.json?sv=1&sig=abc"]},
         400, "DatasetInvalidAnnotationUri", "annotationFileUris[0]"),
        ({"annotationKind": "imageClassification", "annotationFileUris": ["https://x.blob.core.windows.net/c/a.json"],
          "authentication": {"kind": "sas"}}, 400, "InvalidRequest", "authentication"),
        ({"annotationKind": "imageClassification", "annotationFileUris": ["https://x.blob.core.windows.net/c/a.json"],
          "authentication": {"kind": "password"}}, 400, "InvalidRequest", "authentication.kind"),
        ({"annotationKind": "imageClassification", "annotationFileUris": ["https://x.blob.core.windows.net/c/a.json"],
          "customProperties": {str(i): "v" for i in range(11)}}, 400, "InvalidRequest", "customProperties"),
    ],
)
def test_bad_put_bodies_are_refused_with_the_place(http, unique_name, body, status, code, target):
    name = unique_name("bad")
    response = http("PUT", f"/computervision/datasets/{name}", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error.get("target") == target, error
    assert http("GET", f"/computervision/datasets/{name}").status_code == 404  # nothing written


def test_missing_annotation_file_is_an_invalid_uri(http, services, unique_name):
    container = services.storage.container(services.settings.datasets_container)
    uri = f"{container.url}/staging/{unique_name('nothing')}/annotations.json"
    name = unique_name("missing")
    response = http("PUT", f"/computervision/datasets/{name}",
                    json={"annotationKind": "imageClassification", "annotationFileUris": [uri]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "DatasetInvalidAnnotationUri"
    assert "does not exist" in response.json()["error"]["message"]


def test_invalid_coco_lists_each_problem(http, uploaded, unique_name):
    files = classification_files()
    coco = json.loads(files["annotations.json"])
    coco["annotations"][1]["category_id"] = 9
    files["annotations.json"] = json.dumps(coco).encode()
    name = unique_name("coco")
    response = http("PUT", f"/computervision/datasets/{name}",
                    json={"annotationKind": "imageClassification", "annotationFileUris": [uploaded(files)]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "DatasetInvalidAnnotation"
    assert any(d["target"].startswith("annotationFileUris[0].annotations[1].category_id") for d in error["details"]), error
    assert http("GET", f"/computervision/datasets/{name}").status_code == 404


def test_names_are_checked(http):
    response = http("GET", "/computervision/datasets/-bad")
    assert response.status_code == 400
    assert "pattern" in response.json()["error"]["message"]
    long = http("GET", "/computervision/datasets/" + "a" * 256)
    assert long.status_code == 400


def test_list_pages_with_skip_top_and_next_link(http, uploaded, unique_name):
    uri = uploaded(classification_files())
    for _ in range(3):
        assert http("PUT", f"/computervision/datasets/{unique_name('page')}",
                    json={"annotationKind": "imageClassification", "annotationFileUris": [uri]}).status_code == 201
    first = http("GET", "/computervision/datasets?top=2")
    assert first.status_code == 200
    assert len(first.json()["value"]) == 2
    next_link = first.json()["nextLink"]
    assert "skip=2" in next_link and "top=2" in next_link and "api-version=" in next_link
    second = requests.get(next_link, headers={"Ocp-Apim-Subscription-Key": TEST_API_KEY}, timeout=30)
    assert second.status_code == 200 and second.json()["value"]
    names_first = {d["name"] for d in first.json()["value"]}
    assert not names_first & {d["name"] for d in second.json()["value"]}
    assert http("GET", "/computervision/datasets?top=31").status_code == 400
    assert http("GET", "/computervision/datasets?skip=-1").status_code == 400
    assert http("GET", "/computervision/datasets?top=abc").status_code == 400
