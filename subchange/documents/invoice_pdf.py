"""The PDF invoice attached to the invoice email (R10), rendered with fpdf2 from the invoice's
sheet (invoice_sheet.py): a qualified invoice in the organisation's language (SPEC section 14).

A pure function of the invoice and its organisation: the same invoice gives the same bytes
(the PDF's creation date is the invoice's, and fpdf2 derives the file ID from the content), so a
retried email step attaches an identical file.

Fonts: fpdf2's core fonts are Latin-1 only. The first font found among FONT_CANDIDATES is used,
the others as fallbacks for glyphs it lacks. Japanese (kanji, kana, the yen sign) is drawn in
IPAexGothic, looked up first in the pip package matplotlib-fontja (the `stack` extra, so a
checkout draws it with no OS font), then at Debian's fonts-ipaexfont-gothic path (the image's).
The worker refuses to start without either (japanese_font()). With no font at all, as in a bare
unit test, the core Helvetica is used, and a character no loaded font can draw is written as its
ASCII decomposition or "?", never an error: the PDF must not stop the email.
"""

from __future__ import annotations

import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import TTFFont

from subchange.documents.fonts import font_source
from subchange.documents.invoice_sheet import (
    Addressee,
    InvoiceSheet,
    IssuedInvoice,
    invoice_sheet,
)
from subchange.settings import ConfigurationError


def _pip_font(package: str, path: str) -> Path:
    """A font file inside an installed distribution, found without importing the package."""
    try:
        return Path(str(distribution(package).locate_file(path)))
    except PackageNotFoundError:
        return Path("/nonexistent") / path


# IPAexGothic (IPA Font License), the same file from either source.
JAPANESE_FONTS: tuple[Path, ...] = (
    _pip_font("matplotlib-fontja", "matplotlib_fontja/fonts/ipaexg.ttf"),
    Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),  # Debian fonts-ipaexfont-gothic
)
FONT_CANDIDATES: tuple[Path, ...] = (
    *JAPANESE_FONTS,
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),  # Debian fonts-dejavu-core
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
)
CORE_FONT, CORE_ENCODING = "Helvetica", "windows-1252"


def installed_fonts() -> list[Path]:
    return [path for path in FONT_CANDIDATES if path.is_file()]


def japanese_font() -> Path:
    """The IPAexGothic file the invoices of Japanese organisations are drawn in; without one
    their names and the qualified invoice's wording would come out as "?"."""
    for path in JAPANESE_FONTS:
        if path.is_file():
            return path
    raise ConfigurationError(
        "configuration error: no Japanese font for the PDF invoices (IPAexGothic): install "
        "Debian's fonts-ipaexfont-gothic (the image has it) or the pip package "
        "matplotlib-fontja (pip install 'subchange[stack]'); looked in "
        + ", ".join(str(path) for path in JAPANESE_FONTS))


