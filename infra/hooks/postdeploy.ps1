# azd postdeploy hook (Windows): same as postdeploy.sh. Subscribes the dataset function to BlobCreated
# events of the datasets container through the Event Grid system topic, with the app's
# blobs_extension system key in the webhook URL.
$ErrorActionPreference = 'Stop'

function Require([string] $name) {
    $value = [Environment]::GetEnvironmentVariable($name)
    if (-not $value) { Write-Error "postdeploy: $name is not set; run azd provision first"; exit 1 }
    return $value
}

$group = Require 'AZURE_RESOURCE_GROUP'
$app = Require 'AZURE_FUNCTION_APP_NAME'
$hostName = Require 'SERVICE_API_HOSTNAME'
$topic = Require 'EVENTGRID_SYSTEM_TOPIC_NAME'
$container = Require 'DATASETS_CONTAINER_NAME'
$function = Require 'DATASET_BLOB_FUNCTION_NAME'
$subscriptionName = if ($env:EVENTGRID_SUBSCRIPTION_NAME) { $env:EVENTGRID_SUBSCRIPTION_NAME } else { 'loupe-datasets-blob-created' }
# unset: ".json" (the COCO files); set to an empty string: every blob
$suffix = if ($null -ne $env:DATASET_EVENTS_SUBJECT_SUFFIX) { $env:DATASET_EVENTS_SUBJECT_SUFFIX } else { '.json' }
$attempts = if ($env:LOUPE_HOOK_KEY_ATTEMPTS) { [int] $env:LOUPE_HOOK_KEY_ATTEMPTS } else { 60 }
$pause = if ($env:LOUPE_HOOK_PAUSE_SECONDS) { [int] $env:LOUPE_HOOK_PAUSE_SECONDS } else { 10 }
$subscriptionArgs = @()
if ($env:AZURE_SUBSCRIPTION_ID) { $subscriptionArgs = @('--subscription', $env:AZURE_SUBSCRIPTION_ID) }

Write-Host "postdeploy: waiting for the blobs_extension key of $app"
$key = ''
for ($i = 1; -not $key; $i++) {
    if ($i -gt $attempts) {
        Write-Error "postdeploy: $app has no blobs_extension system key after $attempts attempts; check that the deployment succeeded and that function '$function' is listed (az functionapp function list -g $group -n $app)"
        exit 1
    }
    # A request wakes a scaled-to-zero Flex app; its host creates the key while indexing functions.
    try { Invoke-WebRequest -Uri "https://$hostName/" -TimeoutSec 30 -SkipHttpErrorCheck | Out-Null } catch { }
    $key = az functionapp keys list --resource-group $group --name $app @subscriptionArgs --query 'systemKeys.blobs_extension' --output tsv 2> $null
    if ($LASTEXITCODE -ne 0) { $key = '' }
    if (-not $key) { Start-Sleep -Seconds $pause }
}

$endpoint = "https://$hostName/runtime/webhooks/blobs?functionName=Host.Functions.$function&code=$key"
$subjectPrefix = "/blobServices/default/containers/$container/blobs/"
$filterArgs = @('--subject-begins-with', $subjectPrefix)
if ($suffix) { $filterArgs += @('--subject-ends-with', $suffix) }

# Event Grid validates the webhook on creation; a cold instance can miss the handshake, so retry.
for ($i = 1; ; $i++) {
    az eventgrid system-topic event-subscription create @subscriptionArgs `
        --name $subscriptionName --resource-group $group --system-topic-name $topic `
        --endpoint-type webhook --endpoint $endpoint `
        --included-event-types Microsoft.Storage.BlobCreated `
        @filterArgs --output none
    if ($LASTEXITCODE -eq 0) { break }
    if ($i -ge 3) {
        Write-Error "postdeploy: could not create Event Grid subscription $subscriptionName on $topic"
        exit 1
    }
    Write-Host "postdeploy: subscription not created yet (webhook validation?), retrying in $($pause * 2) s"
    Start-Sleep -Seconds ($pause * 2)
}
Write-Host "postdeploy: BlobCreated events of $subjectPrefix*$suffix now reach $function"
