"""Custom Vision v3.x on Loupe's core (docs/customvision.md): projects, tags, images and regions in
Table storage and blobs; training snapshots a project into an Azure COCO dataset and starts a model
run with the existing pipeline; prediction runs the iteration's model through loupe.inference."""
