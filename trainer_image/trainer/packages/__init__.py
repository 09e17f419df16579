"""Export packages: a trained Loupe model folder -> Custom Vision's export zips (ONNX float32 and
float16, OpenVINO IR). See docs/exports.md."""
from trainer.packages.build import PLATFORMS, build_package
from trainer.packages.manifest import PackageError, PackageInfo

__all__ = ["PLATFORMS", "PackageError", "PackageInfo", "build_package"]
