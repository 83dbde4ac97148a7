"""A real browser drives the launched app: upload an example, run the analysis, see label, heatmap and SE chart.

Playwright cannot download its own browser here, so Debian's Chromium (apt ``chromium``) is launched through
``executable_path``. Screenshots go to ``$SENET_SCREENSHOT_DIR`` when set, else to the test's tmp dir.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    from app_server import served_app, write_checkpoint

    from senet.catalog import Catalog

    directory = ROOT / "checkpoints"
    if not Catalog(directory, device="cpu").available():  # no shipped model yet: a small random one
        directory = tmp_path_factory.mktemp("checkpoints")
        write_checkpoint(directory, "se_resnet18_small", "se_resnet18", size=64)
    with served_app(directory, uploads=True) as (demo, url):
        yield demo, url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _screenshot_dir(tmp_path: Path) -> Path:
    target = Path(os.environ.get("SENET_SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_upload_analyze_and_see_label_heatmap_and_se_chart(served, browser, scheme: str, tmp_path: Path) -> None:
    from ui.components import EXAMPLES

    demo, url = served
    example, _ = EXAMPLES[-1]
    page = browser.new_page(viewport={"width": 1366, "height": 900}, color_scheme=scheme, locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{url}?__theme={scheme}")
        page.wait_for_selector("#photo", timeout=60_000)
        assert page.get_by_text("Research demo, not a diagnosis").is_visible()
        page.set_input_files("#photo input[type=file]", str(example))
        page.locator("#overlay img").wait_for(state="visible", timeout=90_000)
        page.locator("#heatmap img").wait_for(state="visible", timeout=10_000)

        labels = demo.catalog.entries[demo.catalog.default].card.labels
        prediction = page.locator("#prediction").inner_text()
        assert any(label in prediction for label in labels), prediction
        assert "%" in prediction
        assert "The model thinks this looks most like" in page.locator("#sentence").inner_text()
        assert " ms" in page.locator("#status").inner_text()
        for selector in ("#overlay img", "#heatmap img"):
            assert page.locator(selector).evaluate("img => img.naturalWidth") > 0

        page.get_by_role("tab", name="SE channel weights").click()
        chart = page.locator("#se-chart .js-plotly-plot")  # drawn by the browser (plotly.js bundled by Gradio)
        chart.wait_for(state="visible", timeout=30_000)
        assert chart.locator(".main-svg").first.bounding_box()["width"] > 300
        assert page.locator("#se-overview .js-plotly-plot").is_visible()
        if scheme == "dark":  # the page told the server its theme: charts are drawn for a dark background
            assert page.evaluate("() => document.body.classList.contains('dark')")
        page.screenshot(path=str(_screenshot_dir(tmp_path) / f"app_{scheme}.png"), full_page=True)
        assert not errors, errors
    finally:
        page.close()


def test_chinese_browser_gets_chinese_ui(served, browser) -> None:
    demo, url = served
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        page.goto(url)
        page.wait_for_selector("#photo", timeout=60_000)
        page.get_by_text("研究演示，不是诊断").wait_for(timeout=10_000)
        assert page.get_by_role("tab", name="模型卡").is_visible()
    finally:
        page.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_own_model_panel_adds_a_model_to_the_picker(served, browser, locale: str, tmp_path: Path) -> None:
    import seed_models
    import torch

    demo, url = served
    if not demo.uploads:
        pytest.skip("uploads are switched off in this environment")
    weights = tmp_path / "my_pets.pth"
    torch.save(seed_models.randomize(seed_models.seed000_se_resnet(18)).state_dict(), weights)
    page = browser.new_page(viewport={"width": 1366, "height": 1100}, locale=locale)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(url)
        page.wait_for_selector("#own-model", timeout=60_000)
        page.locator("#own-model button").first.click()  # open the accordion
        page.set_input_files("#own-file input[type=file]", str(weights))
        page.locator("#own-labels textarea").fill("cat\ndog")
        page.locator("#own-title textarea, #own-title input").first.fill("My pets")
        page.locator("#own-add").click()
        page.get_by_text("SE-ResNet-18, SE reduction 16, 2 classes").wait_for(timeout=60_000)
        # The picker now shows the new model, and the card tab's status names it.
        page.wait_for_function("() => [...document.querySelectorAll('input')].some(i => i.value.includes('My pets'))",
                               timeout=30_000)
        page.screenshot(path=str(_screenshot_dir(tmp_path) / f"own_model_{locale}.png"), full_page=True)
        assert not errors, errors
    finally:
        page.close()


def test_a_checkpoint_added_while_the_page_is_open_appears_in_the_picker(browser, tmp_path: Path) -> None:
    from app_server import served_app, write_checkpoint

    write_checkpoint(tmp_path, "first", "se_resnet18", size=64)
    with served_app(tmp_path) as (_, url):
        page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US")
        try:
            page.goto(url)
            page.wait_for_selector("#photo", timeout=60_000)
            write_checkpoint(tmp_path, "second", "resnet18", size=64, seed=1)  # after the page was built
            page.get_by_label("Model").first.click()  # focus opens the list and rescans checkpoints/
            page.get_by_role("option", name="ResNet-18 · TEST second · 6 classes").wait_for(timeout=30_000)
            page.screenshot(path=str(_screenshot_dir(tmp_path) / "picker_rescan.png"))
        finally:
            page.close()
