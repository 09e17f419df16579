"""Turning a registered dataset into the JobSpec's DatasetSource."""
from __future__ import annotations

from pydantic import SecretStr

from loupe.datasets.record import DatasetRecord
from loupe.jobs.spec import DatasetSource


def dataset_source(record: DatasetRecord) -> DatasetSource:
    return DatasetSource(
        name=record.name,
        annotation_kind=record.annotation_kind,
        annotation_file_uris=list(record.annotation_file_uris),
        auth_kind=record.auth_kind,
        sas_token=SecretStr(record.sas_token) if record.sas_token else None,
    )
