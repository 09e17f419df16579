// The Event Grid system topic of the storage account. The BlobCreated subscription that reaches the
// `dataset_blob_created` function is created after code deployment by infra/hooks/postdeploy.*,
// as in the official Event Grid blob trigger template: its webhook URL carries the Functions host's
// `blobs_extension` system key, which only exists once the deployed app has indexed its blob trigger.
param name string
param location string
param tags object = {}
param storageAccountName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = systemTopic.name
