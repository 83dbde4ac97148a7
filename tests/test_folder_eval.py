"""``python -m senet.folder_eval``: metrics and class profiles of a checkpoint on a labelled folder, into its card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_helpers import CLASSES, make_dataset
from model_helpers import random_model

import senet
from senet.catalog import Catalog
from senet.convert import LIMITATIONS
from senet.folder_eval import FolderError, attach, evaluate_folder, main


def _checkpoint(folder: Path) -> Path:
    card = senet.ModelCard(arch="se_resnet18", labels=tuple(CLASSES), input_size=(32, 32), title="Mine",
                           limitations=LIMITATIONS, training={"converter": "python -m senet.convert"})
    return senet.save_checkpoint(random_model("se_resnet18", 0, len(CLASSES)), card, folder / "mine")


def test_metrics_and_profiles_are_written_into_the_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(tmp_path / "photos", per_class=3)
    weights = _checkpoint(tmp_path)
    assert main([str(weights), "--data", str(data), "--profiles"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[0])["images"] == 9 and "with class profiles" in out

    model, card = senet.load_checkpoint(weights)
    direct = evaluate_folder(model, card, data)
    assert card.metrics["accuracy"] == pytest.approx(direct["accuracy"])
    assert np.asarray(card.metrics["confusion_matrix"]).sum() == 9
    assert card.data["evaluated_on"] == {"folder": "photos", "images": 9, "counts": dict.fromkeys(CLASSES, 3),
                                         "command": "python -m senet.folder_eval"}
    assert card.limitations.startswith(LIMITATIONS) and "9 photos of the folder 'photos'" in card.limitations
    assert set(card.class_profiles["classes"]) == set(CLASSES)
    # The picker now shows the measured accuracy, and running it again does not stack the note.
    assert "% acc" in Catalog(tmp_path, device="cpu").entries["mine"].display_name
    assert attach(weights, data).limitations.count("Metrics measured by") == 1


def test_dry_run_leaves_the_card_alone(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "photos", per_class=2)
    weights = _checkpoint(tmp_path)
    before = weights.with_suffix(".json").read_bytes()
    assert main([str(weights), "--data", str(data), "--dry-run"]) == 0
    assert weights.with_suffix(".json").read_bytes() == before


def test_folders_that_do_not_fit_the_card_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(tmp_path / "photos", per_class=1)
    (data / "Unknown").mkdir()
    weights = _checkpoint(tmp_path)
    assert main([str(weights), "--data", str(data)]) == 1
    assert "the sub-folders ['Unknown'] of photos are not classes of this model" in capsys.readouterr().err
    with pytest.raises(FolderError, match="no images"):
        evaluate_folder(torch.nn.Linear(1, 1), senet.ModelCard(arch="resnet18", labels=["x", "y"]), tmp_path / "e"
                        if (tmp_path / "e").mkdir() is None else tmp_path)
