"""``python -m loupe.migrate``: copy projects from a Custom Vision endpoint (Azure's, or another
Loupe) into a Loupe, through the Custom Vision SDK on both sides. Imports from the core only
``loupe.settings`` (for the local defaults)."""
