"""The job contract: everything a trainer run needs, and nothing else.

The API writes a JobSpec as JSON next to the model's artifacts; a backend (local subprocess or an
Azure Batch container task) starts ``python -m trainer`` with ``LOUPE_JOB_SPEC`` naming that blob.
Storage endpoints and credentials come from the trainer's environment (``loupe.settings``), never
from the spec, so a spec can be logged without leaking account keys. A SAS token the user gave
for their dataset does travel in the spec (the trainer needs it); the spec blob is private.
"""
from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from loupe.enums import AnnotationKind, ModelKind, StorageAuthKind

JOB_SPEC_VERSION = 1
# Environment variable through which a backend tells the trainer where its spec is:
# "<container>/<blob name>" in Loupe's own storage account.
JOB_SPEC_ENV = "LOUPE_JOB_SPEC"
# the spec's blob name, in the run's folder (JobSpec.spec_blob)
JOB_SPEC_FILE = "jobspec.json"


class StandbyAssignment(BaseModel):
    """The one line a local host writes to a standby trainer's stdin (``python -m trainer
    --standby LOG``, docs/training.md#time-to-model): the job it is to run, and the job's log,
    which the trainer's output moves to."""

    model_config = ConfigDict(extra="forbid")

    spec: str = Field(min_length=1, max_length=2048)  # as JOB_SPEC_ENV: "<container>/<blob>"
    log: str = Field(min_length=1, max_length=4096)  # a local file path


def export_key(platform: str, flavor: str | None) -> str:
    """``ONNX``, ``ONNX-ONNXFloat16``: the package's zip is ``<model>/exports/<key>.zip``."""
    return f"{platform}-{flavor}" if flavor else platform


class DatasetSource(BaseModel):
    """Where a dataset's COCO files are and how to read them."""

    model_config = ConfigDict(frozen=True)

    name: str
    annotation_kind: AnnotationKind
    annotation_file_uris: list[str] = Field(min_length=1)
    # None: Loupe's own storage account (datasets dropped into the `datasets` container)
    auth_kind: StorageAuthKind | None = None
    sas_token: SecretStr | None = None


class JobOutput(BaseModel):
    """Where the run writes: ``<container>/<prefix>`` in Loupe's storage account."""

    model_config = ConfigDict(frozen=True)

    container: str
    prefix: str  # ends with "/"; e.g. "m-ic/"

    def blob(self, relative: str) -> str:
        return f"{self.prefix}{relative}"


class JobSpec(BaseModel):
    """Version 1 of the trainer contract."""

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = JOB_SPEC_VERSION
    mode: Literal["train", "evaluate", "export"] = "train"
    model_name: str
    # A fresh id per PUT of the model (or per evaluation): status writes from a stale run
    # (an old trainer still alive after the model was deleted and re-created) are ignored.
    run_id: str
    model_kind: ModelKind
    training_dataset: DatasetSource | None = None
    # train mode: the test set for modelPerformance (None: held-out part of the training set)
    # evaluate mode: the dataset to evaluate on
    evaluation_dataset: DatasetSource | None = None
    evaluation_name: str | None = None
    # export mode: the package to build (docs/exports.md), in Custom Vision's canonical spelling
    export_platform: str | None = None
    export_flavor: str | None = None
    budget_seconds: float = Field(gt=0)
    output: JobOutput
    backbone: str = "efficientnet_lite0"
    # classifiers: multilabel (sigmoid) or multiclass (softmax) as the owner decided (a Custom Vision
    # project's classificationType); None: the data decides (an image with two labels: multilabel)
    multilabel: bool | None = None
    # detectors: how images become the network input ("stretch": the whole image resized, as export
    # packages take it; docs/exports.md#letterbox-trained-detectors); None: the recipe's default
    input_resize: Literal["stretch", "letterbox"] | None = None
    seed: int = 0
    # 0 for the first submission; a resubmission after a crash (resuming from the checkpoint)
    # is a new backend job with the next attempt number
    attempt: int = 0

    @property
    def job_id(self) -> str:
        """A backend-safe id for this run (Batch ids: letters, digits, '-' and '_', <= 64)."""
        key = f"{self.model_name}/{self.evaluation_name}/{self.run_id}/{self.attempt}"
        if self.mode == "export":
            key += f"/{self.export_key}"
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        kind = {"evaluate": "eval", "export": "export"}.get(self.mode, "train")
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.model_name)[:36]
        return f"loupe-{kind}-{safe}-{digest}"

    @property
    def spec_blob(self) -> str:
        """Where the API stores this spec, relative to the models container."""
        folder = {"evaluate": f"evaluations/{self.evaluation_name}/",
                  "export": f"exports/{self.export_key}/"}.get(self.mode, "")
        return self.output.blob(f"{folder}jobs/{self.run_id}/{JOB_SPEC_FILE}")

    @property
    def export_key(self) -> str:
        """An export's name among its model's exports: its table row key and its zip's name."""
        return export_key(self.export_platform or "", self.export_flavor)

    def to_json(self) -> str:
        """The JSON the trainer reads, with the SAS token in clear (the blob is private)."""
        data = self.model_dump(mode="json")
        for key in ("training_dataset", "evaluation_dataset"):
            source = getattr(self, key)
            if source is not None and source.sas_token is not None:
                data[key]["sas_token"] = source.sas_token.get_secret_value()
        return json.dumps(data, indent=2)
