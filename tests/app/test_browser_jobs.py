"""The Jobs tab in headless Chromium: three photos uploaded and run as a job, the findings table shown whole at
1280 px with counts that add up, the report downloaded, a note saved into it; a 1280×800 screenshot goes to
docs/jobs.png and the PDF report's first page, rendered, to docs/report-page.png. The app runs the bundled model when
it is installed (so the pictures show real findings), else the tiny random checkpoint."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drywall_qa.core.backends import BUNDLED_DIR
from drywall_qa.testing.app_server import serve_app
from tests.app.test_browser import overflowing
from tests.jobs.test_jobs_report import CHROMIUM, DEMOS, REPO, pytestmark, sync_api  # noqa: F401 — pytestmark marks

VIEWPORT = {"width": 1280, "height": 800}
STEP_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server(tiny_lite_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = BUNDLED_DIR if (BUNDLED_DIR / "config.json").is_file() else tiny_lite_dir
    with serve_app(model, tmp_path_factory.mktemp("browser_jobs")) as app:
        yield app.url


def test_jobs_tab_runs_three_photos_and_offers_the_report(server: str, tmp_path: Path) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(STEP_TIMEOUT_MS)
        sync_api.expect.set_options(timeout=STEP_TIMEOUT_MS)
        page.goto(server)
        page.get_by_role("tab", name="Jobs").click()
        page.set_input_files("#jobs-photos input[type=file]", [str(REPO / "examples" / name) for name in DEMOS])
        sync_api.expect(page.locator("#jobs-photos")).to_contain_text(DEMOS[2].removesuffix(".png"))
        page.click("#jobs-run")
        page.locator("#jobs-status").get_by_text("Job done: 3 photos").wait_for()
        sync_api.expect(page.locator("#jobs-findings")).to_contain_text("max px")
        sync_api.expect(page.locator("#jobs-counts")).to_contain_text("segment taping area")
        assert overflowing(page, "#jobs-findings") == [] and overflowing(page, "#jobs-counts") == []
        for row in range(2):                                  # a prompt's instances = its bands + its ones not thin
            cells = [page.locator(f'#jobs-counts [data-testid="cell-{row}-{column}"]').inner_text().strip()
                     for column in range(7)]
            numbers = [int(cell) for cell in cells[1:]]
            assert numbers[0] == sum(numbers[1:]), cells
        page.locator("#jobs-photo input").click()
        page.get_by_role("option", name=DEMOS[0]).click()
        sync_api.expect(page.locator("#jobs-overlay img")).to_be_visible()
        page.locator("#jobs-note textarea").fill("Fill and sand before painting.")
        page.click("#jobs-save-note")
        page.locator("#jobs-note-status").get_by_text("note; the report and the zip were rebuilt").wait_for()
        with page.expect_download() as download:
            page.locator("#jobs-files a[download=\"report.html\"]").click()
        report = tmp_path / "report.html"
        download.value.save_as(report)
        text = report.read_text()
        assert all(name in text for name in DEMOS) and "Fill and sand before painting." in text
        with page.expect_download() as download:
            page.locator("#jobs-files a[download=\"report.pdf\"]").click()
        render_first_page(download.value.path(), REPO / "docs" / "report-page.png")
        page.evaluate("document.querySelector('#tab-jobs').scrollIntoView({block: 'start'})")
        page.wait_for_timeout(400)
        page.screenshot(path=str(REPO / "docs" / "jobs.png"))
        browser.close()


def render_first_page(pdf: Path, png: Path) -> None:
    """The PDF's first page (the summary) rendered at 100 dpi, checked not blank, saved as ``png``."""
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 renders the PDF: pip install -r requirements-dev.txt")
    image = pdfium.PdfDocument(pdf)[0].render(scale=100 / 72).to_pil().convert("RGB")
    assert (np.asarray(image.convert("L")) < 200).mean() > 0.002
    image.save(png)


def test_a_line_drawn_on_a_photo_sets_mm_per_pixel(server: str) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(STEP_TIMEOUT_MS)
        page.goto(server)
        page.get_by_role("tab", name="Jobs").click()
        page.get_by_text("Scale from a line of known length").click()
        with page.expect_file_chooser() as chooser:
            page.locator("#jobs-scale-drawing").get_by_text("Upload an image").click()
        chooser.value.set_files(str(REPO / "examples" / DEMOS[0]))     # 640×640, shown at under half its size
        page.wait_for_timeout(2000)
        box = page.locator("#jobs-scale-drawing canvas").first.bounding_box()
        x, y = box["x"] + box["width"] / 2 - 100, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        for step in range(1, 21):                                        # 200 screen pixels to the right
            page.mouse.move(x + 10 * step, y, steps=2)
        page.mouse.up()
        page.locator("#jobs-scale-length input").fill("1000")
        page.click("#jobs-scale-set")
        note = page.locator("#jobs-scale-note")
        note.get_by_text("mm per pixel").wait_for()
        pixels = float(re.search(r"over (\d+) px", note.inner_text()).group(1))
        assert 400 < pixels < 640                                        # the stroke in photo pixels, not screen
        assert float(page.locator("#jobs-scale input").input_value()) == pytest.approx(1000 / pixels, rel=0.01)
        browser.close()
