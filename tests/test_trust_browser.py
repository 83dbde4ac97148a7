"""A real browser sees the unfamiliar-photo warning for a document photo, the examples' truth next to the
model's answers, and the reliability diagram in the Model card tab (shipped checkpoints with statistics).

Screenshots go to ``$SENET_SCREENSHOT_DIR`` when set, else to the test's tmp dir.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from test_browser import CHROMIUM, ROOT, _screenshot_dir, browser  # noqa: F401  (the browser fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


def document_photo(path: Path) -> Path:
    """A white page of black text lines: nothing like a skin photo."""
    page = Image.new("RGB", (480, 640), "white")
    draw = ImageDraw.Draw(page)
    for row in range(24):
        draw.text((30, 30 + row * 24), "The quick brown fox jumps over the lazy dog. 0123456789" [: 30 + row % 25],
                  fill="black")
    page.save(path)
    return path


@pytest.fixture(scope="module")
def served_shipped():
    from app_server import served_app

    from senet.catalog import Catalog
    from senet.familiarity import statistics_for

    catalog = Catalog(ROOT / "checkpoints", device="cpu")
    if not catalog.default:
        pytest.skip("no shipped checkpoint")
    net, card, _ = catalog.load(catalog.default)
    if statistics_for(net) is None or "calibration" not in card.metrics:
        pytest.skip("the default checkpoint has no familiarity statistics (run python -m senet.trust)")
    with served_app(ROOT / "checkpoints") as (demo, url):
        yield demo, url


def test_foreign_photo_gets_the_warning_first_and_the_card_a_reliability_diagram(
        served_shipped, browser, tmp_path: Path) -> None:  # noqa: F811
    demo, url = served_shipped
    photo = document_photo(tmp_path / "document.png")
    page = browser.new_page(viewport={"width": 1366, "height": 1000}, locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    shots = _screenshot_dir(tmp_path)
    try:
        page.goto(url)
        page.wait_for_selector("#photo", timeout=60_000)
        page.set_input_files("#photo input[type=file]", str(photo))
        warning = page.locator("#unfamiliar")
        warning.wait_for(state="visible", timeout=120_000)
        assert "does not look like the skin photos" in warning.inner_text()
        # shown first: above the sentence and the prediction
        assert warning.bounding_box()["y"] < page.locator("#prediction").bounding_box()["y"]
        assert "unfamiliar-prediction" in (page.locator("#prediction").get_attribute("class") or "")
        # the test record is for skin photos: for this one the sentence says so instead of "right 7 in 10"
        sentence = page.locator("#sentence").inner_text()
        assert "does not apply here" in sentence and "where it was this sure" not in sentence
        page.locator("#examples").get_by_text(re.compile("^[✓✗] ")).first.wait_for(timeout=60_000)
        captions = page.locator("#examples").inner_text()
        marks = captions.count("✓") + captions.count("✗")
        assert marks == 12 and captions.count("model:") == captions.count("✗"), captions
        page.screenshot(path=str(shots / "trust_unfamiliar.png"), full_page=True)

        page.get_by_role("tab", name="Model card").click()
        page.locator("#reliability .js-plotly-plot").wait_for(state="visible", timeout=60_000)
        page.locator("#reliability").scroll_into_view_if_needed()
        assert "ECE" in page.locator("#reliability").inner_text()
        held_out = page.get_by_text("No warning does not prove that a photo is a skin photo", exact=False)
        assert held_out.first.is_visible()  # how often the warning worked on held-out pictures, in words
        page.locator("#reliability").screenshot(path=str(shots / "trust_reliability.png"))
        page.screenshot(path=str(shots / "trust_card.png"), full_page=True)
    finally:
        page.close()
    assert not errors, errors


def test_a_skin_example_gets_no_warning(served_shipped, browser, tmp_path: Path) -> None:  # noqa: F811
    from ui.components import EXAMPLES

    demo, url = served_shipped
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        page.goto(url)
        page.wait_for_selector("#photo", timeout=60_000)
        page.set_input_files("#photo input[type=file]", str(EXAMPLES[-1][0]))
        page.locator("#examples").get_by_text(re.compile("^[✓✗] ")).first.wait_for(timeout=120_000)
        assert not page.locator("#unfamiliar").is_visible()
        assert "test photos where it was this sure" in page.locator("#sentence").inner_text()
        assert "unfamiliar-prediction" not in (page.locator("#prediction").get_attribute("class") or "")
        page.screenshot(path=str(_screenshot_dir(tmp_path) / "trust_familiar.png"), full_page=True)
    finally:
        page.close()


def test_the_api_answer_carries_the_warning_and_no_test_record(served_shipped, tmp_path: Path) -> None:
    import json

    from gradio_client import Client, handle_file

    _, url = served_shipped
    client = Client(url, verbose=False)
    answer = json.loads(client.predict(handle_file(str(document_photo(tmp_path / "page.png"))), "",
                                       api_name="/classify"))
    assert answer["unfamiliar"] is True
    assert "does not apply here" in answer["sentence"] and "where it was this sure" not in answer["sentence"]


def test_compare_warns_first_when_the_models_find_the_photo_unfamiliar(served_shipped, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    _, url = served_shipped
    client = Client(url, verbose=False)
    summary, *_ = client.predict(handle_file(str(document_photo(tmp_path / "page.png"))), [], "gradcam", "light",
                                 api_name="/compare")
    assert summary.startswith("⚠️ **This photo does not look like the skin photos"), summary
    assert "models say" in summary or "disagree" in summary  # the agreement sentence still follows


def test_batch_marks_the_unfamiliar_photo(served_shipped, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    from ui.components import EXAMPLES

    _, url = served_shipped
    client = Client(url, verbose=False)
    page = document_photo(tmp_path / "page.png")
    skin = EXAMPLES[-1][0]
    _, table, gallery = client.predict([handle_file(str(page)), handle_file(str(skin))], "se_resnet18_msld_v2",
                                       api_name="/batch")
    by_file = {row[0]: row for row in table["data"]}
    assert by_file["page.png"][-1] == "yes" and by_file[Path(skin).name][-1] == "no"
    captions = [item["caption"] for item in gallery]
    assert any(c.startswith("⚠️ unfamiliar photo · page.png") for c in captions), captions
    assert any(c.startswith(Path(skin).name) for c in captions), captions
