"""The Gradio app: builds without launching, its handler explains every example, a launched app answers a real
gradio_client call; and the catalog, charts and texts the UI is made of."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from gradio.components.plot import PlotData
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app_server import LABELS, random_model, served_app, write_checkpoint  # noqa: E402

import app  # noqa: E402
import senet  # noqa: E402
from senet import se_analysis, se_charts, texts  # noqa: E402
from senet.catalog import Catalog, UnknownModel, card_display_name, resolve_device  # noqa: E402
from ui import i18n  # noqa: E402
from ui.components import EXAMPLES  # noqa: E402
from ui.se_tab import compared  # noqa: E402

SHIPPED = Catalog(ROOT / "checkpoints", device="cpu")


def _profiled_checkpoint(directory: Path, name: str = "se_resnet18_small") -> Path:
    """A random-weight 64 px SE-ResNet-18 whose card holds metrics and class profiles like a trained one."""
    model = random_model("se_resnet18", seed=0)
    card = senet.ModelCard(
        arch="se_resnet18", labels=LABELS, input_size=(64, 64), data={"name": "msld_v2"},
        metrics={"accuracy": 0.74, "macro_f1": 0.71,
                 "confusion_matrix": [[5 if i == j else 1 for j in range(6)] for i in range(6)]},
        training={"command": "python -m senet.train --arch se_resnet18", "epochs": 1}, license="CC BY-NC-SA 4.0")
    images = torch.rand(12, 3, 64, 64)
    targets = torch.arange(12) % len(LABELS)
    card = card.replace(class_profiles=senet.class_profiles(model, [(images, targets)], LABELS))
    return senet.save_checkpoint(model, card, directory / name)


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped checkpoints when there are any, else small random-weight ones (plumbing, not accuracy)."""
    if SHIPPED.available():
        return SHIPPED.directory
    directory = tmp_path_factory.mktemp("checkpoints")
    _profiled_checkpoint(directory)
    return directory


@pytest.fixture(scope="module")
def demo(checkpoint_dir: Path) -> gr.Blocks:
    return app.build_demo(checkpoint_dir, device="cpu")


def _handler(demo: gr.Blocks, api_name: str):
    return next(fn.fn for fn in demo.fns.values() if fn.api_name == api_name)


def test_build_demo_constructs_without_launching(demo: gr.Blocks) -> None:
    assert isinstance(demo, gr.Blocks)
    assert not demo.is_running
    names = {fn.api_name for fn in demo.fns.values()}
    assert {"analyze", "model_info", "overlay", "se_charts", "channel_map"} <= names
    analyze = next(fn for fn in demo.fns.values() if fn.api_name == "analyze")
    assert [block.label.key for block in analyze.inputs[:2]] == ["photo", "model"]
    assert demo.delete_cache == app.DELETE_CACHE
    assert isinstance(app.demo, gr.Blocks)  # module-level demo for `gradio app.py` and Spaces


@pytest.mark.slow
def test_handler_runs_on_every_example_image(demo: gr.Blocks) -> None:
    analyze = _handler(demo, "analyze")
    catalog: Catalog = demo.catalog
    assert len(EXAMPLES) >= 12
    for path, _ in EXAMPLES:
        probabilities, overlay, heatmap, chart, overview, sentence, status, result = analyze(str(path), None)
        assert set(probabilities) == set(catalog.entries[catalog.default].card.labels)
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert overlay.mode == "RGB" and overlay.size == heatmap.size == result.photo.size
        assert isinstance(chart, PlotData) and chart.type == overview.type == "plotly"
        assert texts.label_name(result.analysis.predicted) in sentence
        assert re.search(r"\d+ ms", status), status


def test_every_available_model_answers(demo: gr.Blocks) -> None:
    analyze = _handler(demo, "analyze")
    path = str(EXAMPLES[0][0])
    for name in demo.catalog.available():
        first = demo.catalog.entries[name].card.labels[0]
        probabilities, *_, result = analyze(path, name, "gradcam++", first, "", 0.3, "SE_5_2", "none", "dark")
        assert result.model == name and result.analysis.target == first
        assert max(probabilities.values()) <= 1


