# azd preprovision hook (Windows): same as preprovision.sh. Tags the trainer image by the content of
# the files it is built from and stores the tag in the azd environment (TRAINER_IMAGE_TAG).
$ErrorActionPreference = 'Stop'

$root = (Resolve-Path (Join-Path $PSScriptRoot '..' '..')).Path
Set-Location $root

if ($env:TRAINER_IMAGE_TAG_MODE -eq 'manual') {
    Write-Host "preprovision: TRAINER_IMAGE_TAG_MODE=manual, keeping TRAINER_IMAGE_TAG=$env:TRAINER_IMAGE_TAG"
    exit 0
}

$sourceList = if ($env:TRAINER_IMAGE_SOURCES) { $env:TRAINER_IMAGE_SOURCES } else { 'trainer_image loupe requirements-core.txt pyproject.toml' }
$sources = @($sourceList -split '\s+' | Where-Object { $_ -and (Test-Path $_) })
if ($sources.Count -eq 0) {
    Write-Error "preprovision: none of the trainer sources exist under $root"
    exit 1
}

# "digest  path" per file (paths relative, with /), sorted by path, hashed again.
$files = foreach ($source in $sources) {
    Get-ChildItem -Path $source -File -Recurse |
        Where-Object { $_.FullName -notmatch '[\\/]__pycache__[\\/]' -and $_.Extension -ne '.pyc' }
}
$lines = $files |
    ForEach-Object { [pscustomobject]@{ Path = ([System.IO.Path]::GetRelativePath($root, $_.FullName) -replace '\\', '/'); File = $_.FullName } } |
    Sort-Object -Property Path -CaseSensitive |
    ForEach-Object { '{0}  {1}' -f (Get-FileHash -Algorithm SHA256 -Path $_.File).Hash.ToLowerInvariant(), $_.Path }
$bytes = [System.Text.Encoding]::UTF8.GetBytes(($lines -join "`n") + "`n")
$digest = [System.BitConverter]::ToString([System.Security.Cryptography.SHA256]::HashData($bytes)).Replace('-', '').ToLowerInvariant().Substring(0, 12)
$tag = "t-$digest"

if ($env:AZURE_ENV_NAME) {
    azd env set TRAINER_IMAGE_TAG $tag --environment $env:AZURE_ENV_NAME
} else {
    azd env set TRAINER_IMAGE_TAG $tag
}
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host "preprovision: trainer image tag $tag (from: $($sources -join ' '))"
