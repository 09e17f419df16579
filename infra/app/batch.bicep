// Azure Batch: an Entra-ID-only account and one GPU pool that autoscales with the pending training
// tasks, down to zero nodes when there are none. Nodes run the trainer image as container tasks,
// pulled from ACR with the nodes' user-assigned identity.
param accountName string
param location string
param tags object = {}

param poolId string
@description('VM size of the GPU nodes (one training task per node).')
param vmSize string = 'Standard_NC4as_T4_v3'
@description('Upper bound of the pool size; also caps the cost of a burst of training jobs.')
@minValue(1)
@maxValue(100)
param maxNodes int = 2
@description('true: Spot (low-priority) nodes, cheaper but preemptible (the trainer resumes from checkpoints); false: dedicated nodes.')
param useSpotNodes bool = true

@description('Resource id of the user-assigned identity the nodes use (ACR pull, storage).')
param nodeIdentityId string
param registryServer string

// One statement per line. $PendingTasks counts active + running tasks, so a node stays while its
// task runs; with no tasks the target is 0 and, by $NodeDeallocationOption, nodes leave only
// after their running task completes. Batch evaluates this every 5 minutes (the minimum).
var autoScaleFormula = join(
  [
    '$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 5);'
    '$recent = max(0, $PendingTasks.GetSample(1));'
    '$tasks = $samples < 70 ? $recent : max($recent, avg($PendingTasks.GetSample(TimeInterval_Minute * 5)));'
    '$nodes = min(${maxNodes}, $tasks);'
    '$spot = ${useSpotNodes ? 1 : 0};'
    '$TargetLowPriorityNodes = $spot == 1 ? $nodes : 0;'
    '$TargetDedicatedNodes = $spot == 1 ? 0 : $nodes;'
    '$NodeDeallocationOption = taskcompletion;'
  ],
  '\n'
)

resource batchAccount 'Microsoft.Batch/batchAccounts@2025-06-01' = {
  name: accountName
  location: location
  tags: tags
  properties: {
    poolAllocationMode: 'BatchService'
    allowedAuthenticationModes: [
      'AAD'
    ]
    publicNetworkAccess: 'Enabled'
  }
}

resource pool 'Microsoft.Batch/batchAccounts/pools@2025-06-01' = {
  parent: batchAccount
  name: poolId
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${nodeIdentityId}': {}
    }
  }
  properties: {
    displayName: 'Loupe GPU training'
    vmSize: vmSize
    taskSlotsPerNode: 1
    interNodeCommunication: 'Disabled'
    deploymentConfiguration: {
      virtualMachineConfiguration: {
        imageReference: {
          publisher: 'microsoft-dsvm'
          offer: 'ubuntu-hpc'
          sku: '2404'
          version: 'latest'
        }
        nodeAgentSkuId: 'batch.node.ubuntu 24.04'
        // No containerImageNames prefetch: the image tag changes with the trainer's content and
        // the pool's VM configuration should not (nodes pull the task's image on first use).
        containerConfiguration: {
          type: 'DockerCompatible'
          containerRegistries: [
            {
              registryServer: registryServer
              identityReference: {
                resourceId: nodeIdentityId
              }
            }
          ]
        }
      }
    }
    scaleSettings: {
      autoScale: {
        formula: autoScaleFormula
        evaluationInterval: 'PT5M'
      }
    }
  }
}

output accountName string = batchAccount.name
output accountId string = batchAccount.id
output accountEndpoint string = batchAccount.properties.accountEndpoint
output poolId string = pool.name
