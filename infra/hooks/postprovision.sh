#!/bin/sh
# azd postprovision hook: build the trainer image and push it to the registry Bicep created, unless
# an image with this content tag is already there. The build runs in the cloud (az acr build), so
# no local Docker engine is needed; set TRAINER_IMAGE_BUILD=docker to build and push locally
# instead (e.g. where ACR Tasks are not allowed), or =skip to leave the registry alone.
set -eu

registry=${AZURE_CONTAINER_REGISTRY_NAME:?run azd provision first (output AZURE_CONTAINER_REGISTRY_NAME)}
login_server=${AZURE_CONTAINER_REGISTRY_ENDPOINT:?run azd provision first (output AZURE_CONTAINER_REGISTRY_ENDPOINT)}
repository=${TRAINER_IMAGE_REPOSITORY:?run azd provision first (output TRAINER_IMAGE_REPOSITORY)}
tag=${TRAINER_IMAGE_TAG:-latest}
mode=${TRAINER_IMAGE_BUILD:-acr}
dockerfile=trainer_image/Dockerfile
set -- 
if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
    set -- --subscription "$AZURE_SUBSCRIPTION_ID"
fi

root=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd)
cd "$root"

if [ "$mode" = "skip" ]; then
    echo "postprovision: TRAINER_IMAGE_BUILD=skip, not building $login_server/$repository:$tag"
    exit 0
fi

if az acr repository show --name "$registry" --image "$repository:$tag" "$@" >/dev/null 2>&1; then
    echo "postprovision: $login_server/$repository:$tag already exists, nothing to build"
    exit 0
fi

if [ ! -f "$dockerfile" ]; then
    echo "postprovision: error: $dockerfile not found in $root" >&2
    exit 1
fi
# The build context is the repository root: without a .dockerignore the upload would include
# .venv, node_modules and .git (gigabytes).
if [ ! -f .dockerignore ]; then
    echo "postprovision: error: no .dockerignore at $root; it must exclude .venv, node_modules and .git before the repository root is sent as build context" >&2
    exit 1
fi

case "$mode" in
    acr)
        echo "postprovision: building $login_server/$repository:$tag with ACR Tasks (az acr build)"
        az acr build --registry "$registry" --image "$repository:$tag" --file "$dockerfile" \
            --platform linux/amd64 --timeout 7200 "$@" .
        ;;
    docker)
        echo "postprovision: building $login_server/$repository:$tag with the local Docker engine"
        az acr login --name "$registry" "$@"
        docker build --platform linux/amd64 --file "$dockerfile" --tag "$login_server/$repository:$tag" .
        docker push "$login_server/$repository:$tag"
        ;;
    *)
        echo "postprovision: error: TRAINER_IMAGE_BUILD must be acr, docker or skip (got '$mode')" >&2
        exit 1
        ;;
esac
