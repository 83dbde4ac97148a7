"""scripts/gpu_jobs.sh's cv phase, run on the CPU on a tiny dataset: what a GPU session relies on working."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from dataset_helpers import make_dataset

from senet import read_card

ROOT = Path(__file__).resolve().parents[1]


def test_cv_phase_trains_every_fold_merges_them_and_returns_at_most_8_files(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "msld_v2")
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    python = tmp_path / "bin"
    python.mkdir()
    (python / "python3").symlink_to(sys.executable)  # the script calls python3: make it this interpreter
    env = {**os.environ, "DATA": str(data), "OUT": str(out), "LIMIT": "300", "THREADS": "1",
           "PYTHONPATH": str(ROOT), "PATH": f"{python}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_jobs.sh"), "cv", "tiny", "--arch", "resnet18", "--img-size", "32",
         "--batch-size", "6", "--epochs", "2", "--warmup-epochs", "1", "--workers", "1", "--device", "cpu"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    returned = sorted(path.name for path in out.iterdir())
    assert len(returned) <= 8  # the device tool brings back at most 8 files
    assert {"tiny.safetensors", "tiny.json", "tiny.md", "tiny_folds.tgz"} <= set(returned)
    cv = read_card(out / "tiny.json").metrics["cv"]
    assert cv["fold_ids"] == [1, 2] and "incomplete" not in cv
    with tarfile.open(out / "tiny_folds.tgz") as archive:
        names = archive.getnames()
    assert {"runs/tiny_fold1.json", "runs/tiny_fold2.json", "runs/tiny_fold1.log"} <= set(names)
