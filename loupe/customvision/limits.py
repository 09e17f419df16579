"""Custom Vision's documented limits (docs/customvision.md#limits), and Loupe's few-shot minimum."""
from __future__ import annotations

from loupe.imaging import ImageLimits

MAX_BATCH_IMAGES = 64
MAX_BATCH_TAGS = 20  # tagIds given for a whole batch (or per query)
MAX_TAGS_PER_IMAGE = 100
MAX_REGIONS_PER_IMAGE = 300
MAX_ASPECT_RATIO = 25.0
MAX_ITERATIONS = 20
MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY = 128
MAX_METADATA_VALUE = 256
MAX_TAKE = 256
DEFAULT_TAKE = 50
# Loupe trains from this many images per tag (Custom Vision asked for 5, and 15 for detection)
MIN_IMAGES_PER_TAG = 2
TRAINING_IMAGE_LIMITS = ImageLimits(max_bytes=6 * 1024 * 1024, min_dim=16, max_dim=10240)
PREDICTION_IMAGE_BYTES = 4 * 1024 * 1024
# a request body holding a whole batch: 64 images of 6 MB, base64 (4/3) plus JSON framing
MAX_BATCH_BODY_BYTES = MAX_BATCH_IMAGES * TRAINING_IMAGE_LIMITS.max_bytes * 4 // 3 + 1024 * 1024
