"""Small contracts of the page's helpers: the heatmap colormap and its "says little" check, the session tickets
that let a newer action stop an older one, the names in the page's language, and the model card's order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import senet
from senet import heatmaps, texts
from senet.catalog import card_display_name
from ui.labels import class_names, layer_name, model_name, status_line
from ui.run_control import Cancelled, Runs


def test_colormap_is_inferno_with_rising_lightness() -> None:
    lut = heatmaps.COLORMAP_LUT
    assert lut.shape == (256, 3) and lut.min() >= 0 and lut.max() <= 1
    luma = lut @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luma) > -0.01)  # dark to bright: reads in greyscale, brightest = most important
    stops = heatmaps.colormap_stops(5)
    assert len(stops) == 5 and stops[0] == "#000004"


def test_uninformative_maps_are_recognised() -> None:
    yy, xx = np.mgrid[0:56, 0:56]
    blob = np.exp(-((yy - 28) ** 2 + (xx - 30) ** 2) / 60.0).astype(np.float32)
    assert heatmaps.uninformative(blob) is None  # a lesion in the middle
    border = np.full((56, 56), 0.1, np.float32)
    border[:3, 40:] = 1.0  # hot spot on the edge, flat inside (early layers of the shipped ResNet)
    assert heatmaps.uninformative(border) == "border"
    assert heatmaps.uninformative(np.zeros((56, 56), np.float32)) == "empty"
    with pytest.raises(ValueError):
        heatmaps.uninformative(np.zeros((2, 3, 4)))


def test_a_newer_ticket_stops_the_older_one_at_its_next_report() -> None:
    runs = Runs()
    first = runs.start("session")
    reports: list[float] = []
    progress = runs.watch(first, reports.append)
    progress(0.1)
    second = runs.start("session")
    with pytest.raises(Cancelled):
        progress(0.2)
    assert reports == [0.1] and runs.current(second) and not runs.cancelled(second)
    runs.cancel("session")
    assert not runs.current(second) and runs.cancelled(second)
    api = runs.start(None)  # API calls have no page session: never superseded
    runs.start(None)
    assert runs.current(api)


def test_tickets_are_bounded_and_thread_safe() -> None:
    runs = Runs(max_sessions=50)
    threads = [threading.Thread(target=lambda i=i: [runs.start(f"s{i % 80}") for _ in range(20)]) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs._latest) <= 50


def test_names_in_chinese_and_a_card_may_add_its_own() -> None:
    labels = ["Monkeypox", "Healthy", "Rash"]
    assert class_names(labels, "en") == {label: label for label in labels}
    names = class_names(labels, "zh", {"label_names": {"zh": {"Rash": "皮疹"}}})
    assert names == {"Monkeypox": texts.LABELS_ZH["Monkeypox"], "Healthy": texts.LABELS_ZH["Healthy"], "Rash": "皮疹"}
    assert model_name("SE-ResNet-18 · MSLD v2 · 77 % acc (5-fold)", "zh") == \
        "SE-ResNet-18 · MSLD v2 · 准确率 77 %（5 折）"
    assert "交叉验证" in model_name("SE-DenseNet-121 · 65 % acc (CV incomplete)", "zh")
    assert model_name("broken (unavailable)", "zh") == "broken（不可用）"
    assert layer_name("layer4", "layer4[-1]: ...", "zh", default=True) == "layer4 · 最后阶段（默认）"
    assert layer_name("layer3", "layer3[-1]: last block", "en", default=False) == "layer3 · stage 4"
    assert layer_name("other", "other: described", "en", default=False) == "other: described"


def test_status_line_is_short_with_details_on_demand() -> None:
    line = status_line(312.0, {"forward_backward": 250.0, "cam": 1.0}, "CPU (2 threads)", "Grad-CAM", "M", "en")
    assert line.startswith("Analysed in 0.3 s on the CPU <details>")
    assert "forward + backward 250 ms" in line
    zh = status_line(312.0, {}, "NVIDIA H100 (CUDA)", "Grad-CAM", "M", "zh")
    assert zh.startswith("在 GPU 上分析用时 0.3 秒")


def test_model_card_puts_limitations_first_and_reads_the_recipe_as_a_table() -> None:
    card = senet.ModelCard(arch="se_resnet18", labels=["Healthy", "Monkeypox"], metrics={"accuracy": 0.9},
                           training={"recipe": {"lr": 0.0005, "amp": True,
                                                "augment": {"ratio": [0.75, 1.3333333333333333]}},
                                     "command": "python -m senet.train", "speed": {"images_per_s": 1152.9}})
    markdown = texts.model_card_markdown(card)
    shown = markdown.replace("\\", "")  # card text is markdown-escaped (0\\.0005 renders as 0.0005)
    assert markdown.index("Limitations") < markdown.index("Model") < markdown.index("Training recipe")
    for row in ("| lr | 0.0005 |", "| amp | yes |", "| augment · ratio | 0.75 – 1.33 |",
                "| speed · images per s | 1,153 |"):
        assert row in shown
    assert "1.3333" not in markdown and "{" not in markdown.split("Training recipe")[1]


def test_picker_name_says_when_cross_validation_is_incomplete() -> None:
    card = senet.ModelCard(arch="se_densenet121", labels=["a", "b"], data={"name": "msld_v2"},
                           metrics={"test": {"accuracy": 0.646}, "cv": {"folds": 2, "incomplete": "stopped"}})
    assert card_display_name(card) == "SE-DenseNet-121 · MSLD v2 · 65 % acc (CV incomplete)"
