"""The journal as a printable PDF. Pure: ExportData in, a file out.

fpdf2 and matplotlib (whose DejaVu fonts the PDF uses) are heavy: this module is imported on
the first export, not when the bot starts."""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path
from typing import cast

import matplotlib
from fpdf import FPDF
from fpdf.bidi import BidiParagraph, auto_detect_base_direction
from fpdf.enums import Align, TextDirection, XPos, YPos
from fpdf.fonts import TTFFont
from PIL import Image

from bot.domain.export_data import (
    ExportData,
)
from bot.render.export import Block, Style, content_blocks, format_when, one_line, range_line
from bot.render.jinja import Say

_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
_FAMILY = "DejaVu"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}

_INK = (33, 33, 33)
_GRAY = (115, 115, 115)
_RULE = (200, 200, 200)

_MARGIN = 22.0  # mm, on all sides
_BODY_SIZE = 11.0  # pt
_BODY_LINE = 5.8  # mm: about 1.5 times the body size
_META_SIZE = 9.0
_META_LINE = 4.6
_FOOTER_SIZE = 8.5

# Shown instead of a character DejaVu has no glyph for (most emoji, CJK): fpdf2 would
# otherwise draw an empty box and log a warning for each.
_PLACEHOLDER = "□"
# Characters the font lacks that only modify a neighbour (joiners, variation selectors,
# combining marks, emoji skin tones) or are controls: dropped, not shown as boxes of their own.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Mn", "Me", "Sk"})

_RTL = re.compile(
    "[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]"
)
_TOKENS = re.compile(r"\S+|\s+")
_MIRRORED = str.maketrans("()[]{}<>«»\u2039\u203a", ")(][}{><»«\u203a\u2039")


def _visual_order(line: str) -> str:
    """A line of text in the order its glyphs appear from left to right.

    fpdf2 reorders right-to-left text only with its HarfBuzz shaping engine (an optional
    dependency we do not install), so Hebrew or Arabic would come out backwards. This applies
    the Unicode bidirectional algorithm to a line that has already been wrapped, as the
    algorithm requires, and mirrors brackets inside right-to-left runs.
    """
    return "".join(
        char.character.translate(_MIRRORED) if char.embedding_level % 2 else char.character
        for char in BidiParagraph(text=line).get_reordered_characters()
    )


