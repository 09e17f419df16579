"""Loupe's limits on what a dataset may hold and how much work registering one may cause
(docs/wire-contract.md#limits). Each is checked before anything is read or written, and a
violation is a 400 naming the field.

The sizes add up so that a dataset's record always fits one Table entity (1 MiB, see
loupe/storage/entities.py): URIs ~84 KB (twice for a dropped dataset's blob ETags), custom
properties ~33 KB, the SAS token 8 KB, the validation summary at most VALIDATION_MAX_BYTES.
"""
from __future__ import annotations

from loupe.errors import ServiceError, bad_request, shown, text_problem

# annotation files per dataset, and the bytes read from all of them in one registration (one file
# may hold 512 MiB; a dataset at the service's quota needs ~140 MB in all)
MAX_ANNOTATION_FILES = 20
MAX_ANNOTATION_BYTES_PER_DATASET = 512 * 1024 * 1024
MAX_URI_LENGTH = 2_048  # an annotation file URI
MAX_CUSTOM_PROPERTIES = 10  # the retired service's documented limit (docs/wire-contract.md#datasets)
MAX_PROPERTY_KEY_LENGTH = 256
MAX_PROPERTY_VALUE_LENGTH = 4_096
MAX_PROPERTIES_CHARS = 16_384  # all keys and values together
MAX_SAS_TOKEN_LENGTH = 4_096
# the validation summary as stored (UTF-16 bytes): its category list (at most 2000 names of at most
# 64K characters in all) always fits; listed errors and warnings are dropped to fit
VALIDATION_MAX_BYTES = 640 * 1024
# one listed problem's message (it may quote user input, already cut to a short prefix)
MAX_PROBLEM_MESSAGE = 1_000


def _refuse(message: str, target: str) -> ServiceError:
    return bad_request(f"The request body is invalid: {target}: {message}.", target=target, inner_code="BadArgument")


def check_custom_properties(properties: dict[str, str] | None) -> None:
    """Keys, values and their total: length and characters (control and bidi characters refused)."""
    if not properties:
        return
    total = 0
    for key, value in properties.items():
        if len(key) > MAX_PROPERTY_KEY_LENGTH:
            raise _refuse(f"the key {shown(key, 60)!r} is {len(key)} characters long; at most "
                          f"{MAX_PROPERTY_KEY_LENGTH} are allowed", "customProperties")
        problem = text_problem(key)
        if problem:
            raise _refuse(f"the key {shown(key, 60)!r} {problem}", "customProperties")
        target = f"customProperties.{key}"
        if len(value) > MAX_PROPERTY_VALUE_LENGTH:
            raise _refuse(f"the value is {len(value)} characters long; at most {MAX_PROPERTY_VALUE_LENGTH} "
                          "are allowed", target)
        problem = text_problem(value)
        if problem:
            raise _refuse(f"the value {problem}", target)
        total += len(key) + len(value)
    if total > MAX_PROPERTIES_CHARS:
        raise _refuse(f"the keys and values take {total} characters together; at most {MAX_PROPERTIES_CHARS} "
                      "are allowed", "customProperties")


def check_annotation_uris(uris: list[str] | None) -> None:
    """How many URIs, and how long each is (duplicates are found once they are parsed)."""
    if uris is None:
        return
    if len(uris) > MAX_ANNOTATION_FILES:
        raise _refuse(f"{len(uris)} annotation files are listed; at most {MAX_ANNOTATION_FILES} are allowed",
                      "annotationFileUris")
    for index, uri in enumerate(uris):
        if len(uri) > MAX_URI_LENGTH:
            raise bad_request(f"annotationFileUris[{index}]: the URI is {len(uri)} characters long; at most "
                              f"{MAX_URI_LENGTH} are allowed.", code="DatasetInvalidAnnotationUri",
                              target=f"annotationFileUris[{index}]")


def check_sas_token(token: str | None) -> None:
    if token is not None and len(token) > MAX_SAS_TOKEN_LENGTH:
        raise _refuse(f"the token is {len(token)} characters long; at most {MAX_SAS_TOKEN_LENGTH} are allowed",
                      "authentication.sasToken")
