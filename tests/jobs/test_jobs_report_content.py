"""The job report's content, its HTML and its PDF, from photo records written by hand: each photo's own view and
threshold, a summary that counts views over the photos, photos with findings first, the longest and widest findings;
the PDF's pages rendered (pypdfium2), not blank and carrying the HTML's text and counts, and small for large
photos."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drywall_qa.jobs.exports import summary
from drywall_qa.jobs.findings import Finding, MeasureSettings
from drywall_qa.jobs.report import render_report
from drywall_qa.jobs.report_content import build_content, finding_cells
from drywall_qa.jobs.report_pdf import render_pdf
from drywall_qa.jobs.runner import JobSettings

PROMPTS = ("segment crack", "segment taping area")
SETTINGS = JobSettings(prompts=PROMPTS, model="tiny", measure=MeasureSettings(mm_per_pixel=0.5))
TILED = "tiled: 54 windows at 640 px"


def finding(instance: int, length: float | None = None, max_width: float | None = None) -> dict:
    return Finding(instance=instance, area=50.0, bbox=(2, 3, 10, 12), orientation=45.0, score=0.9, length=length,
                   mean_width=None if max_width is None else max_width / 2, max_width=max_width,
                   band=None if max_width is None else "fine").to_dict()


def record(folder: Path, name: str, key: str, views: tuple[str, str], crack: list[dict], taping: list[dict]) -> dict:
    """A photo's record as a job writes it, with a small overlay JPEG."""
    (folder / "overlays").mkdir(exist_ok=True)
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(folder / "overlays" / f"{key}.jpg")
    entries = [{"prompt": prompt, "threshold": threshold, "presence": None, "coverage": 0.01, "view": view,
                "unknown_concept": False, "mask": f"masks/{key}.png", "findings": found}
               for prompt, threshold, view, found in zip(PROMPTS, (0.75, 0.5), views, (crack, taping))]
    return {"name": name, "key": key, "width": 60, "height": 40, "overlay": f"overlays/{key}.jpg",
            "prompts": entries}


@pytest.fixture
def job(tmp_path: Path) -> tuple[Path, list[dict]]:
    records = [record(tmp_path, "small.jpg", "small", ("whole image", "whole image"), [], []),
               record(tmp_path, "site/large.jpg", "site_large", (TILED, "whole image"),
                      [finding(1, length=120.0, max_width=0.8), finding(2, length=300.0, max_width=0.4)],
                      [finding(1)]),
               record(tmp_path, "site/other.jpg", "site_other", ("whole image", "whole image"),
                      [finding(1, length=40.0, max_width=2.5)], []),
               {"name": "broken.jpg", "key": "broken", "error": "not a readable image file"}]
    (tmp_path / "notes.json").write_text(json.dumps({"job": "Level 2", "photos": {"site/large.jpg": "Fill it."}}))
    return tmp_path, records


def test_content_orders_photos_and_finds_the_largest(job: tuple[Path, list[dict]]) -> None:
    folder, records = job
    content = build_content(folder, records, SETTINGS, summary(records, SETTINGS, []))
    assert [p.name for p in content.photos] == ["site/large.jpg", "site/other.jpg", "small.jpg"]
    assert [p.name for p in content.with_findings] == ["site/large.jpg", "site/other.jpg"]
    assert content.runs["segment crack"] == ["0.75, whole image (2 photos)", f"0.75, {TILED} (1 photo)"]
    longest, widest = content.longest["segment crack"], content.widest["segment crack"]
    assert (longest.photo, longest.instance, longest.value) == ("site/large.jpg", 2, 300.0)
    assert (widest.photo, widest.instance, widest.value) == ("site/other.jpg", 1, 2.5)
    assert content.longest["segment taping area"] is None      # a blob has no length
    assert content.photos[0].note == "Fill it." and content.job_note == "Level 2"


def sections(html: str) -> dict[str, str]:
    """Each photo section's HTML by its heading."""
    found = re.findall(r'<section class="photo"[^>]*>\s*<h2>(.*?)</h2>(.*?)</section>', html, re.S)
    return dict(found)


