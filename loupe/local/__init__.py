"""The embedded default: Azurite + a local host running the same app and handlers as Azure."""
