"""Loupe's own storage: clients, tables, blobs."""