def test_html_shows_each_photos_own_view_and_a_summary_first(job: tuple[Path, list[dict]]) -> None:
    folder, records = job
    html = render_report(build_content(folder, records, SETTINGS, summary(records, SETTINGS, [])))
    by_photo = sections(html)
    assert list(by_photo) == ["site/large.jpg", "site/other.jpg", "small.jpg"]
    assert "segment crack: 2 found" in by_photo["site/large.jpg"]
    assert f"threshold 0.75, {TILED}" in by_photo["site/large.jpg"]
    assert TILED not in by_photo["small.jpg"] and "threshold 0.75, whole image" in by_photo["small.jpg"]
    summary_html = html[html.index('<section id="summary">'):html.index('<section class="photo"')]
    assert f"0.75, whole image (2 photos); 0.75, {TILED} (1 photo)" in summary_html
    assert '<a href="#photo-site_large">300.0 — site/large.jpg #2</a>' in summary_html
    assert '<a href="#photo-site_other">2.50 — site/other.jpg #1</a>' in summary_html
    assert summary_html.count('<a href="#photo-') == 2 + 2    # the thumbnails, the crack's longest and widest
    assert "2 with findings" in html and "broken.jpg: not a readable image file" in summary_html


def pdf_pages(data: bytes) -> tuple[list[np.ndarray], list[str]]:
    """Each page of a PDF rendered to grey pixels, and its text with whitespace made single spaces."""
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 renders the PDF: pip install -r requirements-dev.txt")
    document = pdfium.PdfDocument(data)
    pages = [document[i] for i in range(len(document))]
    images = [np.asarray(page.render(scale=0.5).to_pil().convert("L")) for page in pages]
    texts = [" ".join(page.get_textpage().get_text_range().split()) for page in pages]
    return images, texts


def test_pdf_pages_show_what_the_html_shows(job: tuple[Path, list[dict]]) -> None:
    folder, records = job
    content = build_content(folder, records, SETTINGS, summary(records, SETTINGS, []))
    images, texts = pdf_pages(render_pdf(content))
    assert len(images) == 1 + len(content.photos)            # the summary, then a page per photo
    for image in images:
        assert (image < 200).mean() > 0.002                   # not blank: text and lines drawn
    html = render_report(content)
    counts_html = re.search(r'<table id="counts">(.*?)</table>', html, re.S).group(1)
    for row in content.count_rows():
        assert " ".join(row) in texts[0]
        assert "".join(f"<td>{cell}</td>" for cell in row[1:]) in counts_html
    assert content.headline in texts[0] and content.headline in html
    assert "300.0 — site/large.jpg #2" in texts[0] and f"0.75, {TILED} (1 photo)" in texts[0]
    for photo, text in zip(content.photos, texts[1:]):
        assert text.startswith(photo.name)
        assert all(run.line in text for run in photo.runs)
        assert all(" ".join(finding_cells(*f)) in text for f in photo.findings)
    overlay_page = images[1]                                  # the overlay: a grey block of the photo's 200
    assert ((overlay_page > 190) & (overlay_page < 210)).mean() > 0.05


def test_pdf_of_large_photos_stays_small(tmp_path: Path) -> None:
    # two 12 MP overlays with fine noise: each must cost the PDF well under 10 MB / 20 photos
    rng = np.random.default_rng(0)
    records = []
    for index in range(2):
        noise = rng.normal(180, 25, (3024, 4032, 3)).clip(0, 255).astype(np.uint8)
        records.append(record(tmp_path, f"wall_{index}.jpg", f"wall_{index}", ("whole image",) * 2,
                              [finding(1, length=10.0, max_width=1.0)], []))
        Image.fromarray(noise).save(tmp_path / "overlays" / f"wall_{index}.jpg", quality=90)
    content = build_content(tmp_path, records, SETTINGS, summary(records, SETTINGS, []))
    assert len(render_pdf(content)) < 500_000          # 250 kB a photo: twenty stay near 5 MB
