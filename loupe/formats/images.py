"""Finding a source's images and their sizes: annotation files name images in many ways (a path
relative to the file, to the root, a bare name, a Label Studio URL), so each is resolved against
the dataset's own file list, never outside it."""
from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from PIL import Image, UnidentifiedImageError

from loupe.formats.model import FormatError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ico"})


def is_image(rel: str) -> bool:
    return posixpath.splitext(rel)[1].lower() in IMAGE_SUFFIXES


class ImageIndex:
    def __init__(self, root: Path, files: list[str]) -> None:
        self.root = root
        self.paths = {f for f in files if is_image(f)}
        self.by_name: dict[str, list[str]] = {}
        for rel in sorted(self.paths):
            self.by_name.setdefault(posixpath.basename(rel), []).append(rel)

    def resolve(self, name: str, base: str, place: str) -> str:
        """``name`` as written in an annotation file at ``base`` (a folder relative to the root):
        tried relative to that folder, to the root, then by its bare name when that is unique."""
        name = name.replace("\\", "/")
        for folder in (base, ""):
            candidate = posixpath.normpath(posixpath.join(folder, name)) if folder else posixpath.normpath(name)
            if candidate in self.paths:
                return candidate
        found = self.by_name.get(posixpath.basename(name), [])
        if len(found) == 1:
            return found[0]
        if found:
            raise FormatError(place, f"image {name!r} is ambiguous: {', '.join(found[:3])} all match")
        raise FormatError(place, f"image {name!r} is not in the dataset")

    def resolve_url(self, url: str, place: str) -> str:
        """A Label Studio task's image: /data/local-files/?d=<path>, /data/upload/<project>/<hash>-<name>,
        or any URL whose last path component is the file's name."""
        parsed = urlparse(url)
        local = parse_qs(parsed.query).get("d")
        name = unquote(local[0] if local else parsed.path)
        try:
            return self.resolve(posixpath.basename(name), "", place)
        except FormatError:
            stem = posixpath.basename(name)
            if "-" in stem:  # uploads are stored as <8 hex>-<original name>
                return self.resolve(stem.split("-", 1)[1], "", place)
            raise

    def size(self, rel: str) -> tuple[int, int]:
        """Width and height from the image header (nothing decoded), as displayed: an EXIF rotation
        of 90 or 270 degrees swaps them, as labelling tools and Loupe's own decoding do."""
        try:
            with Image.open(self.root / rel) as image:
                try:
                    orientation = image.getexif().get(0x0112, 1)
                except Exception:  # a broken EXIF block: the stored orientation
                    orientation = 1
                return image.size[::-1] if orientation in (5, 6, 7, 8) else image.size
        except (UnidentifiedImageError, OSError) as exc:
            raise FormatError(rel, f"not a readable image ({exc})") from None

    def checked_size(self, rel: str, declared: tuple[int, int] | None, place: str) -> tuple[int, int]:
        """The size the annotation declares, checked against the file (either orientation: EXIF
        rotation swaps them), else the file's."""
        actual = self.size(rel)
        if declared is None or declared[0] <= 0 or declared[1] <= 0:
            return actual
        if declared != actual and declared != actual[::-1]:
            raise FormatError(place, f"declares {declared[0]}x{declared[1]} but {rel} is {actual[0]}x{actual[1]}")
        return declared
