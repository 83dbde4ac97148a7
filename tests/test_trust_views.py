"""The trust widgets' handlers without a browser: warning text, example captions, reliability figure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from app_server import write_checkpoint
from PIL import Image

from senet.calibration import calibration_metrics
from senet.catalog import Catalog
from ui import trust_views
from ui.components import EXAMPLES, Result


def _analysis(catalog: Catalog, unfamiliar: bool | None) -> Result:
    import senet

    net, card, _ = catalog.load(catalog.default)
    analysis = senet.analyze(net, card, Image.new("RGB", (64, 64), (180, 120, 100)))
    familiarity = None if unfamiliar is None else (0.01 if unfamiliar else 0.5)
    return Result(catalog.default, dataclasses.replace(analysis, unfamiliar=unfamiliar, familiarity=familiarity),
                  Image.new("RGB", (64, 64)))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    directory = tmp_path_factory.mktemp("checkpoints")
    write_checkpoint(directory, "small", "se_resnet18", size=64)
    return Catalog(directory, device="cpu")


@pytest.mark.slow
def test_warning_only_for_unfamiliar_photos_in_both_languages(catalog: Catalog) -> None:
    flagged, familiar, unknown = (_analysis(catalog, value) for value in (True, False, None))
    assert "does not look like the skin photos" in trust_views.warning_text(flagged.analysis, "en")
    assert "不像" in trust_views.warning_text(flagged.analysis, "zh")
    assert trust_views.warning_text(familiar.analysis, "en") == ""
    assert trust_views.warning_text(unknown.analysis, "en") == ""  # no statistics: nothing is said

    views = trust_views.TrustViews(catalog)
    warning, label, gallery = views.after_analysis(flagged)
    assert warning["visible"] and label["elem_classes"] == [trust_views.DIMMED]
    assert len(gallery) == len(EXAMPLES)
    for (path, truth), (shown, caption) in zip(EXAMPLES, gallery):
        assert shown == str(path) and caption.split(" · ")[0] in (f"✓ {truth}", f"✗ {truth}")
        assert (" · model: " in caption) == caption.startswith("✗")
    warning, label, _ = views.after_analysis(familiar)
    assert not warning["visible"] and label["elem_classes"] == []


def test_example_caption_marks_mistakes() -> None:
    assert trust_views.example_caption("Chickenpox", "Monkeypox", "en") == "✗ Chickenpox · model: Monkeypox"
    assert trust_views.example_caption("Measles", "Measles", "en") == "✓ Measles"
    assert trust_views.example_caption("Measles", "HFMD", "zh") == "✗ 麻疹 · 模型：手足口病"
    assert trust_views.example_caption("Measles", "Measles", "zh") == "✓ 麻疹"


def test_reliability_figure_draws_both_curves_and_the_diagonal() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 3, generator=generator, dtype=torch.float64) * 3
    targets = torch.randint(0, 3, (200,), generator=generator)
    calibration = calibration_metrics(logits[:100], targets[:100], logits[100:], targets[100:])
    figure = trust_views.reliability_figure(calibration, "en")
    assert [trace.name for trace in figure.data] == ["perfectly calibrated", "before", "after calibration"]
    xs = np.asarray(figure.data[2].x, dtype=float)
    assert np.all((xs >= 0) & (xs <= 1))
    assert "ECE" in figure.layout.title.text


def test_reliability_is_empty_without_calibration(catalog: Catalog, tmp_path: Path) -> None:
    assert trust_views.TrustViews(catalog).reliability(catalog.default) is None
