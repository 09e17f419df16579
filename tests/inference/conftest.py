from __future__ import annotations

import pytest

from tests.inference.builders import classifier_artifacts, detector_artifacts

MULTICLASS_LABELS = ["hemlock", "japanese-cherry", "oak", "pine"]
MULTILABEL_LABELS = ["red", "green", "blue"]


@pytest.fixture(scope="session")
def multiclass():
    """(artifact files, the torch model they were exported from)."""
    return classifier_artifacts(MULTICLASS_LABELS, "multiclass", seed=1)


@pytest.fixture(scope="session")
def multilabel():
    return classifier_artifacts(MULTILABEL_LABELS, "multilabel", seed=2)


@pytest.fixture(scope="session")
def detector_letterbox():
    return detector_artifacts("letterbox")


@pytest.fixture(scope="session")
def detector_stretch():
    return detector_artifacts("stretch")
