"""The journal as a Markdown file or a printable PDF. Pure: ExportData in, a file out."""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, auto
from pathlib import Path
from typing import cast

import matplotlib
from fpdf import FPDF
from fpdf.bidi import BidiParagraph, auto_detect_base_direction
from fpdf.enums import Align, TextDirection, XPos, YPos
from fpdf.fonts import TTFFont
from PIL import Image

from bot.export_data import (
    ExportData,
    ExportEntry,
    ExportPractice,
    ExportPrompt,
    ExportTreatment,
)
from bot.render import Say

__all__ = ["render_markdown", "write_markdown", "write_pdf"]


def _format_when(moment: datetime) -> str:
    """ "Tuesday 24 November 2026, 18:00"; the moment is already in the patient's zone."""
    return f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M}"


def _format_duration(seconds: int) -> str:
    """ "0:42", "12:05", as the bot shows durations in the chat."""
    return f"{seconds // 60}:{seconds % 60:02d}"


def _kind_label(entry: ExportEntry, say: Say) -> str:
    """What the entry is, or "" for plain text, which speaks for itself."""
    if entry.kind == "mood" and entry.mood is not None:
        return say("mood", value=entry.mood)
    if entry.kind == "text":
        return ""
    label = say("kind", name=entry.kind)
    if entry.duration_seconds is not None:
        label += f" ({_format_duration(entry.duration_seconds)})"
    return label


def _entry_meta(entry: ExportEntry, say: Say) -> str:
    parts = (_format_when(entry.when), _kind_label(entry, say))
    meta = " · ".join(part for part in parts if part)
    return say("edited", meta=meta) if entry.edited else meta


def _prompt_meta(prompt: ExportPrompt, say: Say) -> str:
    if prompt.sent_at is None:
        return say("state", status=prompt.status).capitalize()
    return say("sent", when=_format_when(prompt.sent_at), status=prompt.status)


def _range_line(data: ExportData, say: Say) -> str:
    if data.start is None:
        return say("range_all", end=_format_when(data.end))
    return say("range", start=_format_when(data.start), end=_format_when(data.end))


def _one_line(text: str) -> str:
    """Headings and labels cannot span lines in either format."""
    return " ".join(text.split())


class _Style(Enum):
    SECTION = auto()  # a treatment or "Other entries"; a new page in the PDF
    HEADING = auto()  # Intention, Session notes, Prompts, Mood records, Journal entries
    PROMPT = auto()  # a prompt's title
    STATUS = auto()  # when a prompt was sent and how it stands
    ENTRY = auto()  # when an entry was written and what it is
    TEXT = auto()  # what the patient (or guide) wrote, verbatim
    REMARK = auto()  # the export's own words in place of missing content


@dataclass(frozen=True, slots=True)
class _Block:
    style: _Style
    text: str


def _entry_blocks(entry: ExportEntry, say: Say) -> Iterator[_Block]:
    yield _Block(_Style.ENTRY, _entry_meta(entry, say))
    if entry.text.strip():
        yield _Block(_Style.TEXT, entry.text)


def _practice_blocks(practices: list[ExportPractice], say: Say) -> Iterator[_Block]:
    for done in practices:
        name = _one_line(done.label) or say("practice", kind=done.kind)
        meta = say("practice_meta", when=_format_when(done.when), name=name, minutes=done.minutes)
        yield _Block(_Style.ENTRY, meta)
        if done.note.strip():
            yield _Block(_Style.TEXT, done.note)


