"""The job's report.html in headless Chromium: it opens from disk with nothing else, shows every photo measured
(its embedded overlay decoded) with its findings table, the unreadable photo with its reason, and the notes; a
screenshot goes to docs/jobs-report.png. The job runs the bundled model on the generated demo photos when it is
installed (so the screenshot shows real findings), else the tiny random checkpoint."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from drywall_qa.cli.job import main
from drywall_qa.core.backends import BUNDLED_DIR

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.is_file(),
                                 reason="Chromium not found at /usr/bin/chromium: apt-get install -y chromium")]
REPO = Path(__file__).resolve().parents[2]
DEMOS = ["seam_and_crack.png", "hairline_crack.png", "horizontal_seam.png"]


@pytest.fixture(scope="module")
def job(tiny_lite_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    photos = tmp_path_factory.mktemp("photos")
    for name in DEMOS:
        shutil.copy(REPO / "examples" / name, photos / name)
    (photos / "torn.jpg").write_bytes((REPO / "examples" / DEMOS[0]).read_bytes()[:3000])
    out = tmp_path_factory.mktemp("job")
    (out / "notes.json").write_text(json.dumps({"job": "Site visit, level 2.",
                                                "photos": {DEMOS[0]: "Fill before painting."}}))
    bundled = (BUNDLED_DIR / "config.json").is_file()
    model = [] if bundled else ["--model", str(tiny_lite_dir), "--threshold", "0.45"]
    assert main([str(photos), "--prompts", "segment crack", "segment taping area", "--out", str(out),
                 "--mm-per-pixel", "0.5", *model]) == 0
    return out


def test_report_shows_each_photo_with_its_findings(job: Path) -> None:
    rows = Counter(row["photo"] for row in csv.DictReader((job / "findings.csv").open()))
    summary = json.loads((job / "summary.json").read_text())
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto((job / "report.html").as_uri())
        sections = page.locator("section.photo")
        assert sections.count() == summary["measured"] == len(DEMOS)
        for index in range(sections.count()):
            section = sections.nth(index)
            name = section.locator("h2").inner_text()
            assert Path(name).name in DEMOS
            assert section.locator("img").evaluate("img => img.complete && img.naturalWidth") > 0
            assert section.locator("table.findings tr").count() - 1 == rows[name]
        assert "torn.jpg" in page.locator("#summary").inner_text()
        assert "Site visit, level 2." in page.locator("#summary").inner_text()
        noted = sections.filter(has=page.locator("h2", has_text=DEMOS[0]))
        assert "Fill before painting." in noted.inner_text()
        assert page.evaluate("() => [...document.querySelectorAll('[src]')].every(e => e.src.startsWith('data:'))")
        page.screenshot(path=str(REPO / "docs" / "jobs-report.png"))
        browser.close()
