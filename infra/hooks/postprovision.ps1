# azd postprovision hook (Windows): same as postprovision.sh. Builds the trainer image in the cloud
# (az acr build) unless the tag already exists; TRAINER_IMAGE_BUILD=docker builds locally, =skip skips.
$ErrorActionPreference = 'Stop'

function Require([string] $name) {
    $value = [Environment]::GetEnvironmentVariable($name)
    if (-not $value) { Write-Error "postprovision: $name is not set; run azd provision first"; exit 1 }
    return $value
}

$registry = Require 'AZURE_CONTAINER_REGISTRY_NAME'
$loginServer = Require 'AZURE_CONTAINER_REGISTRY_ENDPOINT'
$repository = Require 'TRAINER_IMAGE_REPOSITORY'
$tag = if ($env:TRAINER_IMAGE_TAG) { $env:TRAINER_IMAGE_TAG } else { 'latest' }
$mode = if ($env:TRAINER_IMAGE_BUILD) { $env:TRAINER_IMAGE_BUILD } else { 'acr' }
$dockerfile = 'trainer_image/Dockerfile'
$subscriptionArgs = @()
if ($env:AZURE_SUBSCRIPTION_ID) { $subscriptionArgs = @('--subscription', $env:AZURE_SUBSCRIPTION_ID) }

$root = (Resolve-Path (Join-Path $PSScriptRoot '..' '..')).Path
Set-Location $root

if ($mode -eq 'skip') {
    Write-Host "postprovision: TRAINER_IMAGE_BUILD=skip, not building $loginServer/${repository}:$tag"
    exit 0
}

az acr repository show --name $registry --image "${repository}:$tag" @subscriptionArgs *> $null
if ($LASTEXITCODE -eq 0) {
    Write-Host "postprovision: $loginServer/${repository}:$tag already exists, nothing to build"
    exit 0
}

if (-not (Test-Path $dockerfile)) { Write-Error "postprovision: $dockerfile not found in $root"; exit 1 }
if (-not (Test-Path '.dockerignore')) {
    Write-Error "postprovision: no .dockerignore at $root; it must exclude .venv, node_modules and .git before the repository root is sent as build context"
    exit 1
}

switch ($mode) {
    'acr' {
        Write-Host "postprovision: building $loginServer/${repository}:$tag with ACR Tasks (az acr build)"
        az acr build --registry $registry --image "${repository}:$tag" --file $dockerfile --platform linux/amd64 --timeout 7200 @subscriptionArgs .
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    }
    'docker' {
        Write-Host "postprovision: building $loginServer/${repository}:$tag with the local Docker engine"
        az acr login --name $registry @subscriptionArgs
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
        docker build --platform linux/amd64 --file $dockerfile --tag "$loginServer/${repository}:$tag" .
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
        docker push "$loginServer/${repository}:$tag"
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    }
    default {
        Write-Error "postprovision: TRAINER_IMAGE_BUILD must be acr, docker or skip (got '$mode')"
        exit 1
    }
}
