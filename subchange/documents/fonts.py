"""The fonts of the PDF invoice, opened once per process.

A CJK font is large (IPAexGothic: 6 MB, 12,000 glyphs). Handing the whole file to fpdf2 for
every invoice made it parse the character map and metrics and subset the glyph table again each
time, about 180 ms of CPU per invoice, most of a change's worker time. Instead each font is opened
once per process, lazily and read-only (`FontSource`), and an invoice gets a small font built
with fontTools' FontBuilder from the glyphs its text uses and the printable ASCII (the same
outlines, metrics and names; a few milliseconds, and the last few hundred are kept). fpdf2
subsets that small font to the glyphs drawn, so the PDF embeds what it did before, and the same
text gives the same bytes.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path

from fontTools.fontBuilder import FontBuilder
from fontTools.ttLib import TTFont

SUBSETS_KEPT = 256
# Every font built has these too, so that invoices differing only in which digits and letters
# they use share one; fpdf2 then embeds only the glyphs the page draws.
PRINTABLE_ASCII = frozenset(range(0x20, 0x7F))


class FontSource:
    """One installed TrueType font, opened on first use and only read afterwards. Activities run
    in threads: the lazily loaded tables are read under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._font: TTFont | None = None
        self._cmap: dict[int, str] = {}
        # Invoices in one language share most of their characters (labels, digits, the
        # seller's name): the last few hundred fonts built are kept, a few kB each.
        self._built = lru_cache(maxsize=SUBSETS_KEPT)(self._build)

    def _opened(self) -> TTFont:
        if self._font is None:
            font = TTFont(self.path, lazy=True, recalcTimestamp=False)
            self._cmap = font.getBestCmap() or {}
            self._font = font
        return self._font

    @property
    def cmap(self) -> dict[int, str]:
        """Code point → glyph name of every character the font draws."""
        with self._lock:
            self._opened()
            return self._cmap

    def subset(self, codepoints: Iterable[int]) -> bytes:
        """A TrueType font of the glyphs of `codepoints` (those this font has) and .notdef."""
        drawn = self.cmap
        wanted = set(codepoints) | PRINTABLE_ASCII  # a superset: fpdf2 embeds only what's drawn
        return self._built(frozenset(code for code in wanted if code in drawn))

    def _build(self, codepoints: frozenset[int]) -> bytes:
        with self._lock:
            base = self._opened()
            cmap = {code: self._cmap[code] for code in sorted(codepoints)}
            glyf, hmtx = base["glyf"], base["hmtx"]
            order = [".notdef", *sorted(set(cmap.values()) - {".notdef"})]
            for name in order:  # composite glyphs bring their components (appended: visited too)
                glyph = glyf[name]
                if glyph.isComposite():
                    order += [c.glyphName for c in glyph.components if c.glyphName not in order]
            glyphs = {name: copy.deepcopy(glyf[name]) for name in order}
            metrics = {name: hmtx[name] for name in order}
            head, hhea, os2, post = base["head"], base["hhea"], base["OS/2"], base["post"]
            names = copy.deepcopy(base["name"])
        builder = FontBuilder(head.unitsPerEm, isTTF=True)
        builder.setupHead(unitsPerEm=head.unitsPerEm, created=head.created,
                          modified=head.modified, fontRevision=head.fontRevision)
        builder.setupGlyphOrder(order)
        builder.setupCharacterMap(cmap)
        builder.setupGlyf(glyphs)
        builder.setupHorizontalMetrics(metrics)
        builder.setupHorizontalHeader(ascent=hhea.ascent, descent=hhea.descent,
                                      lineGap=hhea.lineGap)
        builder.font["name"] = names
        builder.setupOS2(usWeightClass=os2.usWeightClass, sTypoAscender=os2.sTypoAscender,
                         sTypoDescender=os2.sTypoDescender, sTypoLineGap=os2.sTypoLineGap,
                         usWinAscent=os2.usWinAscent, usWinDescent=os2.usWinDescent,
                         sCapHeight=getattr(os2, "sCapHeight", hhea.ascent),
                         sxHeight=getattr(os2, "sxHeight", 0), fsType=os2.fsType)
        builder.setupPost(isFixedPitch=post.isFixedPitch, italicAngle=post.italicAngle,
                          underlinePosition=post.underlinePosition,
                          underlineThickness=post.underlineThickness)
        out = BytesIO()
        builder.save(out)
        return out.getvalue()


@cache
def font_source(path: Path) -> FontSource:
    """The process's one FontSource of `path`."""
    return FontSource(path)
