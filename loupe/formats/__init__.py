"""Labelled data in the formats people have -> Azure COCO (docs/formats.md): class folders, YOLO,
Pascal VOC, standard COCO, CVAT, Label Studio.

Library: globox (numpy, rich, tqdm; no OpenCV, no torch) parses the boxes of YOLO, VOC, CVAT and
COCO and writes them back (the tests' round trips). supervision would pull opencv-python and
matplotlib into the Function App; pylabel pulls pandas and more. What no library reads without a
framework (class folders, Label Studio JSON) is read here."""
from loupe.formats.bounds import Limits
from loupe.formats.convert import ANNOTATION_FILE, Conversion, convert, convert_folder, parse_folder
from loupe.formats.model import Entry, FormatError, Label, Layout, Parsed

__all__ = ["ANNOTATION_FILE", "Conversion", "Entry", "FormatError", "Label", "Layout", "Limits", "Parsed",
           "convert", "convert_folder", "parse_folder"]
