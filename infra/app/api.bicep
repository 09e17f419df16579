// The Loupe Function App on Flex Consumption: HTTP API (one ASGI catch-all), the Event Grid blob
// trigger for dataset drops and the reconcile timer. Every LOUPE_* setting the code reads on Azure
// is set here and only here (tests/infra/test_app_settings.py keeps this in step with loupe/settings.py).
param name string
param planName string
param location string
param tags object = {}
@description('azd finds the deployment target by this tag; must match the service name in azure.yaml.')
param serviceName string = 'api'

@description('User-assigned identity of the Function App (resource id and client id).')
param identityId string
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

// --- Loupe settings
param datasetsContainerName string
param modelsContainerName string
param customVisionContainerName string
@secure()
param apiKeys string
@description('Host name of the Batch account, without scheme (batchAccount.properties.accountEndpoint).')
param batchAccountEndpoint string
param batchPoolId string
@description('Fully qualified trainer image: <registry login server>/<repository>:<tag>.')
param trainerImage string
param registryServer string
param batchNodeIdentityResourceId string
param batchNodeIdentityClientId string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.12'
      }
    }
  }

  // Flex Consumption: no FUNCTIONS_WORKER_RUNTIME / WEBSITE_RUN_FROM_PACKAGE here (the runtime is
  // in functionAppConfig); host storage is identity-based (no connection string, shared keys off).
  resource appSettings 'config' = {
    name: 'appsettings'
    properties: {
      AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
      AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identityClientId
      APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'

      // storage: service URIs + the managed identity (never a connection string on Azure)
      LOUPE_STORAGE_BLOB_URI: storage.properties.primaryEndpoints.blob
      LOUPE_STORAGE_TABLE_URI: storage.properties.primaryEndpoints.table
      LOUPE_MANAGED_IDENTITY_CLIENT_ID: identityClientId
      LOUPE_DATASETS_CONTAINER: datasetsContainerName
      LOUPE_MODELS_CONTAINER: modelsContainerName
      LOUPE_CUSTOMVISION_CONTAINER: customVisionContainerName

      // HTTP API: comma-separated keys accepted in Ocp-Apim-Subscription-Key
      LOUPE_API_KEYS: apiKeys

      // training runs as container tasks on the Batch GPU pool
      LOUPE_JOB_BACKEND: 'azure-batch'
      LOUPE_BATCH_ACCOUNT_URL: 'https://${batchAccountEndpoint}'
      LOUPE_BATCH_POOL_ID: batchPoolId
      LOUPE_BATCH_TRAINER_IMAGE: trainerImage
      LOUPE_BATCH_REGISTRY_SERVER: registryServer
      LOUPE_BATCH_NODE_IDENTITY_RESOURCE_ID: batchNodeIdentityResourceId
      LOUPE_BATCH_NODE_IDENTITY_CLIENT_ID: batchNodeIdentityClientId
    }
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
output uri string = 'https://${functionApp.properties.defaultHostName}'
