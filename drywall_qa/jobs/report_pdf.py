"""``report.pdf``: the report for clients who take PDFs, drawn with fpdf2 (pure Python) from the same
:class:`~drywall_qa.jobs.report_content.ReportContent` as ``report.html``, so both print the same text and numbers.

A4 portrait: the summary (counts, largest findings, thumbnails of the photos with findings, settings, unreadable
photos, notes) on the first pages, then each photo from a new page with how each prompt ran, its overlay, its
findings table and its notes. Overlays are re-encoded as JPEGs of at most :data:`PDF_SIDE` pixels, thumbnails of
:data:`THUMBNAIL_SIDE`, so a job of twenty 12 MP photos makes a file of a few megabytes. Text is set in DejaVu Sans,
the font matplotlib ships, so any photo name prints (fpdf2's built-in fonts only know Latin-1)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from PIL import Image

from drywall_qa.core.atomic import write_atomic
from drywall_qa.jobs.report import shrunk
from drywall_qa.jobs.report_content import COUNT_HEADERS, TEXT_COLUMNS, PhotoSection, ReportContent, finding_cells

PDF = "report.pdf"
#: longest side in pixels of an overlay in the PDF and of a summary thumbnail, and their JPEG quality
PDF_SIDE, THUMBNAIL_SIDE, JPEG_QUALITY = 1200, 360, 70
#: page margin, thumbnail width and the tallest an overlay may be drawn, in millimetres
MARGIN, THUMBNAIL_WIDTH, OVERLAY_HEIGHT = 15, 42, 150
FONT = "DejaVu"
_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
_HEADINGS = FontFace(emphasis="BOLD", fill_color=(242, 242, 242))


class _Document(FPDF):
    """An A4 page set with DejaVu Sans and a footer numbering the pages."""

    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN)
        self.add_font(FONT, "", _FONT_DIR / "DejaVuSans.ttf")
        self.add_font(FONT, "B", _FONT_DIR / "DejaVuSans-Bold.ttf")
        self.set_title("Inspection report")

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(FONT, size=8)
        self.set_text_color(120)
        self.cell(0, 5, f"Inspection report · page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0)

    def text_line(self, text: str, size: float = 10, bold: bool = False, grey: bool = False) -> None:
        """A paragraph of ``text`` across the page, wrapped."""
        self.set_font(FONT, "B" if bold else "", size)
        self.set_text_color(110 if grey else 0)
        self.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)
        self.ln(1)

    def grid(self, headers: list[str] | None, rows: list[list[str]], text_columns: tuple[int, ...] = (0,),
             widths: tuple[float, ...] | None = None) -> None:
        """A table: ``text_columns`` left-aligned, the others (numbers) right-aligned."""
        self.set_font(FONT, size=8)
        columns = len(rows[0]) if rows else len(headers or [])
        align = tuple("LEFT" if i in text_columns else "RIGHT" for i in range(columns))
        with self.table(col_widths=widths, text_align=align, first_row_as_headings=headers is not None,
                        line_height=4.5, headings_style=_HEADINGS) as table:
            for row in ([headers] if headers else []) + rows:
                table.row(row)
        self.ln(2)

    def notes_box(self, note: str) -> None:
        """The inspector's note, or an empty box to write in on paper."""
        self.set_font(FONT, size=9)
        self.multi_cell(0, 5, note or "\n\n\n", border=1, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)


def render_pdf(content: ReportContent) -> bytes:
    """The report as PDF bytes."""
    pdf = _Document()
    pdf.add_page()
    pdf.text_line("Inspection report", size=18, bold=True)
    pdf.text_line(content.headline, grey=True)
    _summary(pdf, content)
    for photo in content.photos:
        _photo(pdf, content, photo)
    return bytes(pdf.output())


def write_pdf(folder: Path, content: ReportContent) -> Path:
    """Write ``report.pdf`` into the job folder atomically; its path."""
    path = folder / PDF
    write_atomic(path, render_pdf(content))
    return path


