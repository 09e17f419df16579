"""The export platforms and flavors Loupe builds, in Custom Vision's spelling (docs/exports.md).

The same table as the trainer's ``trainer.packages.PLATFORMS`` (the core cannot import the trainer;
tests/exports checks that the two agree). Names are matched without regard to case; a flavor is
kept as its caller sent it for the wire, and canonical for the job and the export's key.
"""
from __future__ import annotations

from dataclasses import dataclass

FLOAT16 = "ONNXFloat16"
PLATFORMS: dict[str, tuple[str | None, ...]] = {"ONNX": (None, FLOAT16, "ONNX10", "ONNX12"), "OpenVino": (None,),
                                                "DockerFile": (None, "Linux", "ARM"),
                                                "TensorFlow": (None, "TensorFlowNormal", "TensorFlowSavedModel",
                                                               "TensorFlowLite", "TensorFlowLiteFloat16"),
                                                "CoreML": (None, "CoreMLFloat16")}
# Custom Vision's other platforms (its ExportPlatform enum): known, not built by Loupe yet
NOT_BUILT = ("VAIDK",)


@dataclass(frozen=True)
class Unsupported(Exception):
    """``what`` ("platform" or "flavor") is not one Loupe builds; ``message`` says which work."""

    what: str
    message: str


def supported_text() -> str:
    parts = [f"{name} (flavor {' or '.join(f or 'none' for f in flavors)})"
             for name, flavors in PLATFORMS.items()]
    return "Loupe exports " + ", ".join(parts) + "."


def canonical(platform: str, flavor: str | None) -> tuple[str, str | None]:
    """The canonical (platform, flavor); Unsupported for anything Loupe does not build."""
    name = {p.lower(): p for p in PLATFORMS}.get((platform or "").strip().lower())
    if name is None:
        known = {p.lower(): p for p in NOT_BUILT}.get((platform or "").strip().lower())
        said = (f"'{known}' exports are not built by Loupe yet" if known
                else f"unknown export platform '{platform[:64]}'")
        raise Unsupported("platform", f"{said}. {supported_text()}")
    if flavor is None or flavor == "":
        return name, None
    flavors = {f.lower(): f for f in PLATFORMS[name] if f}
    if flavor.strip().lower() not in flavors:
        raise Unsupported("flavor",
                          f"flavor '{flavor[:64]}' is not one Loupe builds for {name}. {supported_text()}")
    return name, flavors[flavor.strip().lower()]
