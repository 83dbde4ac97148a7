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
    with served_app(directory) as (demo, url):
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
        chart = page.locator("#se-chart img")
        chart.wait_for(state="visible", timeout=30_000)
        assert chart.evaluate("img => img.naturalWidth") > 300
        assert page.locator("#se-overview img").is_visible()
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