def _summary(pdf: _Document, content: ReportContent) -> None:
    pdf.text_line("Summary", size=14, bold=True)
    pdf.grid(["prompt", *COUNT_HEADERS], content.count_rows())
    pdf.text_line(content.band_note, size=9)
    largest = [[prompt, *(e.describe(digits) if e else "—"
                          for e, digits in ((content.longest[prompt], 1), (content.widest[prompt], 2)))]
               for prompt in content.settings.prompts]
    pdf.grid(["prompt", f"longest ({content.unit})", f"widest, max width ({content.unit})"], largest,
             text_columns=(0, 1, 2))
    if content.with_findings:
        pdf.text_line("Photos with findings", size=12, bold=True)
        _thumbnails(pdf, content.with_findings)
    pdf.grid(None, [list(row) for row in content.settings_rows()], text_columns=(0, 1), widths=(1, 2))
    if content.counts["unreadable"]:
        pdf.text_line("Unreadable photos", size=12, bold=True)
        for problem in content.counts["unreadable"]:
            pdf.text_line(f"{problem['photo']}: {problem['reason']}", size=9)
    pdf.text_line("Inspector's notes", size=12, bold=True)
    pdf.notes_box(content.job_note)


def _thumbnails(pdf: _Document, photos: list[PhotoSection]) -> None:
    """A grid of small overlays, each captioned with its photo's name and count."""
    per_row = int((pdf.epw + 4) // (THUMBNAIL_WIDTH + 4))
    for start in range(0, len(photos), per_row):
        row = photos[start:start + per_row]
        images = [shrunk(photo.overlay, THUMBNAIL_SIDE) for photo in row]
        height = max(THUMBNAIL_WIDTH * image.height / image.width for image in images)
        if pdf.will_page_break(height + 10):
            pdf.add_page()
        top = pdf.get_y()
        for column, (photo, image) in enumerate(zip(row, images)):
            x = pdf.l_margin + column * (THUMBNAIL_WIDTH + 4)
            pdf.image(_jpeg(image), x=x, y=top, w=THUMBNAIL_WIDTH)
            pdf.set_xy(x, top + height + 1)
            pdf.set_font(FONT, size=7)
            pdf.multi_cell(THUMBNAIL_WIDTH, 3, f"{photo.name}: {len(photo.findings)} found")
        pdf.set_xy(pdf.l_margin, top + height + 9)


def _photo(pdf: _Document, content: ReportContent, photo: PhotoSection) -> None:
    pdf.add_page()
    pdf.text_line(photo.name, size=14, bold=True)
    pdf.text_line(f"{photo.width}×{photo.height} px", size=9, grey=True)
    for run in photo.runs:
        pdf.set_fill_color(*_rgb(content.colours[run.prompt]))
        pdf.rect(pdf.l_margin, pdf.get_y() + 1, 3, 3, style="F")
        pdf.set_x(pdf.l_margin + 5)
        pdf.set_font(FONT, size=9)
        pdf.multi_cell(0, 5, run.line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_fill_color(255)
    image = shrunk(photo.overlay, PDF_SIDE)
    width = min(pdf.epw, OVERLAY_HEIGHT * image.width / image.height)
    pdf.image(_jpeg(image), x=pdf.l_margin + (pdf.epw - width) / 2, y=pdf.get_y() + 2, w=width)
    pdf.set_y(pdf.get_y() + 4 + width * image.height / image.width)
    rows = [finding_cells(prompt, finding) for prompt, finding in photo.findings]
    if rows:
        pdf.grid(content.finding_headers(), rows, text_columns=TEXT_COLUMNS,
                 widths=(30, 7, 18, 18, 18, 14, 22, 18, 12))
    else:
        pdf.text_line("No findings on this photo.", size=9, grey=True)
    pdf.text_line("Notes", size=12, bold=True)
    pdf.notes_box(photo.note)


def _jpeg(image: Image.Image) -> io.BytesIO:
    """``image`` as JPEG bytes, which fpdf2 embeds as they are."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    buffer.seek(0)
    return buffer


def _rgb(colour: str) -> tuple[int, int, int]:
    """``#1f77b4`` → ``(31, 119, 180)``."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