def _treatment_blocks(treatment: ExportTreatment, say: Say) -> Iterator[_Block]:
    heading = say("treatment", number=treatment.number, when=_format_when(treatment.when))
    yield _Block(_Style.SECTION, heading)
    yield _Block(_Style.HEADING, say("intention"))
    if treatment.intention.strip():
        yield _Block(_Style.TEXT, treatment.intention)
    else:
        yield _Block(_Style.REMARK, say("no_intention"))
    notes = [(author, text) for author, text in treatment.notes if text.strip()]
    if notes:
        yield _Block(_Style.HEADING, say("notes"))
        for author, text in notes:
            yield _Block(_Style.ENTRY, say("note_by", author=author))
            yield _Block(_Style.TEXT, text)
    if treatment.prompts:
        yield _Block(_Style.HEADING, say("prompts"))
        for prompt in treatment.prompts:
            yield _Block(_Style.PROMPT, _one_line(prompt.title))
            yield _Block(_Style.STATUS, _prompt_meta(prompt, say))
            for answer in prompt.answers:
                yield from _entry_blocks(answer, say)
    for heading, entries in ((say("moods"), treatment.moods), (say("entries"), treatment.entries)):
        if entries:
            yield _Block(_Style.HEADING, heading)
            for entry in entries:
                yield from _entry_blocks(entry, say)
    if treatment.practices:
        yield _Block(_Style.HEADING, say("practices"))
        yield from _practice_blocks(treatment.practices, say)


def _content_blocks(data: ExportData, say: Say) -> Iterator[_Block]:
    """Everything after the title, in the same order for every format."""
    for treatment in data.treatments:
        yield from _treatment_blocks(treatment, say)
    if data.other_entries:
        yield _Block(_Style.SECTION, say("other_entries"))
        for entry in data.other_entries:
            yield from _entry_blocks(entry, say)
    if data.other_practices:
        yield _Block(_Style.SECTION, say("other_practices"))
        yield from _practice_blocks(data.other_practices, say)
    if data.goals:
        yield _Block(_Style.SECTION, say("goals"))
        for goal in data.goals:
            yield _Block(_Style.PROMPT, _one_line(goal.text))
            yield _Block(_Style.STATUS, say("goal_meta", kind=goal.kind, status=goal.status))
            for week, answer, note in goal.checks:
                yield _Block(_Style.ENTRY, say("goal_check", week=week, answer=answer))
                if note.strip():
                    yield _Block(_Style.TEXT, note)
    if data.is_empty:
        yield _Block(_Style.REMARK, say("nothing"))


# Markdown ---------------------------------------------------------------------------------

# Every ASCII punctuation mark CommonMark (or a common extension) gives a meaning to: & starts
# entities, = underlines setext headings, $ opens maths on GitHub. CommonMark allows a backslash
# before any ASCII punctuation, so escaping these always is safe even where it is not needed.
_MARKDOWN_ESCAPES = str.maketrans({char: "\\" + char for char in "\\`*_{}[]<>()#+-.!|~&=$"})
_INDENT = re.compile(r"[ \t]+")


def _escape_line(line: str) -> str:
    """One line of text, inert in Markdown; leading blanks become no-break spaces, since
    four leading spaces would otherwise turn the line into a code block."""
    escaped = line.translate(_MARKDOWN_ESCAPES)
    indent = _INDENT.match(escaped)
    if indent is None:
        return escaped
    return "\u00a0" * indent.end() + escaped[indent.end() :]


def _markdown_quote(text: str) -> str:
    """Text as a block quote: every line kept, ending in two spaces (a hard line break) when
    the next line continues the same paragraph."""
    lines = [_escape_line(line) for line in text.splitlines()]
    quoted: list[str] = []
    for index, line in enumerate(lines):
        continues = bool(line) and index + 1 < len(lines) and bool(lines[index + 1])
        quoted.append(f"> {line}  " if continues else f"> {line}" if line else ">")
    return "\n".join(quoted) + "\n\n"


def _markdown_block(block: _Block) -> str:
    match block.style:
        case _Style.TEXT:
            return _markdown_quote(block.text)
        case _Style.SECTION:
            return f"## {_escape_line(block.text)}\n\n"
        case _Style.HEADING:
            return f"### {_escape_line(block.text)}\n\n"
        case _Style.PROMPT:
            return f"#### {_escape_line(block.text)}\n\n"
        case _Style.STATUS | _Style.ENTRY | _Style.REMARK:
            return f"*{_escape_line(block.text)}*\n\n"