def test_follow_up_views_reuse_the_analysis(demo: gr.Blocks) -> None:
    analyze = _handler(demo, "analyze")
    *_, result = analyze(str(EXAMPLES[-1][0]), None)
    transparent = _handler(demo, "overlay")(result, 0.0)
    assert np.array_equal(np.asarray(transparent), np.asarray(result.photo))  # opacity 0: the photo itself
    chart, takeaway = _handler(demo, "se_charts")(result, "SE_2_1", "all", "light")
    assert isinstance(chart, PlotData) and "SE_2_1" in takeaway
    card = demo.catalog.entry(result.model).card
    profiled = list(card.class_profiles["classes"])
    traces = json.loads(chart.plot)["data"]
    assert len([t for t in traces if t["type"] == "scatter"]) == len(profiled)  # one average line per class
    ranked = [label for label, _ in result.analysis.top_k(len(card.labels))]
    assert compared(result.analysis, card, "top") == [lb for lb in ranked if lb in profiled][:2]
    assert compared(result.analysis, card, "none") == []
    block = list(result.analysis.excitations)[-1]
    channel = senet.strongest_channels(result.analysis.excitations[block], 1)[0]
    feature = _handler(demo, "channel_map")(result, block, channel)
    assert feature.size == result.photo.size


def test_bad_inputs_get_a_human_message(demo: gr.Blocks, tmp_path: Path) -> None:
    analyze = _handler(demo, "analyze")
    text = tmp_path / "photo.jpg"
    text.write_text("<html>not an image</html>")
    with pytest.raises(gr.Error, match="not an image") as caught:
        analyze(str(text), None)
    assert str(tmp_path) not in caught.value.message and "Traceback" not in caught.value.message
    with pytest.raises(gr.Error, match="upload"):
        analyze(None, None)
    for name in ("../../etc/passwd", "/etc/passwd", "nope"):
        with pytest.raises(gr.Error, match="unknown model"):
            analyze(str(EXAMPLES[0][0]), name)
    with pytest.raises(gr.Error, match="There is no CAM method 'magic'"):
        analyze(str(EXAMPLES[0][0]), None, "magic")
    with pytest.raises(gr.Error, match="no class 'Smallpox'"):
        analyze(str(EXAMPLES[0][0]), None, "gradcam", "Smallpox")
    with pytest.raises(gr.Error, match="no CAM layer 'layer9'"):
        analyze(str(EXAMPLES[0][0]), None, "gradcam", "", "layer9")


def test_broken_and_pickle_checkpoints_are_unavailable_and_the_rest_works(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, "good", "se_resnet18", size=64)
    (tmp_path / "corrupt.json").write_text((tmp_path / "good.json").read_text())
    (tmp_path / "corrupt.safetensors").write_bytes(b"not safetensors")
    (tmp_path / "seed_model.pth").write_bytes(b"\x80\x04 pickle")
    card = json.loads((tmp_path / "good.json").read_text())
    (tmp_path / "wrong_head.json").write_text(json.dumps({**card, "labels": ["a", "b"]}))
    (tmp_path / "wrong_head.safetensors").write_bytes((tmp_path / "good.safetensors").read_bytes())
    catalog = Catalog(tmp_path, device="cpu")
    assert catalog.available() == ["good"] and catalog.default == "good"
    for name in ("corrupt", "seed_model", "wrong_head"):
        entry = catalog.entry(name)
        assert not entry.available and entry.error and entry.display_name.endswith(("(unavailable)", "(refused)"))
        assert str(tmp_path) not in entry.error  # reasons are shown to visitors: no server paths
    assert "pickle" in catalog.entry("seed_model").error
    demo = app.build_demo(device="cpu", catalog=catalog)
    analyze = _handler(demo, "analyze")
    with pytest.raises(gr.Error, match="corrupt is unavailable"):
        analyze(str(EXAMPLES[0][0]), "corrupt")
    assert analyze(str(EXAMPLES[0][0]), "good")[7].model == "good"
    note, card_md, *_ = _handler(demo, "model_info")("wrong_head")
    assert "unavailable" in note and card_md == ""


