#!/bin/sh
# azd preprovision hook: tag the trainer image by the content of the files it is built from.
# A changed trainer gets a new tag, so Batch nodes never run a stale cached image; an unchanged one
# keeps its tag, so postprovision skips the (slow) build. The tag reaches Bicep through the azd
# environment (TRAINER_IMAGE_TAG, see infra/main.parameters.json).
#   TRAINER_IMAGE_SOURCES   paths hashed, relative to the repository root
#                           (default: trainer_image loupe requirements-core.txt pyproject.toml)
#   TRAINER_IMAGE_TAG_MODE  "content" (default) or "manual": keep the TRAINER_IMAGE_TAG you set
set -eu

root=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd)
cd "$root"

if [ "${TRAINER_IMAGE_TAG_MODE:-content}" = "manual" ]; then
    echo "preprovision: TRAINER_IMAGE_TAG_MODE=manual, keeping TRAINER_IMAGE_TAG=${TRAINER_IMAGE_TAG:-latest}"
    exit 0
fi

if command -v sha256sum >/dev/null 2>&1; then
    sha() { sha256sum "$@"; }
elif command -v shasum >/dev/null 2>&1; then
    sha() { shasum -a 256 "$@"; }
else
    echo "preprovision: error: neither sha256sum nor shasum is installed" >&2
    exit 1
fi

sources=""
for path in ${TRAINER_IMAGE_SOURCES:-trainer_image loupe requirements-core.txt pyproject.toml}; do
    if [ -e "$path" ]; then
        sources="$sources $path"
    fi
done
if [ -z "$sources" ]; then
    echo "preprovision: error: none of the trainer sources exist under $root" >&2
    exit 1
fi

# "digest  path" per file, sorted by path, hashed again: independent of file order and mtimes.
# shellcheck disable=SC2086  # $sources is a list of paths without spaces
digest=$(find $sources -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print \
    | LC_ALL=C sort \
    | while IFS= read -r file; do sha "$file"; done \
    | sha | cut -c1-12)
tag="t-$digest"

if [ -n "${AZURE_ENV_NAME:-}" ]; then
    azd env set TRAINER_IMAGE_TAG "$tag" --environment "$AZURE_ENV_NAME"
else
    azd env set TRAINER_IMAGE_TAG "$tag"
fi
echo "preprovision: trainer image tag $tag (from:$sources)"
