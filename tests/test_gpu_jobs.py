"""scripts/gpu_jobs.sh's cv phase, run on the CPU on a tiny dataset: what a GPU session relies on working."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from dataset_helpers import make_dataset

from senet import read_card

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ARGS = ["--img-size", "32", "--batch-size", "6", "--epochs", "2", "--warmup-epochs", "1", "--workers", "1",
              "--device", "cpu"]

pytestmark = pytest.mark.slow  # each runs a shell script that starts several Python processes


def _run_cv(tmp_path: Path, *train_args: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """``gpu_jobs.sh cv tiny TRAIN_ARGS`` in a fresh work folder; returns the run, the work and the out folder."""
    data = make_dataset(tmp_path / "msld_v2")
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # The script calls python3: make that this interpreter. A wrapper, not a symlink: a symlinked virtualenv
    # python outside the virtualenv's bin/ no longer finds its pyvenv.cfg and runs as the base interpreter.
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "DATA": str(data), "OUT": str(out), "LIMIT": "300", "THREADS": "1",
           "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_jobs.sh"), "cv", "tiny", *train_args],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    return run, work, out


def test_cv_phase_trains_every_fold_merges_them_and_returns_at_most_8_files(tmp_path: Path) -> None:
    run, _, out = _run_cv(tmp_path, "--arch", "resnet18", *TRAIN_ARGS)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    returned = sorted(path.name for path in out.iterdir())
    assert len(returned) <= 8  # the device tool brings back at most 8 files
    assert {"tiny.safetensors", "tiny.json", "tiny.md", "tiny_folds.tgz"} <= set(returned)
    cv = read_card(out / "tiny.json").metrics["cv"]
    assert cv["fold_ids"] == [1, 2] and "incomplete" not in cv
    with tarfile.open(out / "tiny_folds.tgz") as archive:
        names = archive.getnames()
    assert {"runs/tiny_fold1.json", "runs/tiny_fold2.json", "runs/tiny_fold1.log"} <= set(names)


def test_a_failing_step_stops_the_script_with_its_exit_status(tmp_path: Path) -> None:
    run, work, out = _run_cv(tmp_path, "--arch", "no_such_model", *TRAIN_ARGS)
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]  # argparse's status for a bad choice
    assert "FAILED: tiny_fold1 (exit 2)" in run.stderr and "invalid choice: 'no_such_model'" in run.stderr
    assert not (work / "runs" / "tiny_cv.log").exists()  # crossval, the next step, never ran
    assert not (out / "summary.json").exists()  # nor did anything after it
