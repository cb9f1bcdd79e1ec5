"""The app in a real browser: started as ``python app.py`` on a free local port, driven by headless Chromium.

Covers the issue's flows — two prompts on an uploaded photo, Review by keyboard and a ground truth fixed with the
brush, exported and re-scored, an evaluation of 3 images, a broken upload — and writes 1280×800 screenshots of each
tab to ``docs/``. Layout facts are asserted at that size: tables without a clipped column, one progress bar per
run, sliders bounded by the split. The app runs the bundled model when it is installed (so the screenshots show real
predictions), else the tiny random checkpoint; Review and Evaluate use the real cracks/valid split when the data is
present, else a tiny generated split (the brush fix always uses the tiny split).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from drywall_qa.core.backends import BUNDLED_DIR
from drywall_qa.testing.app_server import AppServer, serve_app
from tests.helpers import make_split

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason="Chromium not found at /usr/bin/chromium: apt-get install -y chromium")

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
START_TIMEOUT_S = 120
STEP_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> list[Path]:
    """Data roots: the real cracks folder first when present (its valid split is then the default), and a tiny
    generated cracks/valid split."""
    tiny = tmp_path_factory.mktemp("browser_data")
    make_split(tiny / "cracks" / "valid", n=4, size=96)
    try:
        return [request.getfixturevalue("data_root") / "cracks", tiny]
    except pytest.skip.Exception:
        return [tiny]


@pytest.fixture(scope="module")
def app(roots: list[Path], tiny_lite_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    model = BUNDLED_DIR if (BUNDLED_DIR / "config.json").is_file() else tiny_lite_dir
    with serve_app(model, tmp_path_factory.mktemp("browser_out"), roots, timeout_s=START_TIMEOUT_S) as served:
        yield served


@pytest.fixture(scope="module")
def server(app: AppServer) -> str:
    return app.url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server: str) -> Iterator:
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(STEP_TIMEOUT_MS)
    sync_api.expect.set_options(timeout=STEP_TIMEOUT_MS)
    page.goto(server)
    page.wait_for_selector("#inspect-run")
    yield page
    page.close()


def screenshot(page, name: str, top: str) -> None:
    """A 1280×800 screenshot of the viewport with ``top`` scrolled to the top, written to docs/."""
    page.evaluate("selector => document.querySelector(selector).scrollIntoView({block: 'start'})", top)
    page.wait_for_timeout(400)
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / name))


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def overflowing(page, selector: str) -> list[str]:
    """The elements inside ``selector`` whose content is wider than their box (a cut-off column, a clipped name)."""
    return page.evaluate("""selector => [...document.querySelectorAll(`${selector} *`)]
        .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
        .map(e => `${e.tagName}.${e.className}: ${e.scrollWidth} > ${e.clientWidth}`)""", selector)


def visible_progress(page, tab: str) -> list[str]:
    """The ids of the outputs under the progress texts shown in ``tab`` (its elem_id) right now."""
    return page.evaluate("""tab => [...document.querySelectorAll(`#${tab} .progress-text`)]
        .filter(e => e.getBoundingClientRect().height > 0).map(e => (e.closest('[id]') || {}).id)""", tab)


def test_start_up_prints_the_address_without_a_share_hint(app: AppServer) -> None:
    # the server answers a moment before the line is printed: wait for it, boundedly
    for _ in range(50):
        log = app.log_tail(20_000)
        if f"drywall-qa app on {app.url}" in log:
            break
        time.sleep(0.2)
    assert f"drywall-qa app on {app.url}" in log and "share=True" not in log


def test_segment_button_is_above_the_fold(page) -> None:
    button = page.locator("#inspect-run").bounding_box()
    assert button["y"] + button["height"] <= VIEWPORT["height"]


def test_inspect_two_prompts_shows_overlay_and_coverage(page) -> None:
    page.set_input_files("#inspect-image input[type=file]", str(REPO / "examples" / "seam_and_crack.png"))
    page.wait_for_selector("#inspect-image img")
    page.click("#inspect-run")
    items = page.locator("#inspect-legend li")
    items.nth(1).wait_for()
    texts = items.all_inner_texts()
    assert [t.splitlines()[0].strip() for t in texts] == ["segment crack", "segment taping area"]
    assert all("%" in t or "not found" in t for t in texts)
    sync_api.expect(page.locator("#inspect-overlay img")).to_be_visible()
    assert " ms" in page.inner_text("#inspect-status")
    files = page.inner_text("#inspect-files").replace("\n.", ".")      # the list shows stem and extension apart
    assert "seam_and_crack__segment_crack.png" in files and "seam_and_crack__masks.json" in files
    screenshot(page, "inspect.png", "body")


def test_a_12_mp_photo_shows_one_progress_bar_its_whole_status_and_distinct_downloads(page, tmp_path: Path) -> None:
    """A Roboflow-named 4000×3000 photo: the progress shows once (on the overlay) while the windows run; the status
    is read in full above the legend; the downloads differ where the list shows them."""
    photo = tmp_path / "1040-dat_png_jpg.rf.69f0a1b2c3d4e5f60718293a4b5c6d7e.jpg"
    Image.open(REPO / "examples" / "seam_and_crack.png").convert("RGB").resize((4000, 3000)).save(photo, quality=90)
    page.set_input_files("#inspect-image input[type=file]", str(photo))
    page.wait_for_selector("#inspect-image img")
    page.click("#inspect-run")
    page.wait_for_function("() => document.querySelector('#tab-inspect .progress-text') !== null")
    assert visible_progress(page, "tab-inspect") == ["inspect-overlay"]
    page.locator("#inspect-status").get_by_text(" ms").wait_for()
    status = page.evaluate("""() => { const s = document.querySelector('#inspect-status');
        return [s.scrollHeight - s.clientHeight, s.getBoundingClientRect().bottom,
                document.querySelector('#inspect-legend').getBoundingClientRect().top]; }""")
    assert status[0] <= 1 and status[1] <= status[2]
    files = page.inner_text("#inspect-files").replace("\n.", ".")
    assert "1040-dat_png_jpg__segment_crack.png" in files and "1040-dat_png_jpg__segment_taping_area.png" in files
    assert overflowing(page, "#inspect-files") == []


def test_inspect_broken_upload_shows_a_message(page) -> None:
    page.set_input_files("#inspect-image input[type=file]",
                         files=[{"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"not an image at all"}])
    page.wait_for_timeout(1000)
    page.click("#inspect-run")
    page.locator("#inspect-status").get_by_text("not a readable image").wait_for()
    assert "broken.jpg" in page.inner_text("#inspect-status")


def test_visual_prompt_box_says_lite_needs_clipseg_and_text_prompts_still_run(page) -> None:
    """The example-painting callbacks are covered in test_ui_visual.py; the in-browser image-editor upload proved
    flaky under load, so the browser check stops at what a lite user sees."""
    page.get_by_text("Visual prompt: segment things like an example").click()
    page.locator("#visual-note").get_by_text("need the CLIPSeg backend").wait_for()
    page.set_input_files("#inspect-image input[type=file]", str(REPO / "examples" / "hairline_crack.png"))
    page.wait_for_selector("#inspect-image img")
    page.click("#inspect-run")
    page.locator("#inspect-status").get_by_text("2 prompts").wait_for()
    assert "(presence " in page.inner_text("#inspect-legend")      # each prompt's presence verdict


def test_segment_endpoint_serves_api_clients(server: str) -> None:
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    status, overlay, legend, masks, files = client.predict(
        handle_file(str(REPO / "examples" / "hairline_crack.png")), ["segment crack"], "segment wall crack", True,
        0.5, 0.5, api_name="/segment")
    assert "2 prompts" in status and "segment wall crack" in legend and len(masks) == 2
    assert sorted(Path(f).name for f in files) == [
        "hairline_crack__masks.json", "hairline_crack__segment_crack.png", "hairline_crack__segment_wall_crack.png"]


def review_cell(page, row: int, column: int):
    return page.locator(f'#review-table [data-testid="cell-{row}-{column}"]')


def test_image_sliders_stop_at_the_split_size(page, roots: list[Path]) -> None:
    from drywall_qa.data.coco import CocoSplit
    from drywall_qa.data.discovery import discover_splits

    size = len(CocoSplit(discover_splits(roots)[0][1]))       # the split each tab opens on
    for tab, elem_id in (("Review", "review-limit"), ("Evaluate", "evaluate-limit")):
        open_tab(page, tab)
        sync_api.expect(page.locator(f"#{elem_id} input[type=number]")).to_have_attribute("max", str(size))
        sync_api.expect(page.locator(f"#{elem_id}")).to_contain_text(f"of the split's {size} images")


def test_review_goes_through_images_with_the_keyboard_alone(page) -> None:
    open_tab(page, "Review")
    set_slider(page, "review-limit", 5)
    page.click("#review-run")
    page.locator("#review-status").get_by_text("Scored 5").wait_for()
    sync_api.expect(page.locator("#review-table [role=row][data-index]")).to_have_count(5)   # one row per image
    ious = [float(review_cell(page, row, 2).inner_text()) for row in range(5)]
    assert ious == sorted(ious)
    seen = []
    for number, key in enumerate("124", 1):
        page.keyboard.press("n")
        shown = page.locator("#review-shown")
        sync_api.expect(shown).to_contain_text("IoU")
        if seen:
            sync_api.expect(shown).not_to_contain_text(f"{seen[-1]} ")
        seen.append(page.inner_text("#review-shown").split(" · ")[0].strip())
        page.keyboard.press(key)
        sync_api.expect(page.locator("#review-page-line")).to_contain_text(f"{number} of 5 scored images decided")
    assert len(set(seen)) == 3 and seen[0] == review_cell(page, 0, 0).inner_text().strip()
    for part in ("input", "truth", "prediction", "errors"):
        sync_api.expect(page.locator(f"#review-{part} img")).to_be_visible()
    decisions = page.inner_text("#review-table")
    assert "prediction correct" in decisions and "prediction wrong" in decisions and "exclude image" in decisions
    screenshot(page, "review.png", "#review-status")


def test_review_brush_fix_export_and_rescore_changes_the_iou(page) -> None:
    open_tab(page, "Review")
    page.locator("#review-split input").click()
    page.get_by_role("option", name=re.compile("browser_data")).click()
    set_slider(page, "review-limit", 4)
    sync_api.expect(page.locator("#review-limit input[type=number]")).to_have_attribute("max", "4")
    page.click("#review-run")
    page.locator("#review-status").get_by_text("Scored 4").wait_for()
    image, before = review_cell(page, 0, 0).inner_text().strip(), float(review_cell(page, 0, 2).inner_text())
    review_cell(page, 0, 2).click()
    sync_api.expect(page.locator("#review-shown")).to_contain_text(image)
    page.get_by_text("Fix the ground truth").click()
    page.click("#review-edit-truth")
    page.locator("#review-status").get_by_text("Editing").wait_for()
    page.locator("#review-editor button[aria-label='Brush']").click()
    box = page.locator("#review-editor canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2 - 150, box["y"] + box["height"] / 2 - 150
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 31):                     # a wide pink stroke across the photo
        page.mouse.move(x + 10 * step, y + 5 * step, steps=2)
    page.mouse.up()
    page.click("#review-save-edit")
    page.locator("#review-status").get_by_text("corrected ground truth (edited)").wait_for()
    page.click("#review-export")
    page.locator("#review-status").get_by_text("Exported 4 images").wait_for()
    assert "1 with corrected ground truth" in page.inner_text("#review-status")
    sync_api.expect(page.locator("#review-split input")).to_have_value(re.compile("corrected"))
    page.click("#review-run")
    page.locator("#review-status").get_by_text(re.compile("Scored 4 of 4 images of cracks/valid-")).wait_for()
    rows = {review_cell(page, row, 0).inner_text().strip(): float(review_cell(page, row, 2).inner_text())
            for row in range(4)}
    assert rows[image] != before


def test_evaluate_three_images_shows_the_table(page) -> None:
    """The table's last column in view at 1280 and 1400 px, the progress shown once, the panels one per row."""
    open_tab(page, "Evaluate")
    set_slider(page, "evaluate-limit", 3)
    page.click("#evaluate-run")
    page.wait_for_function("() => document.querySelector('#tab-evaluate .progress-text') !== null")
    assert set(visible_progress(page, "tab-evaluate")) <= {"evaluate-table"}
    page.locator("#evaluate-status").get_by_text("Evaluated 3").wait_for()
    table = page.inner_text("#evaluate-table")
    assert "segment crack" in table and "mIoU" in table and "Presence AUROC" in table
    assert "presence AUROC n/a for segment crack" in page.inner_text("#evaluate-status")
    sync_api.expect(page.locator("#evaluate-plot img")).to_be_visible()
    panel = page.locator("#evaluate-panels img").first
    sync_api.expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box["width"] > 1000 and box["width"] / box["height"] > 2     # a row across the tab, no square cell
    for width in (1400, VIEWPORT["width"]):
        page.set_viewport_size({"width": width, "height": VIEWPORT["height"]})
        page.wait_for_timeout(300)
        assert overflowing(page, "#evaluate-table") == [], width
    screenshot(page, "evaluate.png", "#evaluate-split")
    screenshot(page, "evaluate-panels.png", "#evaluate-panels")