class _Document:
    """An FPDF page with the fonts set up and every string made drawable before it is written.
    The fonts embedded are built for `texts`, every string the page will draw (fonts.py): each
    character from the first font that has it."""

    def __init__(self, fonts: Sequence[Path], created: datetime, texts: Iterable[str],
                 font_dir: Path) -> None:
        self.pdf = pdf = FPDF(format="A4")
        pdf.core_fonts_encoding = CORE_ENCODING
        pdf.set_creation_date(created)
        pdf.set_producer("subchange")
        sources = [font_source(path) for path in fonts]
        self.cmaps: list[dict[int, str]] = [source.cmap for source in sources]
        per_font: dict[int, set[int]] = {}
        for code in {ord(ch) for text in texts for ch in self.drawable(text)} | {ord(" ")}:
            index = next((i for i, cmap in enumerate(self.cmaps) if code in cmap), None)
            if index is not None:
                per_font.setdefault(index, set()).add(code)
        families = []
        for index in sorted(per_font):
            path = font_dir / f"f{index}.ttf"
            path.write_bytes(sources[index].subset(per_font[index]))
            pdf.add_font(f"f{index}", fname=path)
            # The built font's glyphs and bounding boxes are the installed font's own: saving its
            # subset can copy each glyph's bytes instead of decoding and encoding it again.
            font = pdf.fonts[f"f{index}"]
            assert isinstance(font, TTFFont)  # added from a file above, not a core font
            font.ttfont.recalcBBoxes = False
            families.append(f"f{index}")
        self.family = families[0] if families else CORE_FONT
        if len(families) > 1:
            pdf.set_fallback_fonts(families[1:])
        pdf.add_page()

    def drawable(self, text: str) -> str:
        return "".join(ch if self._has(ch) else _ascii(ch) for ch in text)

    def _has(self, ch: str) -> bool:
        if ch in " \n":
            return True
        if not self.cmaps:
            try:
                ch.encode(CORE_ENCODING)
            except UnicodeEncodeError:
                return False
            return True
        return any(ord(ch) in cmap for cmap in self.cmaps)

    def line(self, text: str = "", *, size: int = 10) -> None:
        self.pdf.set_font(self.family, size=size)
        drawn = self.drawable(text)
        # multi_cell measures a line again for every character it adds: a line that fits is
        # measured once and drawn as one cell, which puts it where multi_cell would.
        if "\n" not in drawn and self.pdf.get_string_width(drawn) <= self.pdf.epw:
            self.pdf.cell(0, size * 0.55, drawn, new_x="LMARGIN", new_y="NEXT")
        else:
            self.pdf.multi_cell(0, size * 0.55, drawn, new_x="LMARGIN", new_y="NEXT")

    def row(self, *columns: str, widths: Sequence[int] = (90, 20, 35, 35)) -> None:
        self.pdf.set_font(self.family, size=9)
        for text, width, align in zip(columns, widths, "LRRR", strict=True):
            self.pdf.cell(width, 6, self.drawable(text), border="B", align=align)
        self.pdf.ln(6)


def _ascii(ch: str) -> str:
    folded = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode("ascii")
    return folded or "?"


def render_invoice_pdf(invoice: IssuedInvoice, org: Addressee, *,
                       fonts: Sequence[Path] | None = None) -> bytes:
    """The invoice as PDF bytes: the qualified invoice's fields, line items, the amounts per tax
    rate and the total. `fonts` defaults to the installed FONT_CANDIDATES."""
    sheet = invoice_sheet(invoice, org)
    title = f"{sheet.title} {invoice.number}"
    page = _page(sheet, title)
    texts = [text for entry in page
             for text in (entry.columns if isinstance(entry, _Row) else (entry.text,))]
    with tempfile.TemporaryDirectory(prefix="invoice-fonts-") as font_dir:
        doc = _Document(installed_fonts() if fonts is None else fonts, sheet.created, texts,
                        Path(font_dir))
        doc.pdf.set_title(title)
        for entry in page:
            if isinstance(entry, _Row):
                doc.row(*entry.columns)
            else:
                doc.line(entry.text, size=entry.size)
        return bytes(doc.pdf.output())


@dataclass(frozen=True)
class _Line:
    text: str
    size: int = 10


@dataclass(frozen=True)
class _Row:
    columns: tuple[str, ...]


def _page(sheet: InvoiceSheet, title: str) -> list[_Line | _Row]:
    """What the page draws, top to bottom: known before the fonts are built for it."""
    return [
        _Line(title, 16),
        *(_Line(f"{label}: {value}" if label else value) for label, value in sheet.header),
        _Line(""),
        _Row(tuple(sheet.columns)),
        *(_Row((item.description, item.seats, item.unit_price, item.per_period))
          for item in sheet.items),
        _Line(""),
        *(_Line(f"{label}: {value}") for label, value in sheet.supplied),
        _Line(""),
        *(_Line(f"{label}: {value}" if label else value, 12 if label else 9)
          for label, value in sheet.totals),
        _Line(""),
        *(_Line(note, 9) for note in sheet.notes),
    ]
