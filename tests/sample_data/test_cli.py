"""python -m loupe.sample_data OUT_DIR writes every dataset folder."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loupe.sample_data import all_samples

ROOT = Path(__file__).resolve().parents[2]


def test_cli_writes_every_dataset(tmp_path):
    done = subprocess.run([sys.executable, "-m", "loupe.sample_data", str(tmp_path), "--seed", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    for ds in all_samples(seed=1):
        folder = tmp_path / ds.name
        coco = json.loads((folder / "annotations.json").read_text())
        assert coco == ds.coco
        written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))
        assert written == sorted(ds.images)
        assert all((folder / rel).read_bytes() == data for rel, data in ds.images.items())


def test_cli_refuses_a_negative_seed(tmp_path):
    done = subprocess.run([sys.executable, "-m", "loupe.sample_data", str(tmp_path), "--seed", "-3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--seed must be non-negative, got -3" in done.stderr
    assert not any(tmp_path.iterdir())
