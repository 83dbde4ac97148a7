"""A real browser drives the launched app as a visitor would: upload, pick options with the mouse, switch models,
cancel a slow method, a phone screen and a Chinese page.

Playwright cannot download its own browser here, so Debian's Chromium (apt ``chromium``) is launched through
``executable_path``; Chinese text needs a CJK font (apt ``fonts-noto-cjk``). Screenshots go to
``$SENET_SCREENSHOT_DIR`` when set, else to ``.screenshots/`` (git-ignored): look at them, a passing assertion is
not a page that looks right.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
RESULT_TIMEOUT = 120_000  # ms; a first analysis on 2 busy CPU cores can take a while

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    from app_server import served_app, write_checkpoint

    from senet.catalog import Catalog

    directory = ROOT / "checkpoints"
    if len(Catalog(directory, device="cpu").available()) < 2:  # two models are needed for the switch test
        directory = tmp_path_factory.mktemp("checkpoints")
        write_checkpoint(directory, "se_resnet18_small", "se_resnet18", size=64)
        write_checkpoint(directory, "se_densenet121_small", "se_densenet121", size=64)
    with served_app(directory, uploads=True) as (demo, url):
        yield demo, url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _screenshot_dir(_: Path | None = None) -> Path:
    """Where every browser test saves its screenshots: ``$SENET_SCREENSHOT_DIR`` or ``.screenshots/`` (git-ignored),
    so that a person can look at them (the argument is ignored; kept for callers that pass ``tmp_path``)."""
    target = Path(os.environ.get("SENET_SCREENSHOT_DIR") or ROOT / ".screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _shot(page, name: str) -> None:
    page.screenshot(path=str(_screenshot_dir() / f"{name}.png"), full_page=True)


def _open(browser, url: str, *, viewport: dict = LAPTOP, scheme: str = "light", locale: str = "en-US"):
    page = browser.new_page(viewport=viewport, color_scheme=scheme, locale=locale)
    page.goto(f"{url}?__theme={scheme}")
    page.wait_for_selector("#photo", timeout=60_000)
    page.locator("#model-note").get_by_text("SE").wait_for(timeout=60_000)  # the model note: the page is loaded
    return page


def _analysis_jobs(demo, page) -> list[int]:
    """A live list of the analysis jobs the page puts on the queue (one entry per /queue/join of analyze or
    reanalyze)."""
    wanted = {index for index, fn in demo.fns.items() if fn.api_name in ("analyze", "reanalyze")}
    jobs: list[int] = []

    def record(request) -> None:
        if request.method == "POST" and "/queue/join" in request.url:
            index = json.loads(request.post_data or "{}").get("fn_index")
            if index in wanted:
                jobs.append(index)
    page.on("request", record)
    return jobs


def _upload_and_wait(page, path: Path) -> None:
    page.set_input_files("#photo input[type=file]", str(path))
    page.locator("#overlay img").wait_for(state="visible", timeout=RESULT_TIMEOUT)
    _wait_idle(page)


def _wait_idle(page, timeout: float = RESULT_TIMEOUT / 1000) -> None:
    """Until no progress indicator is shown and the status line is settled."""
    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    while time.monotonic() < deadline:
        busy = page.locator(".progress-text, .eta-bar, .progress-level").count()
        if not busy:
            return
        time.sleep(0.3)
    raise AssertionError("the page kept showing progress")


def _pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the dropdown labelled ``label`` with the mouse (click, then click the option)."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def _open_options(page, title: str = "Explanation options") -> None:
    page.get_by_text(title, exact=True).click()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_upload_analyze_and_see_label_heatmap_caption_and_se_chart(served, browser, scheme: str) -> None:
    from ui.components import EXAMPLES

    demo, url = served
    page = _open(browser, url, scheme=scheme)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        assert page.get_by_text("Research demo, not a diagnosis").is_visible()
        _upload_and_wait(page, EXAMPLES[-1][0])
        labels = demo.catalog.entries[demo.catalog.default].card.labels
        prediction = page.locator("#prediction").inner_text()
        assert any(label in prediction for label in labels), prediction
        assert "%" in prediction
        assert "The model thinks this looks most like" in page.locator("#sentence").inner_text()
        status = page.locator("#status")
        assert re.search(r"Analysed in \d+\.\d+ s on the (CPU|GPU)", status.inner_text()), status.inner_text()
        assert not page.locator("#status details").evaluate("d => d.open")  # the timings only on demand
        caption = page.locator("#cam-caption")
        assert re.search(r"Where the model looked to decide \w+ · Grad-CAM · last stage", caption.inner_text())
        assert caption.locator(".cam-legend-bar").bounding_box()["width"] > 100  # the colour scale
        for selector in ("#overlay img", "#heatmap img"):
            image = page.locator(selector)
            assert image.evaluate("img => img.naturalWidth") > 0
            # Nothing is drawn over the image's top edge (the label badge used to be).
            box = image.bounding_box()
            covering = page.evaluate("([x, y]) => document.elementFromPoint(x, y)?.tagName",
                                     [box["x"] + 20, box["y"] + 8])
            assert covering == "IMG", covering
        page.get_by_role("tab", name="SE channel weights").click()
        chart = page.locator("#se-chart .js-plotly-plot")  # drawn by the browser (plotly.js bundled by Gradio)
        chart.wait_for(state="visible", timeout=30_000)
        assert chart.locator(".main-svg").first.bounding_box()["width"] > 300
        assert page.locator("#se-overview .js-plotly-plot").is_visible()
        if scheme == "dark":  # the page told the server its theme: charts are drawn for a dark background
            assert page.evaluate("() => document.body.classList.contains('dark')")
        page.get_by_role("tab", name="Grad-CAM").click()
        _shot(page, f"laptop_en_{scheme}")
        assert not errors, errors
    finally:
        page.close()


def test_a_mouse_pick_runs_one_analysis_and_repeats_come_from_the_cache(served, browser) -> None:
    from ui.components import EXAMPLES

    demo, url = served
    page = _open(browser, url)
    try:
        jobs = _analysis_jobs(demo, page)
        _upload_and_wait(page, EXAMPLES[0][0])
        assert len(jobs) == 1, jobs  # the upload
        _open_options(page)
        for option in ("Grad-CAM++", "Grad-CAM"):
            before = len(jobs)
            _pick(page, "CAM method", option)
            _wait_idle(page)
            time.sleep(1.0)  # a second job would be sent right after the first
            assert len(jobs) == before + 1, f"{option}: {len(jobs) - before} analysis jobs for one mouse pick"
        # Clicking into a dropdown and away again changes nothing: no job.
        before = len(jobs)
        page.get_by_label("CAM method", exact=True).click()
        page.locator("#sentence").click()
        time.sleep(1.0)
        assert len(jobs) == before
        # Grad-CAM on this photo was analysed before: answered from the cache.
        assert "from the cache" in page.locator("#status").text_content()
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
        _shot(page, f"own_model_{locale}")
        assert not errors, errors
    finally:
        page.close()


def test_switching_model_refreshes_every_view(served, browser) -> None:
    from ui.components import EXAMPLES

    demo, url = served
    catalog = demo.catalog
    second = catalog.available()[1]
    page = _open(browser, url)
    try:
        jobs = _analysis_jobs(demo, page)
        _upload_and_wait(page, EXAMPLES[1][0])
        page.get_by_role("tab", name="SE channel weights").click()
        page.get_by_text("Channel drill-down", exact=False).click()
        channel_map = page.locator("xpath=//*[normalize-space(text())='Channel feature map on the photo']"
                                   "/ancestor::div[contains(concat(' ', @class, ' '), ' block ')][1]//img")
        channel_map.wait_for(state="visible", timeout=RESULT_TIMEOUT)
        old_map = channel_map.get_attribute("src")
        before = len(jobs)
        _pick(page, "Model", catalog.entries[second].display_name)
        name = catalog.entries[second].display_name
        page.wait_for_function("name => document.querySelector('#status').textContent.includes(name)", arg=name,
                               timeout=RESULT_TIMEOUT)
        _wait_idle(page)
        time.sleep(1.0)
        assert len(jobs) == before + 1, jobs
        # The drill-down shows the new model's blocks and channels.
        import senet

        net = catalog.load(second)[0]
        blocks = [info.name for info in senet.se_blocks(net)]
        drill = page.get_by_label("Block", exact=True).input_value()
        assert drill in blocks, drill
        channels = {info.name: info.channels for info in senet.se_blocks(net)}[drill]
        channel = page.get_by_label("Channel (most different from the class average first)", exact=True).input_value()
        assert int(re.match(r"#(\d+)", channel).group(1)) < channels, channel
        # The drill-down is open: the new model's map of the shown channel is drawn at once, not the old one
        # (scrolled to: the image loads lazily, and SE-DenseNet's long paper view pushes it far down).
        page.locator("#se-channel-map").scroll_into_view_if_needed()
        page.wait_for_function("old => [...document.querySelectorAll('#se-channel-map img')]"
                               ".some(img => img.src && img.src !== old && img.naturalWidth > 0)", arg=old_map,
                               timeout=RESULT_TIMEOUT)
        shown = [src for src in channel_map.evaluate_all("imgs => imgs.map(img => img.src)") if src]
        assert old_map not in shown and len(shown) == 1, (old_map, shown)
        model = page.locator("#model input")
        assert model.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), model.input_value()
        _shot(page, "laptop_en_light_after_model_switch")
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
            page.get_by_role("option", name="ResNet-18 · TEST second").wait_for(timeout=30_000)
            _shot(page, "picker_rescan")
        finally:
            page.close()


def test_unavailable_model_clears_results_without_internals(tmp_path: Path, browser) -> None:
    from app_server import served_app, write_checkpoint

    from ui.components import EXAMPLES

    write_checkpoint(tmp_path, "good", "se_resnet18", size=64)
    (tmp_path / "broken.json").write_text((tmp_path / "good.json").read_text())
    (tmp_path / "broken.safetensors").write_bytes(b"not safetensors")
    with served_app(tmp_path) as (demo, url):
        page = _open(browser, url)
        try:
            _upload_and_wait(page, EXAMPLES[0][0])
            _pick(page, "Model", demo.catalog.entries["broken"].display_name)
            page.locator("#model-note").get_by_text("unavailable").wait_for(timeout=30_000)
            time.sleep(1.0)
            text = page.locator("body").inner_text()
            assert "deserializ" not in text and "safetensors" not in text, text
            assert page.locator("#overlay img").count() == 0  # the previous model's results are gone
            assert "%" not in page.locator("#prediction").inner_text()
        finally:
            page.close()


def test_a_slow_method_shows_what_runs_and_can_be_cancelled(served, browser) -> None:
    from ui.components import EXAMPLES

    demo, url = served
    page = _open(browser, url)
    try:
        _upload_and_wait(page, EXAMPLES[2][0])
        _open_options(page)
        _pick(page, "CAM method", "Score-CAM (slow)")
        progress = page.get_by_text(re.compile(r"Score-CAM: (starting|\d+ % of the masked passes)"))
        progress.first.wait_for(timeout=60_000)
        assert page.locator(".progress-text, .eta-bar").count() <= 2  # one indicator, not one per output
        page.locator("#cancel").click()
        page.locator("#status").get_by_text("Cancelled").wait_for(timeout=10_000)
        # The model is free again at once: a fast method answers quickly.
        started = time.monotonic()
        _pick(page, "CAM method", "Grad-CAM")
        page.locator("#cam-caption").get_by_text("Grad-CAM ·").wait_for(timeout=60_000)
        assert time.monotonic() - started < 30
    finally:
        page.close()


def test_examples_all_fit_on_a_laptop_screen(served, browser) -> None:
    demo, url = served
    page = _open(browser, url)
    try:
        gallery = page.locator("#examples")
        gallery.scroll_into_view_if_needed()
        thumbs = gallery.locator("img")
        assert thumbs.count() == 12
        page.evaluate("() => document.querySelector('#examples').scrollIntoView({block: 'center'})")
        boxes = [thumbs.nth(i).bounding_box() for i in range(12)]
        assert all(box and box["y"] >= 0 and box["y"] + box["height"] <= LAPTOP["height"] for box in boxes), boxes
        assert gallery.get_by_role("button", name=re.compile("Download", re.I)).count() == 0
        title = page.locator("div.block.examples-title").bounding_box()
        assert title["y"] + title["height"] <= min(box["y"] for box in boxes) + 1  # the title is above, not over
    finally:
        page.close()


@pytest.mark.parametrize(("scheme", "locale"), [("light", "en-US"), ("dark", "zh-CN")])
def test_phone_scrolls_to_the_prediction(served, browser, scheme: str, locale: str) -> None:
    from ui.components import EXAMPLES

    demo, url = served
    page = _open(browser, url, viewport=PHONE, scheme=scheme, locale=locale)
    try:
        thumbs = page.locator("#examples img")
        for index in range(thumbs.count()):  # every example fits the phone's width (no sideways scroll box)
            box = thumbs.nth(index).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (index, box)
        page.locator("#examples img").nth(3).click()
        page.locator("#overlay img").wait_for(state="visible", timeout=RESULT_TIMEOUT)
        _wait_idle(page)
        time.sleep(1.0)  # smooth scrolling
        box = page.locator("#sentence").bounding_box()
        assert -2 <= box["y"] < PHONE["height"] / 2, box
        model = page.locator("#model input")
        assert model.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), model.input_value()
        language = "zh" if locale.startswith("zh") else "en"
        _shot(page, f"phone_{language}_{scheme}")
        assert EXAMPLES
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chinese_page_has_no_english_class_names(served, browser, scheme: str) -> None:
    from senet import texts
    from ui.components import EXAMPLES

    demo, url = served
    page = _open(browser, url, scheme=scheme, locale="zh-CN")
    try:
        page.get_by_text("研究演示，不是诊断").wait_for(timeout=10_000)
        assert page.get_by_role("tab", name="模型卡").is_visible()
        _upload_and_wait(page, EXAMPLES[0][0])
        labels = demo.catalog.entries[demo.catalog.default].card.labels
        shown = " ".join(page.locator(selector).inner_text()
                         for selector in ("#prediction", "#sentence", "#cam-caption", "#examples", "#status"))
        english = [label for label in labels if re.search(rf"\b{label}\b", shown)]
        assert not english, (english, shown)
        assert any(texts.LABELS_ZH[label] in shown for label in labels)
        assert "分析用时" in shown and "准确率" in page.locator("#model input").input_value()
        _open_options(page, "解释选项")
        page.get_by_label("CAM 层", exact=True).click()
        options = page.get_by_role("option").all_inner_texts()
        assert any("阶段" in option for option in options), options
        page.keyboard.press("Escape")
        time.sleep(0.6)  # the list fades out
        _shot(page, f"laptop_zh_{scheme}")
    finally:
        page.close()


def test_empty_model_name_means_the_default_model_through_the_api(served) -> None:
    from gradio_client import Client, handle_file

    from ui.components import EXAMPLES

    demo, url = served
    client = Client(url, verbose=False)
    label, *_, status = client.predict(handle_file(str(EXAMPLES[0][0])), "", api_name="/analyze")
    assert label["label"] in demo.catalog.entries[demo.catalog.default].card.labels
    assert demo.catalog.entries[demo.catalog.default].display_name in status


@pytest.mark.parametrize(("viewport", "locale"), [(LAPTOP, "en-US"), (PHONE, "zh-CN")])
def test_example_captions_sit_under_the_photos(served, browser, viewport: dict, locale: str) -> None:
    from ui.components import EXAMPLES

    demo, url = served
    page = _open(browser, url, viewport=viewport, locale=locale)
    try:
        _upload_and_wait(page, EXAMPLES[4][0])
        gallery = page.locator("#examples")
        gallery.get_by_text(re.compile("^[✓✗]")).first.wait_for(timeout=RESULT_TIMEOUT)  # the answers are in
        page.evaluate("() => document.querySelector('#examples').scrollIntoView({block: 'center'})")
        time.sleep(0.5)
        items = gallery.locator("button.thumbnail-item")
        assert items.count() == 12
        for index in range(12):
            photo = items.nth(index).locator("img").bounding_box()
            caption = items.nth(index).locator(".caption-label")
            box = caption.bounding_box()
            assert caption.inner_text()[0] in "✓✗", caption.inner_text()
            assert box["y"] >= photo["y"] + photo["height"] - 1, (index, photo, box)  # under the photo, not over
            assert photo["height"] >= 0.95 * photo["width"]  # the whole square photo shows
            assert photo["x"] >= 0 and photo["x"] + photo["width"] <= viewport["width"]
            if viewport is LAPTOP:  # all twelve (with captions) on one laptop screen
                assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (index, box)
        language = "zh" if locale.startswith("zh") else "en"
        if language == "zh":
            assert not re.search(r"\b(Chickenpox|Cowpox|HFMD|Healthy|Measles|Monkeypox|model)\b",
                                 gallery.inner_text()), gallery.inner_text()
        gallery.screenshot(path=str(_screenshot_dir() / f"examples_after_run_{language}_{viewport['width']}.png"))
    finally:
        page.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_every_model_name_fits_the_phone_picker(served, browser, locale: str) -> None:
    demo, url = served
    page = _open(browser, url, viewport=PHONE, locale=locale)
    try:
        picker = page.locator("#model input")
        for index in range(len(demo.catalog.available())):
            picker.click()
            page.get_by_role("option").nth(index).click()
            page.locator("h1").first.click()  # focus away: the name is shown as a visitor sees it
            time.sleep(1.0)
            name = picker.input_value()
            assert ("准确率" in name) == (locale == "zh-CN"), name  # the picker speaks the page's language
            assert picker.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), name
            page.locator("#model").screenshot(path=str(_screenshot_dir() / f"phone_picker_{locale}_{index}.png"))
        _wait_idle(page)
    finally:
        page.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_gradio_upload_refusals_follow_the_page_language(browser, tmp_path: Path, locale: str) -> None:
    from app_server import served_app, write_checkpoint

    write_checkpoint(tmp_path, "small", "se_resnet18", size=64)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + bytes(21 * 2**20))  # over the 20 MB upload limit: refused by Gradio's page
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")  # not an image: refused by Gradio's upload widget
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")  # passes the widget, refused by senet.image_io on the server
    chinese = locale == "zh-CN"
    expected = {
        big: ("文件超过允许的最大大小 20.0 M", '"big.jpg"') if chinese else ("exceed the maximum allowed size",),
        notes: ("文件类型不受支持：notes.txt", "只接受 image/*") if chinese else ("Invalid file type: notes.txt",),
        broken: ("这个文件不是可以读取的图片",) if chinese else ("This file is not an image that can be read",),
    }
    with served_app(tmp_path) as (_, url):
        page = browser.new_page(viewport=LAPTOP, locale=locale)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(url)
            page.wait_for_selector("#photo", timeout=60_000)
            for path, fragments in expected.items():
                page.set_input_files("#photo input[type=file]", str(path))
                toast = page.locator('[data-testid="toast-body"]').last
                toast.wait_for(timeout=30_000)
                page.wait_for_function("t => document.querySelector('[data-testid=\"toast-body\"]')?.innerText"
                                       ".includes(t)", arg=fragments[0], timeout=10_000)
                text = toast.inner_text()
                assert all(fragment in text for fragment in fragments), text
                if chinese:
                    assert "错误" in text and not re.search(r"[Ee]rror|exceed|Invalid|allowed", text), text
                time.sleep(0.6)  # the toast slides in
                page.screenshot(path=str(_screenshot_dir() / f"upload_refused_{locale}_{path.stem}.png"))
                page.locator('[data-testid="toast-close"]').first.click()
                toast.wait_for(state="detached", timeout=10_000)
            assert not errors, errors  # the page script that translates the toasts fails nowhere
        finally:
            page.close()


def test_own_model_refusal_is_chinese_on_a_chinese_page(served, browser) -> None:
    """A refusal the app raises (here: "Add" with no weights file) reaches a Chinese page in Chinese, toast title
    included; only the file types stay Latin."""
    demo, url = served
    if not demo.uploads:
        pytest.skip("uploads are switched off in this environment")
    page = browser.new_page(viewport=LAPTOP, locale="zh-CN")
    try:
        page.goto(url)
        page.wait_for_selector("#own-model", timeout=60_000)
        page.locator("#own-model button").first.click()  # open the accordion
        page.locator("#own-add").click()
        toast = page.locator('[data-testid="toast-body"]').last
        toast.wait_for(timeout=30_000)
        page.wait_for_function("() => document.querySelector('[data-testid=\"toast-body\"]')?.innerText"
                               ".includes('请先选择')", timeout=10_000)
        text = toast.inner_text()
        assert "请先选择一个 .pth、.pt 或 .safetensors 文件。" in text and "错误" in text, text
        assert not re.search(r"[A-Za-z]{2,}", re.sub(r"\.(pth|pt|safetensors)", "", text)), text
        time.sleep(0.6)  # the toast slides in
        # The refusal's badge is on the status line, not over the model picker (it hid the model list there).
        on_top = page.evaluate("""() => { const i = document.querySelector('#model input');
            i.scrollIntoView({block: 'center'});
            const r = i.getBoundingClientRect();
            const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
            return top === i || i.contains(top) ? 'input' : top.outerHTML.slice(0, 200); }""")
        assert on_top == "input", on_top
        _shot(page, "own_model_refused_zh")
    finally:
        page.close()
