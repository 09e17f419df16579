"""``python -m loupe.migrate customvision --source-endpoint URL --source-key KEY ...``"""
from __future__ import annotations

from loupe.migrate.cli import main

raise SystemExit(main())