def _markdown_pieces(data: ExportData, say: Say) -> Iterator[str]:
    yield f"# {_escape_line(say('title'))}\n\n"
    name = _one_line(data.patient_name)
    if name:
        yield f"**{_escape_line(name)}**\n\n"
    yield f"{_escape_line(_range_line(data, say))}  \n"
    yield f"{_escape_line(say('timezone', name=data.timezone))}  \n"
    yield f"{_escape_line(say('generated', when=_format_when(data.generated_at)))}\n\n"
    if data.mood_chart_png is not None:
        yield f"*{_escape_line(say('chart_in_pdf'))}*\n\n"
    for block in _content_blocks(data, say):
        yield _markdown_block(block)


def render_markdown(data: ExportData, say: Say) -> str:
    return "".join(_markdown_pieces(data, say))


def write_markdown(data: ExportData, path: Path, say: Say) -> None:
    """Write block by block, so a long journal never sits in memory as one string."""
    with path.open("w", encoding="utf-8", newline="\n") as file:
        file.writelines(_markdown_pieces(data, say))


# PDF --------------------------------------------------------------------------------------

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
        name = _one_line(data.patient_name)
        if name:
            pdf.ln(2)
            self.use("", 17)
            self.paragraph(name, 8)
            pdf.footer_label = self.footer_label(name)
        pdf.ln(10)
        self.use("", 12)
        self.paragraph(_range_line(data, self.say), 6.5)
        pdf.ln(2)
        self.use("", 10, _GRAY)
        self.paragraph(self.say("timezone", name=data.timezone), 5.2)
        self.paragraph(self.say("generated", when=_format_when(data.generated_at)), 5.2)
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

    def block(self, block: _Block) -> None:
        pdf = self.pdf
        match block.style:
            case _Style.SECTION:
                pdf.add_page()
                pdf.start_section(block.text)
                self.use("B", 16)
                self.paragraph(block.text, 8.5)
                pdf.ln(2)
                pdf.set_draw_color(*_RULE)
                pdf.set_line_width(0.3)
                pdf.line(pdf.l_margin, pdf.y, pdf.l_margin + pdf.epw, pdf.y)
                pdf.ln(3)
            case _Style.HEADING:
                self.keep_with_next(7 + 3 * _BODY_LINE)
                self.gap(6)
                self.use("B", 12.5)
                self.paragraph(block.text, 7)
                pdf.ln(1)
            case _Style.PROMPT:
                self.keep_with_next(6 + _META_LINE + 2 * _BODY_LINE)
                self.gap(4)
                self.use("B", 11.5)
                self.paragraph(block.text, 6)
            case _Style.STATUS:
                self.use("", _META_SIZE, _GRAY)
                self.paragraph(block.text, _META_LINE)
            case _Style.ENTRY:
                self.keep_with_next(_META_LINE + 2 * _BODY_LINE)
                self.gap(2.5)
                self.use("", _META_SIZE, _GRAY)
                self.paragraph(block.text, _META_LINE)
                pdf.ln(0.6)
            case _Style.TEXT:
                self.use("", _BODY_SIZE)
                self.paragraph(block.text, _BODY_LINE)
            case _Style.REMARK:
                self.use("I", _BODY_SIZE, _GRAY)
                self.paragraph(block.text, _BODY_LINE)


def write_pdf(data: ExportData, path: Path, say: Say) -> None:
    writer = _PdfWriter(say)
    pdf = writer.pdf
    pdf.set_title(say("title"))
    pdf.set_creator("Integration Companion")
    pdf.set_creation_date(data.generated_at)
    writer.title_page(data)
    for block in _content_blocks(data, say):
        writer.block(block)
    pdf.output(str(path))
