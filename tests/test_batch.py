"""Batch analysis: hostile zip archives are read safely, every input file gets a row, batched Grad-CAM equals the
single-image analysis, and the CSV has the documented columns."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hostile_files import assert_human
from hostile_zips import EXPECTED, hostile_zip, jpeg, lying_zip, many_entries_zip
from model_helpers import random_model
from PIL import Image

import senet
from senet import archive, batch

LABELS = ("Chickenpox", "Cowpox", "HFMD", "Healthy", "Measles", "Monkeypox")


@pytest.fixture(scope="module")
def model_and_card():
    card = senet.ModelCard(arch="se_resnet18", labels=LABELS, input_size=(64, 64), data={"positive": "Monkeypox"})
    return random_model("se_resnet18", 0, len(LABELS)), card


def test_hostile_zip_members_get_their_reasons(tmp_path: Path) -> None:
    members = archive.read_zip(hostile_zip(tmp_path / "hostile.zip"))
    by_name = {member.name: member for member in members}
    assert set(by_name) == set(EXPECTED)  # folders and __MACOSX clutter are left out
    for name, phrase in EXPECTED.items():
        member = by_name[name]
        if phrase is None or phrase == "not an image":  # readable bytes; load_image judges the content
            assert member.data is not None and member.reason is None, name
        else:
            assert member.data is None and phrase in member.reason.lower(), (name, member.reason)
            assert_human(member.reason, str(tmp_path))
    assert not list(tmp_path.glob("*.jpg")) and not (tmp_path.parent / "escape.jpg").exists()  # nothing extracted


def test_whole_archive_refusals(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(hostile_zip(tmp_path / "h.zip").read_bytes()[:300])
    with pytest.raises(archive.ArchiveRejected) as caught:
        archive.read_zip(truncated)
    assert_human(str(caught.value))
    with pytest.raises(archive.ArchiveRejected, match="too many entries"):
        archive.read_zip(many_entries_zip(tmp_path / "many.zip", 30), max_entries=20)
    with pytest.raises(archive.ArchiveRejected, match="too large"):
        archive.read_zip(hostile_zip(tmp_path / "big.zip"), max_archive_bytes=1000)


def test_lying_size_and_budgets_are_bounded(tmp_path: Path) -> None:
    (liar,) = archive.read_zip(lying_zip(tmp_path / "liar.zip"))
    assert liar.data is None and "damaged" in liar.reason  # never more than the declared 100 bytes were read
    path = tmp_path / "three.zip"
    with zipfile.ZipFile(path, "w") as handle:
        for index in range(3):
            handle.writestr(f"p{index}.jpg", jpeg((index * 60, 10, 10)))
    members = archive.read_zip(path, max_files=2)
    assert [m.data is not None for m in members] == [True, True, False]
    assert "first 2 files" in members[2].reason
    small_budget = archive.read_zip(path, max_total_bytes=len(jpeg((0, 10, 10))) + 10)
    assert sum(m.data is not None for m in small_budget) == 1
    assert all("total size limit" in m.reason for m in small_budget if m.data is None)


def test_collect_and_run_batch_give_one_row_per_file(tmp_path: Path, model_and_card) -> None:
    model, card = model_and_card
    photo = tmp_path / "=cmd.jpg"  # a name a spreadsheet would run as a formula
    photo.write_bytes(jpeg((200, 150, 100)))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    sources = batch.collect([photo, hostile_zip(tmp_path / "hostile.zip"), broken])
    assert [s.name for s in sources] == ["=cmd.jpg"] + [f"hostile.zip/{n}" for n in EXPECTED] + ["broken.jpg"]
    calls = []
    rows = batch.run_batch(model, card, sources, batch_size=2, progress=lambda done, total: calls.append((done, total)))
    assert len(rows) == len(sources) and [r.file for r in rows] == [s.name for s in sources]
    assert calls[-1] == (len(sources), len(sources)) and all(a <= b for (a, _), (b, _) in zip(calls, calls[1:]))
    good = [r for r in rows if r.ok]
    assert [r.file for r in good] == ["=cmd.jpg", "hostile.zip/photos/red.jpg", "hostile.zip/photos/blue.jpg"]
    for row in good:
        assert row.top_class in LABELS and 0 < row.probability <= 1 and row.positive == "Monkeypox"
        assert row.positive_vs_rest == pytest.approx(row.analysis.probabilities["Monkeypox"])
        assert row.analysis.cam.shape == (64, 64) and row.photo is not None
    for row in rows:
        if not row.ok:
            assert_human(row.reason, str(tmp_path))
    assert "not an image" in next(r for r in rows if r.file.endswith("notes.txt")).reason
    out = batch.write_csv(rows, tmp_path / "out.csv")
    with out.open(encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert tuple(records[0]) == batch.CSV_COLUMNS and len(records) == len(rows)
    assert records[0]["file"] == "'=cmd.jpg" and records[0]["status"] == "ok"
    assert float(records[0]["probability"]) == pytest.approx(good[0].probability, abs=1e-4)
    skipped = [r for r in records if r["status"] == "skipped"]
    assert skipped and all(r["reason"] and not r["top_class"] for r in skipped)


def test_collect_applies_the_file_limit_across_uploads(tmp_path: Path) -> None:
    paths = []
    for index in range(4):
        path = tmp_path / f"p{index}.jpg"
        path.write_bytes(jpeg((index * 50, 0, 0)))
        paths.append(path)
    sources = batch.collect(paths, max_files=3)
    assert [s.reason is None for s in sources] == [True, True, True, False]
    assert "first 3 files" in sources[3].reason


@pytest.mark.parametrize("arch", ["se_resnet18", "se_densenet121"])
def test_batched_gradcam_equals_single_analysis(arch: str) -> None:
    model = random_model(arch, 1, len(LABELS))
    card = senet.ModelCard(arch=arch, labels=LABELS, input_size=(64, 64))
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (70 + 5 * i, 80, 3), dtype=np.uint8)) for i in range(3)]
    batched = batch.analyze_batch(model, card, images)
    for image, got in zip(images, batched):
        want = senet.analyze(model, card, image)
        assert got.predicted == want.predicted and got.layer == want.layer
        assert max(abs(got.probabilities[k] - want.probabilities[k]) for k in LABELS) < 1e-6
        assert np.abs(got.cam - want.cam).max() < 1e-4 and got.cam.max() > 0.5
        assert set(got.excitations) == set(want.excitations)
        assert all(np.allclose(got.excitations[k], want.excitations[k], atol=1e-5) for k in want.excitations)
    assert senet.hooks.hook_count(model) == 0 and not model.training


def test_batch_rows_carry_calibration_and_familiarity_like_analyze() -> None:
    """A shipped checkpoint has a temperature and familiarity statistics: the batch path applies both."""
    from ui.components import EXAMPLES

    model, card = senet.load_checkpoint(Path(__file__).resolve().parent.parent / "checkpoints" /
                                        "se_resnet18_msld_v2.safetensors")
    assert card.metrics.get("calibration")
    images = [senet.image_io.load_image(str(path)) for path, _ in EXAMPLES[:3]]
    for image, got in zip(images, batch.analyze_batch(model, card, images)):
        want = senet.analyze(model, card, image)
        assert max(abs(got.probabilities[k] - want.probabilities[k]) for k in card.labels) < 1e-4
        assert want.familiarity is not None and got.familiarity == pytest.approx(want.familiarity, abs=1e-3)
        assert got.unfamiliar == want.unfamiliar
