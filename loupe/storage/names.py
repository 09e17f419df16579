"""Names of the tables Loupe keeps its state in (the containers are settings)."""

DATASETS_TABLE = "LoupeDatasets"
MODELS_TABLE = "LoupeModels"
EVALUATIONS_TABLE = "LoupeEvaluations"
# export packages of models (docs/exports.md): partition = model name, row key = the export's key
EXPORTS_TABLE = "LoupeExports"
# one row per delivered blob-created event (name + etag): makes redelivery idempotent
BLOB_EVENTS_TABLE = "LoupeBlobEvents"

# Custom Vision (docs/customvision.md#storage): projects in one partition; tags, images, iterations
# and stored predictions partitioned by their project's id
CV_PROJECTS_TABLE = "LoupeCvProjects"
CV_TAGS_TABLE = "LoupeCvTags"
CV_IMAGES_TABLE = "LoupeCvImages"
CV_ITERATIONS_TABLE = "LoupeCvIterations"
CV_PREDICTIONS_TABLE = "LoupeCvPredictions"

ALL_TABLES = (DATASETS_TABLE, MODELS_TABLE, EVALUATIONS_TABLE, EXPORTS_TABLE, BLOB_EVENTS_TABLE, CV_PROJECTS_TABLE,
              CV_TAGS_TABLE, CV_IMAGES_TABLE, CV_ITERATIONS_TABLE, CV_PREDICTIONS_TABLE)

# Azure Functions function names (function_app.py); infra wires Event Grid to the blob one.
BLOB_FUNCTION_NAME = "dataset_blob_created"
RECONCILE_FUNCTION_NAME = "reconcile_jobs"

# models live in one partition of MODELS_TABLE (row key: the model name); evaluations are
# partitioned by their model's name (row key: the evaluation name)
MODELS_PARTITION = "model"