def test_uploads_after_an_example_still_go_through_the_loader(page) -> None:
    page.locator("#inspect-examples button").first.click()
    page.wait_for_selector("#inspect-image img")
    page.locator("#inspect-image button[aria-label='Remove Image']").click()
    page.set_input_files("#inspect-image input[type=file]",
                         files=[{"name": "fake.jpg", "mimeType": "image/jpeg", "buffer": b"a text file, renamed"}])
    page.wait_for_timeout(1000)
    page.click("#inspect-run")
    page.locator("#inspect-status").get_by_text("not a readable image").wait_for()   # our message, not a toast
    assert "fake.jpg" in page.inner_text("#inspect-status")


def test_an_example_from_a_data_folder_loads_and_segments(page) -> None:
    samples = page.locator("#inspect-examples button")
    samples.nth(len(list((REPO / "examples").glob("*.png")))).click()      # the first one after the generated
    page.wait_for_selector("#inspect-image img")
    page.click("#inspect-run")
    page.locator("#inspect-status").get_by_text("prompts on").wait_for()
    assert "Error" not in page.inner_text("#inspect-status")


def test_typed_threshold_and_arrow_keys_re_render(page) -> None:
    page.set_input_files("#inspect-image input[type=file]", str(REPO / "examples" / "seam_and_crack.png"))
    page.wait_for_selector("#inspect-image img")
    page.click("#inspect-run")
    page.locator("#inspect-legend li").nth(1).wait_for()
    box = page.locator("#inspect-threshold input[type=number]")
    box.fill("0.3")
    box.press("Enter")
    sync_api.expect(page.locator("#inspect-legend")).to_contain_text("threshold 0.30")
    assert "threshold 0.50" not in page.inner_text("#inspect-legend")
    page.locator("#inspect-threshold input[type=range]").focus()
    page.keyboard.press("ArrowRight")
    sync_api.expect(page.locator("#inspect-legend")).to_contain_text("threshold 0.31")