class _JournalPdf(FPDF):
    """A4 pages with a footer naming the journal and numbering the pages."""

    def __init__(self, title: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_label = title
        # The default alias "{nb}" would also replace those characters in a patient's text.
        # Noncharacters cannot reach the page: text is filtered to what the font can draw.
        # fpdf2 keeps one digit of room per character of the alias and warns when the number
        # needs more; left-aligned at the end of the line, unused room is invisible.
        self.total_pages_alias = "\ufdd0\ufdd1\ufdd2\ufdd3"
        self.alias_nb_pages(self.total_pages_alias, align=Align.L)

    def footer(self) -> None:
        if self.page == 1:  # the title page
            return
        self.set_y(-_MARGIN + 8)
        self.set_font(_FAMILY, size=_FOOTER_SIZE)
        self.set_text_color(*_GRAY)
        half = self.epw / 2
        self.cell(half, 5, f"{self.page_no()} / {self.total_pages_alias}", align=Align.L)
        self.cell(half, 5, self.footer_label, align=Align.R)


class _PdfWriter:
    def __init__(self, say: Say) -> None:
        self.say = say
        self.pdf = _JournalPdf(say("title"))
        self.pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.pdf.set_auto_page_break(auto=True, margin=_MARGIN)
        # What each style can draw: DejaVu Sans has Arabic, for one, but its oblique has not.
        self.printable: dict[str, frozenset[str]] = {}
        for style, file_name in _FONT_FILES.items():
            self.pdf.add_font(_FAMILY, style, _FONT_DIR / file_name)
            self.pdf.set_font(_FAMILY, style)
            font = cast(TTFFont, self.pdf.current_font)
            self.printable[style] = frozenset(map(chr, font.cmap))
        self.char_widths: dict[tuple[str, float], dict[str, float]] = {}

    def printable_text(self, text: str) -> str:
        """One line of text that the current font can draw in full."""
        text = text.replace("\t", "    ")
        printable = self.printable[self.pdf.font_style]
        if printable.issuperset(text):
            return text
        kept: list[str] = []
        for char in text:
            if char in printable:
                kept.append(char)
            elif unicodedata.category(char) not in _INVISIBLE_CATEGORIES:
                kept.append(_PLACEHOLDER)
        return "".join(kept)

    def use(self, style: str, size: float, color: tuple[int, int, int] = _INK) -> None:
        self.pdf.set_font(_FAMILY, style, size)
        self.pdf.set_text_color(*color)

    def text_width(self, text: str) -> float:
        """The width of text in the current font, summed from a cache of character widths."""
        widths = self.char_widths.setdefault((self.pdf.font_style, self.pdf.font_size_pt), {})
        total = 0.0
        for char in text:
            width = widths.get(char)
            if width is None:
                width = widths[char] = self.pdf.get_string_width(char)
            total += width
        return total

    def wrap(self, line: str, width: float) -> list[str]:
        """A line of text broken at spaces into lines no wider than width (a word longer than
        a line is broken anywhere). fpdf2's multi_cell does the same, but measures the whole
        line again for every character it adds: seconds for a long journal instead of tenths.
        """
        if self.text_width(line) <= width:
            return [line]
        lines: list[str] = []
        current, current_width = "", 0.0
        for token in _TOKENS.findall(line):
            token_width = self.text_width(token)
            if token.isspace():
                # Spaces may run past the margin: they vanish at the end of a line.
                current, current_width = current + token, current_width + token_width
                continue
            if current_width + token_width > width and current.strip():
                lines.append(current.rstrip())
                current, current_width = "", 0.0
            while token_width > width:
                cut = self.fitting_length(token, width)
                lines.append(token[:cut])
                token = token[cut:]
                token_width = self.text_width(token)
            current, current_width = current + token, current_width + token_width
        lines.append(current.rstrip())
        return lines

    def fitting_length(self, text: str, width: float) -> int:
        """How many characters of text fit in width; at least one, so wrapping moves on."""
        used = 0.0
        for length, char in enumerate(text):
            used += self.text_width(char)
            if used > width:
                return max(length, 1)
        return len(text)

    def paragraph(self, text: str, line_height: float) -> None:
        """Text from the left margin to the right one, wrapped, its line breaks kept."""
        width = self.pdf.epw - 2 * self.pdf.c_margin
        for line in map(self.printable_text, text.splitlines()):
            right_to_left = bool(_RTL.search(line))
            align = (
                Align.R
                if right_to_left and auto_detect_base_direction(line) is TextDirection.RTL
                else Align.L
            )
            for piece in self.wrap(line, width):
                self.pdf.cell(
                    0,
                    line_height,
                    _visual_order(piece) if right_to_left else piece,
                    align=align,
                    new_x=XPos.LMARGIN,
                    new_y=YPos.NEXT,
                )

    def gap(self, height: float) -> None:
        """Vertical space between blocks, but none at the top of a page."""
        if self.pdf.y > self.pdf.t_margin:
            self.pdf.ln(height)

    def keep_with_next(self, height: float) -> None:
        """Start a new page rather than leave a heading alone at the bottom of one."""
        if self.pdf.will_page_break(height):
            self.pdf.add_page()

    def title_page(self, data: ExportData) -> None:
        pdf = self.pdf
        pdf.add_page()
        pdf.set_y(70)  # about a quarter of the way down
        self.use("B", 28)
        self.paragraph(self.say("title"), 12)
        name = one_line(data.patient_name)
        if name:
            pdf.ln(2)
            self.use("", 17)
            self.paragraph(name, 8)
            pdf.footer_label = self.footer_label(name)
        pdf.ln(10)
        self.use("", 12)
        self.paragraph(range_line(data, self.say), 6.5)
        pdf.ln(2)
        self.use("", 10, _GRAY)
        self.paragraph(self.say("timezone", name=data.timezone), 5.2)
        self.paragraph(self.say("generated", when=format_when(data.generated_at)), 5.2)
        if data.mood_chart_png is not None:
            self.chart(data.mood_chart_png)

    def footer_label(self, name: str) -> str:
        """The journal's title and the patient's name, shortened to fit half the footer."""
        self.use("", _FOOTER_SIZE)
        label = self.printable_text(f"{self.say('title')} — {name}")
        width = self.pdf.epw / 2 - 2 * self.pdf.c_margin
        if self.text_width(label) > width:
            label = label[: self.fitting_length(label, width - self.text_width("…"))] + "…"
        return _visual_order(label) if _RTL.search(label) else label

    def chart(self, png: bytes) -> None:
        """The chart across the page, below the title if it fits there, else on its own page."""
        pdf = self.pdf
        with Image.open(io.BytesIO(png)) as image:
            width_px, height_px = image.size
        height = pdf.epw * height_px / width_px
        space_above, heading_line, space_below = 14, 7, 3
        if pdf.will_page_break(space_above + heading_line + space_below + height):
            pdf.add_page()
        self.gap(space_above)
        self.use("B", 12.5)
        self.paragraph(self.say("chart_heading"), heading_line)
        pdf.ln(space_below)
        pdf.image(
            io.BytesIO(png),
            x=pdf.l_margin,
            y=pdf.y,
            w=pdf.epw,
            # A chart taller than a page is shrunk to fit it, keeping its proportions.
            h=min(height, pdf.page_break_trigger - pdf.y),
            keep_aspect_ratio=True,
            alt_text=self.say("chart_heading"),
        )

    def block(self, block: Block) -> None:
        pdf = self.pdf
        match block.style:
            case Style.SECTION:
                pdf.add_page()
                pdf.start_section(block.text)
                self.use("B", 16)
                self.paragraph(block.text, 8.5)
                pdf.ln(2)
                pdf.set_draw_color(*_RULE)
                pdf.set_line_width(0.3)
                pdf.line(pdf.l_margin, pdf.y, pdf.l_margin + pdf.epw, pdf.y)
                pdf.ln(3)
            case Style.HEADING:
                self.keep_with_next(7 + 3 * _BODY_LINE)
                self.gap(6)
                self.use("B", 12.5)
                self.paragraph(block.text, 7)
                pdf.ln(1)
            case Style.PROMPT:
                self.keep_with_next(6 + _META_LINE + 2 * _BODY_LINE)
                self.gap(4)
                self.use("B", 11.5)
                self.paragraph(block.text, 6)
            case Style.STATUS:
                self.use("", _META_SIZE, _GRAY)
                self.paragraph(block.text, _META_LINE)
            case Style.ENTRY:
                self.keep_with_next(_META_LINE + 2 * _BODY_LINE)
                self.gap(2.5)
                self.use("", _META_SIZE, _GRAY)
                self.paragraph(block.text, _META_LINE)
                pdf.ln(0.6)
            case Style.TEXT:
                self.use("", _BODY_SIZE)
                self.paragraph(block.text, _BODY_LINE)
            case Style.REMARK:
                self.use("I", _BODY_SIZE, _GRAY)
                self.paragraph(block.text, _BODY_LINE)


def write_pdf(data: ExportData, path: Path, say: Say) -> None:
    writer = _PdfWriter(say)
    pdf = writer.pdf
    pdf.set_title(say("title"))
    pdf.set_creator("Integration Companion")
    pdf.set_creation_date(data.generated_at)
    writer.title_page(data)
    for block in content_blocks(data, say):
        writer.block(block)
    pdf.output(str(path))
