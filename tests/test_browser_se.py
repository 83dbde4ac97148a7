"""A real browser on the SE tab: charts drawn by plotly.js (no CDN), hover, takeaway, specificity,
interventions and the faithfulness sentence, in English and Chinese, light and dark, laptop and phone.

Screenshots go to ``$SENET_SCREENSHOT_DIR`` when set (e.g. ``.screenshots/``, git-ignored), else to the test's
tmp dir. Needs Debian's chromium and the shipped checkpoints.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from test_browser import CHROMIUM, browser  # noqa: E402, F401  (the shared Chromium fixture)
from test_browser import _screenshot_dir as _shots  # noqa: E402

from senet.catalog import Catalog  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
    pytest.mark.skipif(not Catalog(ROOT / "checkpoints", device="cpu").available(),
                       reason="needs the shipped checkpoints"),
]
VIEWPORTS = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
WORDS = {
    "en": {"tab": "SE channel weights", "takeaway": "this photo's channel weights are closest to the average",
           "inspect": "Look inside a block", "stage5": "Bypass every SE block of stage 5", "before": "before",
           "faith": "How faithful is this heatmap?", "hiding": "Hiding the 20 % most highlighted area",
           "channel": "channel"},
    "zh": {"tab": "SE 通道权重", "takeaway": "这张照片的通道权重最接近", "inspect": "深入一个模块",
           "stage5": "跳过第 5 阶段的所有 SE 模块", "before": "之前", "faith": "这张热力图可信吗？",
           "hiding": "遮住热图最突出的 20 % 区域后", "channel": "通道"},
}


@pytest.fixture(scope="module")
def served():
    from app_server import served_app

    with served_app(ROOT / "checkpoints") as (demo, url):
        yield demo, url


@pytest.mark.parametrize("device", ["laptop", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("language", ["en", "zh"])
def test_se_tab(served, browser, language: str, scheme: str, device: str, tmp_path: Path) -> None:  # noqa: F811
    from ui.components import EXAMPLES

    demo, url = served
    words = WORDS[language]
    example = next(path for path, label in EXAMPLES if label == "Monkeypox")
    context = browser.new_context(viewport=VIEWPORTS[device], color_scheme=scheme,
                                  locale="zh-CN" if language == "zh" else "en-US")
    page = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: urlparse(request.url).hostname not in ("127.0.0.1", "localhost", None)
            and not request.url.startswith("data:") and outside.append(request.url))
    name = f"se_{language}_{scheme}_{device}"
    try:
        page.goto(f"{url}?__theme={scheme}")
        page.wait_for_selector("#photo", timeout=60_000)
        page.set_input_files("#photo input[type=file]", str(example))
        page.locator("#overlay img").wait_for(state="visible", timeout=90_000)

        if device == "laptop" and scheme == "light":  # the faithfulness sentence under the heatmap
            page.locator("#faith-button").click()
            page.locator("#faith-sentence").get_by_text(words["hiding"]).wait_for(timeout=60_000)
            page.locator("#faith-sentence").scroll_into_view_if_needed()
            page.screenshot(path=str(_shots(tmp_path) / f"{name}_faithfulness.png"))

        page.get_by_role("tab", name=words["tab"]).click()
        chart = page.locator("#se-chart .js-plotly-plot")
        chart.wait_for(state="visible", timeout=30_000)
        page.locator("#se-takeaway").get_by_text(words["takeaway"]).wait_for(timeout=30_000)
        page.locator("#se-specificity .js-plotly-plot").wait_for(state="visible", timeout=30_000)
        page.locator("#se-overview .js-plotly-plot").wait_for(state="visible", timeout=30_000)
        assert chart.locator(".main-svg").first.bounding_box()["width"] > 300
        picker = page.locator("#se-block input")  # the block picker's name is not cut off, on a phone too
        assert picker.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), picker.input_value()
        assert page.locator("#se-overview .heatmaplayer image, #se-overview .hm image").count() >= 1

        # Hover over the paper view's last panel: the box names the channel and this photo's weight.
        chart.scroll_into_view_if_needed()
        box = chart.locator(".nsewdrag").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=5)
        hover = chart.locator(".hoverlayer")
        try:
            hover.get_by_text(words["channel"]).first.wait_for(timeout=10_000)
        except Exception:
            page.screenshot(path=str(_shots(tmp_path) / f"{name}_hover_failed.png"))
            raise

        page.locator("#se-inspect").get_by_text(words["inspect"]).click()
        page.locator("#se-bypass-stage5").click()
        result = page.locator("#se-intervention")
        result.get_by_text("SE_5_1, SE_5_2").wait_for(timeout=60_000)
        assert words["before"] in result.inner_text() and "→" in result.inner_text()
        page.locator("#se-channel-map img").wait_for(state="visible", timeout=60_000)  # drill-down ran once open

        if scheme == "dark":
            assert page.evaluate("() => document.body.classList.contains('dark')")
            colour = chart.locator(".gtitle").first.evaluate("node => getComputedStyle(node).fill")
            assert colour == "rgb(229, 231, 235)", colour  # the dark theme's text colour
        page.get_by_role("tab", name=words["tab"]).scroll_into_view_if_needed()
        page.screenshot(path=str(_shots(tmp_path) / f"{name}.png"), full_page=True)
        assert not errors, errors
        assert not outside, f"requests left the machine: {outside[:5]}"
    finally:
        context.close()
