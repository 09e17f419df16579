#!/bin/sh
# azd postdeploy hook: subscribe the dataset function to BlobCreated events of the datasets container.
# The webhook URL carries the Functions host's `blobs_extension` system key, which exists only once
# the deployed app has started and indexed its Event Grid blob trigger; hence a hook after deploy
# (as in Azure-Samples/functions-quickstart-python-azd-eventgrid-blob), not Bicep.
#   DATASET_EVENTS_SUBJECT_SUFFIX  only blobs ending with this reach the function (default ".json",
#                                  the COCO files; set it to "" to deliver every blob, images included)
#   EVENTGRID_SUBSCRIPTION_NAME    default "loupe-datasets-blob-created"
set -eu

group=${AZURE_RESOURCE_GROUP:?run azd provision first (output AZURE_RESOURCE_GROUP)}
app=${AZURE_FUNCTION_APP_NAME:?run azd provision first (output AZURE_FUNCTION_APP_NAME)}
host=${SERVICE_API_HOSTNAME:?run azd provision first (output SERVICE_API_HOSTNAME)}
topic=${EVENTGRID_SYSTEM_TOPIC_NAME:?run azd provision first (output EVENTGRID_SYSTEM_TOPIC_NAME)}
container=${DATASETS_CONTAINER_NAME:?run azd provision first (output DATASETS_CONTAINER_NAME)}
function=${DATASET_BLOB_FUNCTION_NAME:?run azd provision first (output DATASET_BLOB_FUNCTION_NAME)}
subscription_name=${EVENTGRID_SUBSCRIPTION_NAME:-loupe-datasets-blob-created}
suffix=${DATASET_EVENTS_SUBJECT_SUFFIX-.json}
attempts=${LOUPE_HOOK_KEY_ATTEMPTS:-60}
pause=${LOUPE_HOOK_PAUSE_SECONDS:-10}
set --
if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
    set -- --subscription "$AZURE_SUBSCRIPTION_ID"
fi

echo "postdeploy: waiting for the blobs_extension key of $app"
key=""
i=0
while [ -z "$key" ]; do
    i=$((i + 1))
    if [ "$i" -gt "$attempts" ]; then
        echo "postdeploy: error: $app has no blobs_extension system key after $attempts attempts; check that the deployment succeeded and that function '$function' is listed (az functionapp function list -g $group -n $app)" >&2
        exit 1
    fi
    # A request wakes a scaled-to-zero Flex app; its host creates the key while indexing functions.
    curl --silent --output /dev/null --max-time 30 "https://$host/" || true
    key=$(az functionapp keys list --resource-group "$group" --name "$app" "$@" \
        --query "systemKeys.blobs_extension" --output tsv 2>/dev/null || true)
    if [ -z "$key" ]; then
        sleep "$pause"
    fi
done

endpoint="https://$host/runtime/webhooks/blobs?functionName=Host.Functions.$function&code=$key"
subject_prefix="/blobServices/default/containers/$container/blobs/"

# Event Grid validates the webhook on creation; a cold instance can miss the handshake, so retry.
# create is a PUT: re-running the hook updates the subscription (e.g. after a key rotation).
i=0
until {
    if [ -n "$suffix" ]; then
        az eventgrid system-topic event-subscription create "$@" \
            --name "$subscription_name" --resource-group "$group" --system-topic-name "$topic" \
            --endpoint-type webhook --endpoint "$endpoint" \
            --included-event-types Microsoft.Storage.BlobCreated \
            --subject-begins-with "$subject_prefix" --subject-ends-with "$suffix" \
            --output none
    else
        az eventgrid system-topic event-subscription create "$@" \
            --name "$subscription_name" --resource-group "$group" --system-topic-name "$topic" \
            --endpoint-type webhook --endpoint "$endpoint" \
            --included-event-types Microsoft.Storage.BlobCreated \
            --subject-begins-with "$subject_prefix" \
            --output none
    fi
}; do
    i=$((i + 1))
    if [ "$i" -ge 3 ]; then
        echo "postdeploy: error: could not create Event Grid subscription $subscription_name on $topic" >&2
        exit 1
    fi
    echo "postdeploy: subscription not created yet (webhook validation?), retrying in $((pause * 2)) s"
    sleep $((pause * 2))
done
echo "postdeploy: BlobCreated events of $subject_prefix*${suffix} now reach $function"
