"""A real browser on the Compare and Batch tabs and the report button (English and Chinese), with screenshots in
``$SENET_SCREENSHOT_DIR`` (else the test's tmp dir)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from test_browser import CHROMIUM, browser  # noqa: F401  (the shared Chromium fixture)
from test_browser import _screenshot_dir as _shots

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    from app_server import served_app, torch_threads, write_checkpoint

    directory = tmp_path_factory.mktemp("checkpoints")
    write_checkpoint(directory, "alpha", "se_resnet18", seed=1)
    write_checkpoint(directory, "gamma", "se_resnet18", seed=3)
    with torch_threads(1), served_app(directory) as (demo, url):
        yield demo, url


@pytest.mark.parametrize(("locale", "scheme"), [("en-US", "light"), ("zh-CN", "dark"), ("en-US", "dark"),
                                               ("zh-CN", "light")])
def test_compare_tab_shows_models_side_by_side(served, browser, locale: str, scheme: str,  # noqa: F811
                                               tmp_path: Path) -> None:
    _, url = served
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale=locale, color_scheme=scheme)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{url}?__theme={scheme}")
        page.wait_for_selector("#photo", timeout=60_000)
        page.get_by_role("tab", name="Compare models" if locale == "en-US" else "比较模型").click()
        page.set_input_files("#compare-photo input[type=file]", str(ROOT / "examples" / "Measles_1.jpg"))
        page.locator("#compare-run").click()
        page.locator("#compare-heatmaps img").nth(1).wait_for(state="visible", timeout=90_000)
        summary = page.locator("#compare-summary").inner_text()
        assert ("models" in summary) if locale == "en-US" else ("模型" in summary), summary
        assert page.locator("#compare-table").inner_text().count("%") == 0  # probabilities as numbers
        # The SE chart is drawn by the browser (plotly), one column per model, in the page's language and theme.
        chart = page.locator("#compare-se .js-plotly-plot")
        chart.wait_for(state="visible", timeout=30_000)
        assert chart.locator(".barlayer").count() >= 2 * 4  # two models x four stages
        title = chart.locator(".gtitle").first
        assert title.text_content() == ("SE channel weights, last block of each stage" if locale == "en-US"
                                      else "SE 通道权重：每个阶段的最后一个模块")
        text_colour = "rgb(229, 231, 235)" if scheme == "dark" else "rgb(31, 41, 55)"
        assert title.evaluate("node => getComputedStyle(node).fill") == text_colour
        chart.scroll_into_view_if_needed()
        box = chart.locator(".nsewdrag").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
        page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5, steps=5)
        hover = chart.locator(".hoverlayer")
        hover.get_by_text("channel" if locale == "en-US" else "通道").first.wait_for(timeout=10_000)
        page.screenshot(path=str(_shots(tmp_path) / f"compare_{locale}_{scheme}.png"), full_page=True)
        assert not errors, errors
    finally:
        page.close()


def test_batch_tab_table_gallery_and_csv(served, browser, tmp_path: Path) -> None:  # noqa: F811
    _, url = served
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name in ("Monkeypox_1.jpg", "HFMD_1.jpg", "README.md"):
            handle.write(ROOT / "examples" / name, f"folder/{name}")
        handle.writestr("../escape.jpg", (ROOT / "examples" / "Cowpox_1.jpg").read_bytes())
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        page.goto(url)
        page.get_by_role("tab", name="Batch").click()
        page.set_input_files("#batch-files input[type=file]", [str(archive), str(ROOT / "examples" / "Healthy_1.jpg")])
        page.locator("#batch-run").click()
        page.locator("#batch-csv a").first.wait_for(state="visible", timeout=90_000)
        table = page.locator("#batch-table").inner_text()
        for fragment in ("photos.zip/folder/Monkeypox_1.jpg", "Healthy_1.jpg", "not an image", "outside"):
            assert fragment in table, fragment
        page.screenshot(path=str(_shots(tmp_path) / "batch_en.png"), full_page=True)
    finally:
        page.close()


def test_report_button_gives_a_pdf(served, browser, tmp_path: Path) -> None:  # noqa: F811
    _, url = served
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        page.goto(url)
        page.wait_for_selector("#photo", timeout=60_000)
        assert not page.locator("#report-file").is_visible()
        page.set_input_files("#photo input[type=file]", str(ROOT / "examples" / "HFMD_2.jpg"))
        page.locator("#report-button").click()
        link = page.locator("#report-file a").first
        link.wait_for(state="visible", timeout=120_000)
        text = page.locator("#report-file").inner_text()
        assert "senet_report_" in text and ".pdf" in text and "KB" in text, text
        page.screenshot(path=str(_shots(tmp_path) / "report_button.png"))
    finally:
        page.close()