def test_catalog_names_and_lookup(tmp_path: Path) -> None:
    card = senet.ModelCard(arch="se_resnet18", labels=LABELS, data={"name": "msld_v2"}, metrics={"accuracy": 0.7412})
    assert card_display_name(card) == "SE-ResNet-18 · MSLD v2 · 74 % acc"
    assert card_display_name(senet.ModelCard(arch="densenet121", labels=["a", "b"], metrics={"accuracy": 83.6})) \
        == "DenseNet-121 · 84 % acc"
    cv = {"test": {"accuracy": 0.757}, "cv": {"folds": 5, "accuracy": {"mean": 0.769, "std": 0.05}}}
    assert card_display_name(card.replace(metrics=cv)).endswith("77 % acc (5-fold)")  # the comparable number
    partial = {"test": {"accuracy": 0.646}, "cv": {"folds": 2, "incomplete": "stopped", "accuracy": {"mean": 0.68}}}
    # No mean over a partial run, and the picker says the cross-validation is incomplete.
    assert card_display_name(card.replace(metrics=partial)).endswith("65 % acc (CV incomplete)")
    write_checkpoint(tmp_path, "one", "se_resnet18", size=64)
    catalog = Catalog(tmp_path, device="cpu")
    assert catalog.entry(catalog.entry("one").display_name).name == "one"  # display names work as aliases
    with pytest.raises(UnknownModel):
        catalog.entry("../one")
    first, card_one, _ = catalog.load("one")
    assert catalog.load("one")[0] is first  # loaded once, then cached
    # Loaded in channels_last (faster convolutions on the CPU); the analysis matches the file's plain layout.
    conv = next(m for m in first.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    plain, _ = senet.load_checkpoint(tmp_path / "one.safetensors")
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    fast, reference = senet.analyze(first, card_one, photo), senet.analyze(plain, card_one, photo)
    assert max(abs(fast.probabilities[k] - reference.probabilities[k]) for k in fast.probabilities) < 1e-5
    assert np.abs(fast.cam - reference.cam).max() < 1e-4
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    assert Catalog(tmp_path / "missing").names() == []


def test_describe_sentences_and_model_card() -> None:
    probabilities = {"Measles": 0.81, "Chickenpox": 0.12, "Monkeypox": 0.05, "Healthy": 0.02}
    sentence = texts.prediction_sentence(probabilities, "en", positive="Monkeypox")
    assert sentence.startswith("The model thinks this looks most like Measles (81 %); "
                               "the next guess is Chickenpox (12 %).")
    assert "5 % Monkeypox" in sentence
    assert texts.prediction_sentence(probabilities, "zh-CN,zh;q=0.9").startswith("模型认为这最像麻疹（81 %）")
    assert "not confident" in texts.prediction_sentence({"a": 0.4, "b": 0.35, "c": 0.25})
    card = senet.ModelCard(arch="se_resnet18", labels=["Healthy", "Monkeypox"], license="CC BY-NC-SA 4.0",
                           metrics={"accuracy": 0.9, "confusion_matrix": [[9, 1], [2, 8]]}, citation="Ali et al.")
    markdown = texts.model_card_markdown(card)
    for needle in ("Confusion matrix", "| Healthy | 9 | 1 |", "CC BY-NC-SA 4.0", "Ali et al.", "Limitations"):
        assert needle in markdown
    assert "混淆矩阵" in texts.model_card_markdown(card, "zh")
    assert set(i18n.TEXT["en"]) == set(i18n.TEXT["zh"])


def test_charts_cover_both_themes_and_the_paper_view() -> None:
    names = ["SE_2_1", "SE_2_2", "SE_3_1", "SE_3_2", "SE_4_1", "SE_4_2", "SE_5_1", "SE_5_2"]
    assert se_analysis.last_block_per_stage(names) == ["SE_2_2", "SE_3_2", "SE_4_2", "SE_5_2"]
    rng = np.random.default_rng(0)
    excitations = {name: rng.random(16 * (1 + i // 2)) for i, name in enumerate(names)}
    profiles = {"blocks": names, "channels": [v.size for v in excitations.values()],
                "classes": {"A": {"count": 3, "mean": [v.tolist() for v in excitations.values()], "std": []}}}
    for theme in ("light", "dark"):
        chart = se_charts.block_chart(excitations, se_analysis.last_block_per_stage(names), profiles=profiles,
                                      labels=["A", "B"], highlight="A", theme=theme)
        assert len([axes for axes in chart.axes if axes.get_visible()]) == 4
        assert len(chart.axes[0].lines) == 1  # class A's average; B has no profile
        overview = se_charts.overview_chart(excitations, theme=theme)
        assert overview.axes[0].images[0].get_array().shape == (8, 64)
        assert chart.axes[0].get_title(loc="left") == "SE_2_2 · 16 channels"
        assert chart.axes[0].yaxis.label.get_color() == se_charts.THEMES[theme]["text"]


def test_cli_defaults_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SPACE_ID", "SYSTEM", "SENET_MCP", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(name, raising=False)
    args = app.parse_args([])
    assert (args.host, args.port, args.device, args.share, args.mcp) == ("127.0.0.1", 7860, "auto", False, False)
    assert app.parse_args(["--mcp"]).mcp is True
    monkeypatch.setenv("SPACE_ID", "someone/senet-explorer")
    assert app.parse_args([]).host == "0.0.0.0" and app.parse_args([]).mcp is True  # Space defaults
    assert app.parse_args(["--no-mcp"]).mcp is False
    monkeypatch.setenv("SENET_MCP", "0")
    assert app.parse_args([]).mcp is False
    monkeypatch.setenv("GRADIO_SERVER_NAME", "10.0.0.5")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "9000")
    args = app.parse_args(["--device", "cpu"])
    assert (args.host, args.port, args.device) == ("10.0.0.5", 9000, "cpu")
    assert app.parse_args(["--port", "7000", "--share"]).port == 7000
    options = app.launch_options()
    assert options["max_file_size"] and options["run_history"] is False and not options.get("share")


@pytest.mark.slow
def test_launched_app_answers_gradio_client(checkpoint_dir: Path, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    example = EXAMPLES[0][0]
    with served_app(checkpoint_dir) as (demo, url):
        client = Client(url, verbose=False, download_files=False)
        assert "/analyze" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        label, overlay, heatmap, chart, overview, sentence, status = client.predict(
            handle_file(str(example)), demo.catalog.default, api_name="/analyze")
        assert label["label"] in demo.catalog.entries[demo.catalog.default].card.labels
        confidences = [c["confidence"] for c in label["confidences"]]
        assert confidences == sorted(confidences, reverse=True) and 0 < sum(confidences) <= 1 + 1e-6
        assert overlay["url"] and heatmap["url"]
        assert chart["type"] == overview["type"] == "plotly" and json.loads(chart["plot"])["data"]
        assert "ms" in status and sentence
        with pytest.raises(Exception, match="not in the list of choices|[Uu]nknown model"):
            client.predict(handle_file(str(example)), "../../etc/passwd", api_name="/analyze")
        not_an_image = tmp_path / "photo.jpg"  # through the real upload path, where Gradio would open it itself
        not_an_image.write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>")
        with pytest.raises(Exception, match="not an image that can be read") as caught:
            client.predict(handle_file(str(not_an_image)), api_name="/analyze")
        assert "gradio" not in str(caught.value) and "Traceback" not in str(caught.value)
        # The server keeps serving after a refused request.
        assert client.predict(handle_file(str(example)), api_name="/analyze")[0]["label"]


def test_examples_are_documented_small_and_cover_every_class() -> None:
    readme = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    assert "CC BY-NC-SA 4.0" in readme and "2207.03342" in readme
    classes = [label for _, label in EXAMPLES]
    for label in LABELS:
        assert classes.count(label) >= 2, label
    for path, label in EXAMPLES:
        assert path.name in readme and label in readme
        with Image.open(path) as image:
            assert max(image.size) <= 448 and image.mode == "RGB"
            assert not image.getexif(), f"{path.name} carries EXIF metadata"
