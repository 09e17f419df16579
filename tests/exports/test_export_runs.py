"""Export runs without a trained classifier: a package the trainer cannot build fails with the
converter's reason, a failed export is built again on request, the reconciler ends export runs
whose job vanished or crashed, and only succeeded models are exported."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
from onnx import TensorProto, helper

from loupe.artifacts import LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE
from loupe.enums import ModelKind
from loupe.errors import ServiceError
from loupe.exports.service import ExportService
from loupe.jobs.backend import JobState, JobStatus
from loupe.models.record import ModelRecord
from loupe.reconcile import SUBMIT_GRACE
from loupe.runner.export import BlobPackageCache
from loupe.runs.record import RunStatus
from tests.api.test_reconcile import ScriptedBackend


def _model(services, name: str, status: RunStatus = RunStatus.SUCCEEDED) -> ModelRecord:
    record = ModelRecord(name=name, training_dataset="d", budget_hours=1, model_kind=ModelKind.CLASSIFIER,
                         run_id=f"run-{name}", status=status)
    services.models.repo.store.create(record)
    return record


def test_a_package_the_trainer_cannot_build_fails_with_its_reason(services, unique_name):
    name = unique_name("junk")
    _model(services, name)
    container = services.storage.container(services.settings.models_container)
    # a real ONNX graph and labels, but no preprocessing the converter can read: a PackageError
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    files = {MODEL_FILE: helper.make_model(graph).SerializeToString(), LABELS_FILE: b'["a", "b"]',
             PREPROCESSING_FILE: b'{"not": "preprocessing"}'}
    for file, data in files.items():
        container.upload_blob(f"{name}/{file}", data, overwrite=True)
    started = services.exports.create(name, "openvino")
    assert started.created and started.record.platform == "OpenVino"
    deadline = time.monotonic() + 120
    while not (record := services.exports.get(name, "OpenVino")).status.is_terminal:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert record.status is RunStatus.FAILED
    assert record.error["code"] == "ExportFailed" and "not a usable Loupe model" in record.error["message"]
    assert services.exports.link(record) is None
    again = services.exports.create(name, "OpenVino")  # a failed export is built again
    assert again.created and again.record.run_id != record.run_id


def test_only_succeeded_models_are_exported(services, unique_name):
    name = unique_name("untrained")
    _model(services, name, RunStatus.RUNNING)
    with pytest.raises(ServiceError) as excinfo:
        services.exports.create(name, "ONNX")
    assert (excinfo.value.status, excinfo.value.code) == (400, "ModelNotTrained")
    with pytest.raises(ServiceError) as excinfo:
        services.exports.create(name, "VAIDK")
    assert (excinfo.value.status, excinfo.value.target) == (400, "platform")


def test_the_blob_package_cache_keeps_and_fetches_plain_names_only(services, unique_name, tmp_path):
    """An export job's PackageCache: <model>/cache/<name> in the models container (onnx2tf's output:
    docs/exports.md#the-conversion-cache); a name that is not a plain file name is refused on both
    ways, and a miss leaves no file."""
    container = services.storage.container(services.settings.models_container)
    model = unique_name("cache")
    cache = BlobPackageCache(container, f"{model}/cache/")
    assert not cache.fetch("onnx2tf-a.zip", tmp_path / "miss") and not (tmp_path / "miss").exists()
    kept = tmp_path / "kept.zip"
    kept.write_bytes(bytes(range(256)) * 4096)
    cache.keep("onnx2tf-a.zip", kept)
    assert cache.fetch("onnx2tf-a.zip", tmp_path / "hit") and (tmp_path / "hit").read_bytes() == kept.read_bytes()
    for bad in ("../escape.zip", "sub/x.zip", ".hidden", "", "x" * 200):
        cache.keep(bad, kept)
        assert not cache.fetch(bad, tmp_path / "bad") and not (tmp_path / "bad").exists()
    assert [b.name for b in container.list_blobs(name_starts_with=model)] == [f"{model}/cache/onnx2tf-a.zip"]


def test_the_reconciler_ends_export_runs_whose_job_is_gone(services, unique_name):
    from loupe.evaluations.service import EvaluationService
    from loupe.models.service import ModelService
    from loupe.reconcile import Reconciler
    from loupe.runs.submit import RunSubmitter

    backend = ScriptedBackend()
    submitter = RunSubmitter(services.storage, backend)
    models = ModelService(services.storage, services.datasets, backend, submitter)
    exports = ExportService(services.storage, models.repo, submitter)
    evaluations = EvaluationService(services.storage, services.datasets, models.repo, backend, submitter)
    reconciler = Reconciler(models, evaluations, backend, 60, exports=exports)
    name = unique_name("recon")
    _model(services, name)
    crashed = exports.create(name, "ONNX").record
    backend.states[crashed.job_id] = JobStatus(JobState.COMPLETED, detail="exit code 137")
    never = exports.create(name, "ONNX", "ONNXFloat16").record
    exports.repo.store.delete(name, never.name)
    exports.repo.store.create(replace(never, job_id=None, created=never.created - SUBMIT_GRACE * 2))
    actions = {a.model: a for a in reconciler.run_once() if a.model.startswith(f"{name}/")}
    assert set(actions) == {f"{name}/exports/ONNX", f"{name}/exports/ONNX-ONNXFloat16"}
    first = exports.get(name, "ONNX")
    assert first.status is RunStatus.FAILED and "exit code 137" in first.error["message"]
    assert "never submitted" in exports.get(name, "ONNX", "onnxfloat16").error["message"]


def test_a_detector_trained_for_export_stretches(services, unique_name, monkeypatch):
    """trainingParameters.exportable (Custom Vision: a compact domain) -> the job's input_resize
    "stretch" -> the detector recipe's options (docs/exports.md#letterbox-trained-detectors);
    classifiers and other detectors are left to the recipe's default."""
    from loupe.datasets.requests import DatasetIn
    from loupe.models.requests import ModelIn
    from loupe.models.service import ModelService
    from loupe.runs.submit import RunSubmitter
    from tests.support.data import classification_files, detection_files, upload

    backend = ScriptedBackend()
    models = ModelService(services.storage, services.datasets, backend, RunSubmitter(services.storage, backend))
    container = services.storage.container(services.settings.datasets_container)
    datasets = {}
    for kind, files in (("imageObjectDetection", detection_files()), ("imageClassification", classification_files())):
        datasets[kind] = unique_name("exp")
        url = upload(container, f"staging/{datasets[kind]}", files)["annotations.json"]
        services.datasets.register(datasets[kind], DatasetIn(annotation_kind=kind, annotation_file_uris=[url]))
    specs = []
    monkeypatch.setattr(models, "submit", lambda record, spec: specs.append(spec) or record)

    def create(kind: str, **flags) -> ModelRecord:
        params = {"trainingDatasetName": datasets[kind], "timeBudgetInHours": 1}
        if "body" in flags:
            params["exportable"] = flags.pop("body")
        return models.create(unique_name("m"), ModelIn.model_validate({"trainingParameters": params}), **flags)

    wanted = create("imageObjectDetection", body=True)
    assert wanted.input_resize == "stretch" and wanted.wire()["trainingParameters"]["exportable"] is True
    assert models.repo.find(wanted.name).value.input_resize == "stretch"  # stored: a resubmission keeps it
    compact = create("imageObjectDetection", exportable=True)  # what a compact Custom Vision domain passes
    plain = create("imageObjectDetection")
    classifier = create("imageClassification", body=True)
    assert [s.input_resize for s in specs] == ["stretch", "stretch", None, None]
    assert "exportable" not in plain.wire()["trainingParameters"] and classifier.input_resize is None
    assert compact.input_resize == "stretch"

    from trainer import job
    from trainer.detection import DetectorOptions

    seen = {}

    class Recipe:
        name, options = "detector", DetectorOptions

        @staticmethod
        def fit(images, labels, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr(job, "get_recipe", lambda kind: Recipe)
    dataset = type("Dataset", (), {"images": [], "labels": ["a"]})()
    job.fit_job(specs[0], dataset, context=None)
    assert seen["options"].resize == "stretch"
    seen.clear()
    job.fit_job(specs[2], dataset, context=None)
    assert "options" not in seen
