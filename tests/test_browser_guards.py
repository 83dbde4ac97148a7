"""The guards let the page's own steps through: a real browser loads the page (model card filled by the page-load
step), clicks an example (``pick_example``, then ``analyze_if_image`` on the photo's change), picks another model
(``switch_model``, then ``analyze_if_image``) and opens the channel drill-down (``drill_pickers``, the channel
map), and nothing is refused."""

from __future__ import annotations

import pytest
from test_browser import CHROMIUM, _screenshot_dir, browser  # noqa: F401  (the shared Chromium fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from app_server import served_app, torch_threads, write_checkpoint

    directory = tmp_path_factory.mktemp("checkpoints")
    write_checkpoint(directory, "alpha", "se_resnet18", seed=1, size=64)
    write_checkpoint(directory, "beta", "se_resnet18", seed=2, size=64)
    with torch_threads(1), served_app(directory) as (demo, url):
        yield demo, url


def test_the_pages_own_steps_are_not_refused(served, browser):  # noqa: F811
    demo, url = served
    refused: list[str] = []
    original = demo.guard.internal_refusal

    def spy(fn, body, session):
        answer = original(fn, body, session)
        if answer:
            refused.append(fn.name)
        return answer

    demo.guard.internal_refusal = spy
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector("#photo", timeout=60_000)
        page.get_by_role("tab", name="Model card").click()
        page.get_by_text("TEST alpha").first.wait_for(timeout=60_000)  # the card, filled by the page-load step
        page.get_by_role("tab", name="Explore").click()
        page.locator("#examples img").first.click()
        page.locator("#overlay img").wait_for(state="visible", timeout=90_000)
        name = demo.catalog.entries["beta"].display_name
        page.locator("input[aria-label='Model']").first.click()
        page.get_by_role("option", name=name, exact=False).first.click()
        # the switch clears the views, then the page's own re-analysis fills them in with the new model
        page.wait_for_function("name => document.querySelector('#status').textContent.includes(name)", arg=name,
                               timeout=90_000)
        page.get_by_role("tab", name="SE channel weights").click()
        page.get_by_text("Channel drill-down", exact=False).click()  # the drill-down's pickers and channel map
        page.locator("xpath=//*[normalize-space(text())='Channel feature map on the photo']"
                     "/ancestor::div[contains(concat(' ', @class, ' '), ' block ')][1]//img").wait_for(
            state="visible", timeout=90_000)
        page.screenshot(path=str(_screenshot_dir() / "guards_page_steps.png"), full_page=True)
    finally:
        context.close()
        demo.guard.internal_refusal = original
    assert refused == [], refused
