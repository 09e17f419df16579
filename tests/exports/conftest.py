"""The Custom Vision SDK clients of tests/customvision, shared with the export tests."""
from tests.customvision.conftest import predictor, trainer  # noqa: F401  (fixtures)
