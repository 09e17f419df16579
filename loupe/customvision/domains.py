"""The documented Custom Vision domains (docs/customvision.md#domains): the same ids, names and
types, so code that picks ``type == "ObjectDetection" and name == "General"`` finds one.

A domain decides the task (classification or detection); Loupe trains every domain with its own
recipe, so the name is kept for the client, not for the model. Compact domains are the exportable
ones, as on Azure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLASSIFICATION = "Classification"
OBJECT_DETECTION = "ObjectDetection"

_COMPACT_PLATFORMS = ["CoreML", "TensorFlow", "DockerFile", "ONNX", "OpenVino"]


@dataclass(frozen=True)
class Domain:
    id: str
    name: str
    type: str

    @property
    def exportable(self) -> bool:
        return "compact" in self.name

    @property
    def is_detection(self) -> bool:
        return self.type == OBJECT_DETECTION

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "type": self.type, "exportable": self.exportable, "enabled": True,
            "exportablePlatforms": list(_COMPACT_PLATFORMS) if self.exportable else [],
            "modelInformation": {"estimatedModelSizeInMegabytes": 16 if self.exportable else 40,
                                 "description": f"{self.name} ({self.type}), trained by Loupe's "
                                 f"{'detector' if self.is_detection else 'classifier'} recipe."},
        }


DOMAINS: tuple[Domain, ...] = (
    Domain("ee85a74c-405e-4adc-bb47-ffa8ca0c9f31", "General", CLASSIFICATION),
    Domain("a8e3c40f-fb4a-466f-832a-5e457ae4a344", "General [A1]", CLASSIFICATION),
    Domain("2e37d7fb-3a54-486a-b4d6-cfc369af0018", "General [A2]", CLASSIFICATION),
    Domain("c151d5b5-dd07-472a-acc8-15d29dea8518", "Food", CLASSIFICATION),
    Domain("ca455789-012d-4b50-9fec-5bb63841c793", "Landmarks", CLASSIFICATION),
    Domain("b30a91ae-e3c1-4f73-a81e-c270bff27c39", "Retail", CLASSIFICATION),
    Domain("0732100f-1a38-4e49-a514-c9b44c697ab5", "General (compact)", CLASSIFICATION),
    Domain("a1db07ca-a19a-4830-bae8-e004a42dc863", "General (compact) [S1]", CLASSIFICATION),
    Domain("da2e3a8a-40a5-4171-82f4-58522f70fbc1", "General", OBJECT_DETECTION),
    Domain("9c616dff-2e7d-ea11-af59-1866da359ce6", "General [A1]", OBJECT_DETECTION),
    Domain("1d8ffafe-ec40-4fb2-8f90-72b3b6cecea4", "Logo", OBJECT_DETECTION),
    Domain("3780a898-81c3-4516-81ae-3a139614e1f3", "Products on shelves", OBJECT_DETECTION),
    Domain("a27d5ca5-bb19-49d8-a70a-fec086c47f5b", "General (compact)", OBJECT_DETECTION),
    Domain("7ec2ac80-887b-48a6-8df9-8b1357765430", "General (compact) [S1]", OBJECT_DETECTION),
)
DEFAULT_DOMAIN = DOMAINS[0]
_BY_ID = {domain.id: domain for domain in DOMAINS}


def find_domain(domain_id: str) -> Domain | None:
    return _BY_ID.get(domain_id.strip().lower())
