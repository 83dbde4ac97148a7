"""The SE tab's handlers without a server: chart, takeaway, specificity, interventions, drill-down, faithfulness."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio.components.plot import PlotData

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from senet import se_analysis  # noqa: E402
from senet.catalog import Catalog  # noqa: E402
from ui.components import EXAMPLES  # noqa: E402
from ui.se_tab import model_view  # noqa: E402

SHIPPED = Catalog(ROOT / "checkpoints", device="cpu")
pytestmark = pytest.mark.skipif(not SHIPPED.available(), reason="needs the shipped checkpoints")


@pytest.fixture(scope="module")
def demo() -> gr.Blocks:
    return app.build_demo(catalog=SHIPPED)


def _handler(demo: gr.Blocks, name: str):
    return next(fn.fn for fn in demo.fns.values() if fn.api_name == name)


@pytest.fixture(scope="module")
def result(demo: gr.Blocks):
    measles = next(path for path, label in EXAMPLES if label == "Measles")
    *_, result = _handler(demo, "analyze")(str(measles), "se_resnet18_msld_v2")
    return result


def test_paper_view_is_the_default_chart(demo: gr.Blocks, result) -> None:
    chart, takeaway = _handler(demo, "se_charts")(result, "paper", "top", "dark")
    spec = json.loads(chart.plot)
    titles = [a["text"] for a in spec["layout"]["annotations"]]
    assert [t.split("</b>")[0].removeprefix("<b>") for t in titles] == ["SE_2_2", "SE_3_2", "SE_4_2", "SE_5_1",
                                                                        "SE_5_2"]
    assert takeaway.startswith("In SE_5_2 this photo's channel weights are closest to the average")
    # The class averages are those of the fold's Test photos (the card's class_profiles["test"]), and say so.
    assert "held-out Test photos" in spec["layout"]["title"]["subtitle"]["text"]
    card = SHIPPED.entry(result.model).card
    test = se_analysis.test_part_profiles(card.class_profiles)
    assert test is not None, "the shipped card lacks Test-photo profiles (python -m senet.add_profiles --data)"
    label = result.analysis.predicted
    name = f"average {label}"
    line = next(t for t in spec["data"] if t.get("name") == name and t.get("yaxis") == "y5")
    subset = se_analysis.channel_subset(512)
    expected = np.asarray(test["classes"][label]["mean"][test["blocks"].index("SE_5_2")])[subset]
    np.testing.assert_allclose(line["y"], expected, atol=1e-3)
    everything, _ = _handler(demo, "se_charts")(result, "paper", "top", "dark", True)
    assert len(json.loads(everything.plot)["data"][-1]["x"]) == 512  # "all channels": the photo's 512 dots


def test_after_analysis_and_channel_order(demo: gr.Blocks, result) -> None:
    takeaway, specificity, note, intervention = _handler(demo, "after_analysis")(result, "SE_5_2", "light")
    assert "SE_5_2" in takeaway and "most class-specific block is" in note and intervention == ""
    assert isinstance(specificity["value"], PlotData)
    blocks, channels = _handler(demo, "drill_pickers")(result, None)
    assert blocks["value"] == "SE_5_2"
    weights = result.analysis.excitations["SE_5_2"]
    card = SHIPPED.entry(result.model).card
    reference = se_analysis.block_profiles(card.class_profiles, "SE_5_2", 512).means[result.analysis.predicted]
    gaps = [abs(weights[i] - reference[i]) for _, i in channels["choices"]]
    assert gaps == sorted(gaps, reverse=True) and "avg" in channels["choices"][0][0]


def test_drill_down_runs_only_when_open(demo: gr.Blocks, result) -> None:
    channel_map = _handler(demo, "channel_map")
    assert isinstance(channel_map(result, "SE_5_2", 3, False), type(gr.skip()))
    assert channel_map(result, "SE_5_2", 3, True).size == result.photo.size


def test_interventions(demo: gr.Blocks, result) -> None:
    stage5 = _handler(demo, "intervene_stage5")(result, None, None)
    assert "SE_5_1, SE_5_2" in stage5 and "→" in stage5 and "| Measles |" in stage5
    # The baseline is the analysis's own prediction (the model's exact input is reused).
    top = result.analysis.predicted
    from senet.texts import percent
    assert f"| {top} | {percent(result.analysis.probabilities[top])} |" in stage5
    muted = _handler(demo, "intervene_channel")(result, "SE_4_2", 7)
    assert "SE_4_2 #7" in muted
    with pytest.raises(gr.Error, match="has channels 0 to 255"):
        _handler(demo, "intervene_channel")(result, "SE_4_2", 999)
    with pytest.raises(gr.Error, match="no SE block"):
        _handler(demo, "intervene_block")(result, "SE_9_9", None)


def test_faithfulness_button(demo: gr.Blocks, result) -> None:
    sentence = _handler(demo, "faithfulness")(result)
    assert sentence.startswith("Hiding the 20 % most highlighted area") and "Measles" in sentence
    assert model_view(result).size == result.analysis.input_rgb.shape[1::-1]


def test_checkpoint_without_profiles_says_how_to_add_them(tmp_path: Path) -> None:
    import numpy as np
    from app_server import LABELS, write_checkpoint
    from PIL import Image

    from senet import add_profiles, read_card

    write_checkpoint(tmp_path, "converted", "se_resnet18", size=64)
    catalog = Catalog(tmp_path, device="cpu")
    small = app.build_demo(catalog=catalog)
    *_, result = _handler(small, "analyze")(str(EXAMPLES[0][0]), "converted")
    takeaway, specificity, note, _ = _handler(small, "after_analysis")(result, "paper", "light")
    assert "python -m senet.add_profiles --checkpoint converted.safetensors" in takeaway
    assert specificity["visible"] is False and "add_profiles" in note
    chart, _ = _handler(small, "se_charts")(result, "SE_5_2", "all", "light")
    assert [t["type"] for t in json.loads(chart.plot)["data"]] == ["bar"]  # no class lines that are not there

    photos = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for label in LABELS[:2]:
        (photos / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (70, 70, 3), dtype=np.uint8)).save(photos / label / f"{i}.png")
    assert add_profiles.main(["--checkpoint", str(tmp_path / "converted.safetensors"), "--folder", str(photos)]) == 0
    profiles = read_card(tmp_path / "converted.safetensors").class_profiles
    assert set(profiles["classes"]) == set(LABELS[:2]) and profiles["classes"][LABELS[0]]["count"] == 2
    # Without Test-photo profiles the paper view falls back to these and says so under its title.
    fresh = app.build_demo(catalog=Catalog(tmp_path, device="cpu"))
    *_, result = _handler(fresh, "analyze")(str(EXAMPLES[0][0]), "converted")
    chart, _ = _handler(fresh, "se_charts")(result, "paper", "all", "light")
    spec = json.loads(chart.plot)
    note = spec["layout"]["title"]["subtitle"]["text"]
    assert "Train+Valid" in note and "--data" in note
    assert any(t.get("name", "").startswith("average ") for t in spec["data"])
