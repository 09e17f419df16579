"""Where things are in a source checkout (local development and the local job backend)."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAINER_PATH = REPO_ROOT / "trainer_image"
