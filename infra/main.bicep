// Loupe on Azure: `azd up` provisions everything below, deploys the Function App (service `api` in
// azure.yaml), builds the trainer image in ACR and subscribes the dataset function to blob events
// (infra/hooks). See docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; used for the resource group name and the unique resource token.')
param environmentName string

@minLength(1)
@description('Region of every resource. It must offer Flex Consumption and the GPU VM size, with Batch quota for it.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying user (azd sets AZURE_PRINCIPAL_ID); empty: no data-plane roles for it.')
param principalId string = ''
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@secure()
@description('Comma-separated API keys for the Ocp-Apim-Subscription-Key header. azd generates one on first provision and keeps it in .azure/<env>/config.json.')
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 48
      noSpecial: true
    }
  }
})
param apiKeys string

@description('Memory of each Flex Consumption instance.')
@allowed([
  512
  2048
  4096
])
param functionInstanceMemoryMB int = 2048
@description('Upper bound of Flex Consumption instances.')
@minValue(1)
@maxValue(1000)
param functionMaximumInstanceCount int = 40

@description('GPU VM size of the Batch pool. Needs Batch account quota for its family (docs/deploy.md).')
param batchVmSize string = 'Standard_NC4as_T4_v3'
@description('Maximum number of GPU nodes (one training job per node).')
@minValue(1)
@maxValue(100)
param batchMaxNodes int = 2
@description('true: Spot (low-priority) nodes; false: dedicated nodes.')
param batchUseSpotNodes bool = true

@description('Tag of the trainer image; the preprovision hook sets it from the content of the trainer sources.')
param trainerImageTag string = 'latest'

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

// Names the code relies on. Containers and tables must match loupe/settings.py and
// loupe/storage/names.py (tests/infra/test_names.py); the function name is the one Event Grid calls.
var datasetsContainerName = 'datasets'
var modelsContainerName = 'models'
var customVisionContainerName = 'customvision'
var tableNames = [
  'LoupeDatasets'
  'LoupeModels'
  'LoupeEvaluations'
  'LoupeExports'
  'LoupeBlobEvents'
  'LoupeCvProjects'
  'LoupeCvTags'
  'LoupeCvImages'
  'LoupeCvIterations'
  'LoupeCvPredictions'
]
var datasetBlobFunctionName = 'dataset_blob_created'
var batchPoolId = 'loupe-gpu'
var trainerImageRepository = 'loupe-trainer'

var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
// Flex Consumption deploys the app package from this container.
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module apiIdentity 'core/identity.bicep' = {
  name: 'api-identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module nodeIdentity 'core/identity.bicep' = {
  name: 'batch-node-identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}batchnode-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    containerNames: [
      deploymentContainerName
      datasetsContainerName
      modelsContainerName
      customVisionContainerName
    ]
    tableNames: tableNames
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module registry 'core/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    name: '${abbrs.containerRegistryRegistries}${resourceToken}'
    location: location
    tags: tags
  }
}

module batch 'app/batch.bicep' = {
  name: 'batch'
  scope: rg
  params: {
    accountName: '${abbrs.batchBatchAccounts}${resourceToken}'
    location: location
    tags: tags
    poolId: batchPoolId
    vmSize: batchVmSize
    maxNodes: batchMaxNodes
    useSpotNodes: batchUseSpotNodes
    nodeIdentityId: nodeIdentity.outputs.id
    registryServer: registry.outputs.loginServer
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    serviceName: 'api'
    identityId: apiIdentity.outputs.id
    identityClientId: apiIdentity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    instanceMemoryMB: functionInstanceMemoryMB
    maximumInstanceCount: functionMaximumInstanceCount
    datasetsContainerName: datasetsContainerName
    modelsContainerName: modelsContainerName
    customVisionContainerName: customVisionContainerName
    apiKeys: apiKeys
    batchAccountEndpoint: batch.outputs.accountEndpoint
    batchPoolId: batch.outputs.poolId
    trainerImage: '${registry.outputs.loginServer}/${trainerImageRepository}:${trainerImageTag}'
    registryServer: registry.outputs.loginServer
    batchNodeIdentityResourceId: nodeIdentity.outputs.id
    batchNodeIdentityClientId: nodeIdentity.outputs.clientId
  }
}

module eventGrid 'app/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    name: '${abbrs.eventGridDomainsTopics}${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    registryName: registry.outputs.name
    batchAccountName: batch.outputs.accountName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    apiPrincipalId: apiIdentity.outputs.principalId
    nodePrincipalId: nodeIdentity.outputs.principalId
    principalId: principalId
    principalType: principalType
  }
}

// azd stores these in .azure/<env>/.env; the hooks read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output SERVICE_API_HOSTNAME string = api.outputs.defaultHostName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_BATCH_ACCOUNT_NAME string = batch.outputs.accountName
output AZURE_BATCH_ACCOUNT_ENDPOINT string = batch.outputs.accountEndpoint
output AZURE_BATCH_POOL_ID string = batch.outputs.poolId
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output DATASETS_CONTAINER_NAME string = datasetsContainerName
output DATASET_BLOB_FUNCTION_NAME string = datasetBlobFunctionName
output TRAINER_IMAGE_REPOSITORY string = trainerImageRepository
output TRAINER_IMAGE string = '${registry.outputs.loginServer}/${trainerImageRepository}:${trainerImageTag}'
