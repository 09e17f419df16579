"""The official samples client (cognitive-service-vision-model-customization-python-samples 0.0.6)
against the real server: register/query/update/delete (docs/wire-contract.md#case-insensitive-keys, #exact-enum-strings, #authentication-echo, #required-response-fields)."""
from __future__ import annotations

import pytest
import requests
from cognitive_service_vision_model_customization_python_samples import (
    AnnotationKind,
    Authentication,
    AuthenticationKind,
    Dataset,
    DatasetClient,
    ResourceType,
)

from tests.api.test_datasets_api import _container_sas
from tests.conftest import TEST_API_KEY
from tests.support.data import classification_files, detection_files, upload


@pytest.fixture
def client(api_server):
    return DatasetClient(ResourceType.MULTI_SERVICE_RESOURCE, None, api_server.url, TEST_API_KEY)


@pytest.fixture
def coco_url(services, unique_name):
    container = services.storage.container(services.settings.datasets_container)

    def make(files):
        return upload(container, f"staging/{unique_name('client')}", files)["annotations.json"]

    return make


def test_register_query_update_delete_with_managed_identity(client, coco_url, unique_name):
    name = unique_name("mi")
    dataset = Dataset(name, AnnotationKind.MULTICLASS_CLASSIFICATION, [coco_url(classification_files())],
                      custom_properties={"owner": "qa"})
    registered = client.register_dataset(dataset)  # sends PascalCase + authentication {kind: managedIdentity}
    assert registered.name == name
    assert registered.annotation_kind is AnnotationKind.MULTICLASS_CLASSIFICATION
    assert registered.authentication.kind is AuthenticationKind.MI
    assert registered.authentication.sas_token is None
    assert registered.created_date_time.endswith("Z")

    queried = client.query_dataset(name)
    assert queried.annotation_file_uris == dataset.annotation_file_uris

    updated_uri = coco_url(classification_files(("cat", "dog", "bird")))
    updated = client.update_dataset(Dataset(name, AnnotationKind.MULTICLASS_CLASSIFICATION, [updated_uri]))
    assert updated.annotation_file_uris == [updated_uri]
    assert updated.updated_date_time >= registered.updated_date_time

    client.delete_dataset(name)
    with pytest.raises(requests.HTTPError) as missing:
        client.query_dataset(name)
    assert missing.value.response.status_code == 404


def test_register_with_sas_echoes_kind_only(client, services, coco_url, unique_name):
    name = unique_name("sas")
    token = _container_sas(services)
    dataset = Dataset(name, AnnotationKind.OBJECT_DETECTION, [coco_url(detection_files())],
                      authentication=Authentication(AuthenticationKind.SAS, token))
    registered = client.register_dataset(dataset)
    assert registered.authentication.kind is AuthenticationKind.SAS
    assert registered.authentication.sas_token is None  # never echoed
    assert registered.annotation_kind is AnnotationKind.OBJECT_DETECTION
    client.delete_dataset(name)


def test_register_without_authentication_gets_none_back(client, coco_url, unique_name):
    name = unique_name("noauth")
    registered = client.register_dataset(
        Dataset(name, AnnotationKind.MULTICLASS_CLASSIFICATION, [coco_url(classification_files())], authentication=None)
    )
    assert registered.authentication is None  # 0.0.1-0.0.5 raise if anything is echoed here
    client.delete_dataset(name)


def test_errors_surface_as_http_errors(client, coco_url, unique_name):
    name = unique_name("twice")
    dataset = Dataset(name, AnnotationKind.MULTICLASS_CLASSIFICATION, [coco_url(classification_files())])
    client.register_dataset(dataset)
    with pytest.raises(requests.HTTPError) as conflict:
        client.register_dataset(dataset)
    assert conflict.value.response.status_code == 409
    assert conflict.value.response.json()["error"]["code"] == "DatasetAlreadyExists"
    wrong_kind = Dataset(unique_name("kind"), AnnotationKind.OBJECT_DETECTION, [coco_url(classification_files())])
    with pytest.raises(requests.HTTPError) as invalid:
        client.register_dataset(wrong_kind)
    assert invalid.value.response.status_code == 400
    client.delete_dataset(name)
