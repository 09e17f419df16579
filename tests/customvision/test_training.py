"""Training, iterations and publishing through the unchanged Custom Vision SDK, with the real trainer."""
from __future__ import annotations

import uuid

import pytest
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException,
    ImageRegionCreateEntry,
)

from loupe.sample_data import classification
from tests.customvision.conftest import upload_sample, wait_trained

PREDICTION_RESOURCE = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/loupe"


@pytest.fixture(scope="module")
def trained_multiclass(trainer):
    project = trainer.create_project(f"cv-train-{uuid.uuid4().hex[:6]}", classification_type="Multiclass")
    tags = upload_sample(trainer, project.id, classification("train", per_class=3))
    iteration = trainer.train_project(project.id)
    assert iteration.status == "Training"
    # an iteration still training can neither be published nor start another training
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.publish_iteration(project.id, iteration.id, "early", PREDICTION_RESOURCE)
    assert excinfo.value.error.code == "BadRequestIterationIsNotTrained"
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.train_project(project.id, force_train=True)
    assert excinfo.value.error.code == "BadRequestTrainingAlreadyInProgress"
    return project, tags, wait_trained(trainer, project.id, iteration.id)


def test_training_completes_and_is_a_loupe_model(trained_multiclass, services):
    project, tags, iteration = trained_multiclass
    assert iteration.status == "Completed", iteration.training_error_details
    assert iteration.trained_at is not None and iteration.training_time_in_minutes >= 1
    assert iteration.classification_type == "Multiclass"
    model = services.models.get(f"customvision-{iteration.id}")
    assert model.multilabel is False


def test_nothing_changed_means_no_training(trainer, trained_multiclass):
    project, _, _ = trained_multiclass
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.train_project(project.id)
    assert excinfo.value.error.code == "BadRequestTrainingNotNeeded"


def test_publish_repeat_and_delete_rules(trainer, trained_multiclass):
    project, _, iteration = trained_multiclass
    assert trainer.publish_iteration(project.id, iteration.id, "prod", PREDICTION_RESOURCE) is True
    assert trainer.publish_iteration(project.id, iteration.id, "prod", PREDICTION_RESOURCE) is True
    assert trainer.get_iteration(project.id, iteration.id).publish_name == "prod"
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.delete_iteration(project.id, iteration.id)
    assert excinfo.value.error.code == "BadRequestIterationIsPublished"
    trainer.unpublish_iteration(project.id, iteration.id)
    assert trainer.get_iteration(project.id, iteration.id).publish_name is None
    trainer.publish_iteration(project.id, iteration.id, "prod", PREDICTION_RESOURCE)


def test_training_with_nothing_labelled_is_refused(trainer, unique_name):
    project = trainer.create_project(unique_name("cv-empty"))
    trainer.create_tag(project.id, "a")
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.train_project(project.id)
    assert excinfo.value.error.code == "BadRequestTrainingValidationFailed"
    assert trainer.get_iterations(project.id) == []


def test_unknown_ids_answer_their_not_found_codes(trainer, trained_multiclass):
    project, tags, _ = trained_multiclass
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.get_iteration(project.id, unknown)
    assert excinfo.value.error.code == "NotFoundIteration"
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.get_tag(project.id, unknown)
    assert excinfo.value.error.code == "NotFoundTag"
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.get_iterations(unknown)
    assert excinfo.value.error.code == "NotFoundProject"
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.create_image_regions(project.id, [ImageRegionCreateEntry(
            image_id=unknown, tag_id=next(iter(tags.values())), left=0.1, top=0.1, width=0.2, height=0.2)])
    assert excinfo.value.error.code == "NotFoundImage"
    images_before = trainer.get_image_count(project.id)
    with pytest.raises(CustomVisionErrorException) as excinfo:
        trainer.delete_tag(project.id, unknown)
    assert excinfo.value.error.code == "NotFoundTag"
    assert trainer.get_image_count(project.id) == images_before


def test_performance_applies_the_thresholds_per_request(trainer, trained_multiclass):
    project, tags, iteration = trained_multiclass
    low = trainer.get_iteration_performance(project.id, iteration.id, threshold=0.0)
    high = trainer.get_iteration_performance(project.id, iteration.id, threshold=0.9)
    assert {t.name for t in low.per_tag_performance} == set(tags)
    assert {t.id for t in low.per_tag_performance} == set(tags.values())
    # every tag is predicted at 0: all found, precision diluted; at 90% fewer are found
    assert low.recall == 1.0 and low.precision < 0.5
    assert (high.precision, high.recall) != (low.precision, low.recall)
    assert high.recall <= low.recall
    assert 0 < low.average_precision <= 1 and low.average_precision == high.average_precision
    assert all(0 <= t.precision_std_deviation <= 0.5 for t in low.per_tag_performance)
    images = trainer.get_image_performances(project.id, iteration.id)
    assert len(images) == trainer.get_image_performance_count(project.id, iteration.id) >= len(tags)
    first = images[0]
    assert first.tags and len(first.predictions) == len(tags)
    assert first.predictions[0].probability >= first.predictions[-1].probability
    one_tag = trainer.get_image_performances(project.id, iteration.id, tag_ids=[first.tags[0].tag_id])
    assert 0 < len(one_tag) < len(images)


def test_deleting_the_project_removes_its_models_and_blobs(trainer, trained_multiclass, services):
    """Runs last in this module: it deletes the shared project."""
    project, _, iteration = trained_multiclass
    trainer.unpublish_iteration(project.id, iteration.id)
    trainer.delete_project(project.id)
    assert services.models.repo.find(f"customvision-{iteration.id}") is None
    assert services.datasets.find(f"customvision-{iteration.id}") is None
    container = services.storage.container(services.settings.customvision_container)
    assert not list(container.list_blobs(name_starts_with=f"{project.id}/"))
    models = services.storage.container(services.settings.models_container)
    assert not list(models.list_blobs(name_starts_with=f"customvision-{iteration.id}/"))
