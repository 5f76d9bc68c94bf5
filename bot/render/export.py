"""The journal as a Markdown file, and the blocks every export format lays out. Pure: ExportData
in, a file out (the PDF is bot/render/pdf.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, auto
from pathlib import Path

from bot.domain.export_data import (
    ExportData,
    ExportEntry,
    ExportPractice,
    ExportPrompt,
    ExportTreatment,
)
from bot.render.jinja import Say

__all__ = [
    "Block",
    "Style",
    "content_blocks",
    "format_when",
    "one_line",
    "range_line",
    "render_markdown",
    "write_markdown",
]


def format_when(moment: datetime) -> str:
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
    parts = (format_when(entry.when), _kind_label(entry, say))
    meta = " · ".join(part for part in parts if part)
    return say("edited", meta=meta) if entry.edited else meta


def _prompt_meta(prompt: ExportPrompt, say: Say) -> str:
    if prompt.sent_at is None:
        return say("state", status=prompt.status).capitalize()
    return say("sent", when=format_when(prompt.sent_at), status=prompt.status)


def range_line(data: ExportData, say: Say) -> str:
    if data.start is None:
        return say("range_all", end=format_when(data.end))
    return say("range", start=format_when(data.start), end=format_when(data.end))


def one_line(text: str) -> str:
    """Headings and labels cannot span lines in either format."""
    return " ".join(text.split())


class Style(Enum):
    SECTION = auto()  # a treatment or "Other entries"; a new page in the PDF
    HEADING = auto()  # Intention, Session notes, Prompts, Mood records, Journal entries
    PROMPT = auto()  # a prompt's title
    STATUS = auto()  # when a prompt was sent and how it stands
    ENTRY = auto()  # when an entry was written and what it is
    TEXT = auto()  # what the patient (or guide) wrote, verbatim
    REMARK = auto()  # the export's own words in place of missing content


@dataclass(frozen=True, slots=True)
class Block:
    style: Style
    text: str


def _entry_blocks(entry: ExportEntry, say: Say) -> Iterator[Block]:
    yield Block(Style.ENTRY, _entry_meta(entry, say))
    if entry.text.strip():
        yield Block(Style.TEXT, entry.text)


def _practice_blocks(practices: list[ExportPractice], say: Say) -> Iterator[Block]:
    for done in practices:
        name = one_line(done.label) or say("practice", kind=done.kind)
        meta = say("practice_meta", when=format_when(done.when), name=name, minutes=done.minutes)
        yield Block(Style.ENTRY, meta)
        if done.note.strip():
            yield Block(Style.TEXT, done.note)


def _treatment_blocks(treatment: ExportTreatment, say: Say) -> Iterator[Block]:
    heading = say("treatment", number=treatment.number, when=format_when(treatment.when))
    yield Block(Style.SECTION, heading)
    yield Block(Style.HEADING, say("intention"))
    if treatment.intention.strip():
        yield Block(Style.TEXT, treatment.intention)
    else:
        yield Block(Style.REMARK, say("no_intention"))
    notes = [(author, text) for author, text in treatment.notes if text.strip()]
    if notes:
        yield Block(Style.HEADING, say("notes"))
        for author, text in notes:
            yield Block(Style.ENTRY, say("note_by", author=author))
            yield Block(Style.TEXT, text)
    if treatment.prompts:
        yield Block(Style.HEADING, say("prompts"))
        for prompt in treatment.prompts:
            yield Block(Style.PROMPT, one_line(prompt.title))
            yield Block(Style.STATUS, _prompt_meta(prompt, say))
            for answer in prompt.answers:
                yield from _entry_blocks(answer, say)
    for heading, entries in ((say("moods"), treatment.moods), (say("entries"), treatment.entries)):
        if entries:
            yield Block(Style.HEADING, heading)
            for entry in entries:
                yield from _entry_blocks(entry, say)
    if treatment.practices:
        yield Block(Style.HEADING, say("practices"))
        yield from _practice_blocks(treatment.practices, say)


def content_blocks(data: ExportData, say: Say) -> Iterator[Block]:
    """Everything after the title, in the same order for every format."""
    for treatment in data.treatments:
        yield from _treatment_blocks(treatment, say)
    if data.other_entries:
        yield Block(Style.SECTION, say("other_entries"))
        for entry in data.other_entries:
            yield from _entry_blocks(entry, say)
    if data.other_practices:
        yield Block(Style.SECTION, say("other_practices"))
        yield from _practice_blocks(data.other_practices, say)
    if data.goals:
        yield Block(Style.SECTION, say("goals"))
        for goal in data.goals:
            yield Block(Style.PROMPT, one_line(goal.text))
            yield Block(Style.STATUS, say("goal_meta", kind=goal.kind, status=goal.status))
            for week, answer, note in goal.checks:
                yield Block(Style.ENTRY, say("goal_check", week=week, answer=answer))
                if note.strip():
                    yield Block(Style.TEXT, note)
    if data.is_empty:
        yield Block(Style.REMARK, say("nothing"))


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


def _markdown_block(block: Block) -> str:
    match block.style:
        case Style.TEXT:
            return _markdown_quote(block.text)
        case Style.SECTION:
            return f"## {_escape_line(block.text)}\n\n"
        case Style.HEADING:
            return f"### {_escape_line(block.text)}\n\n"
        case Style.PROMPT:
            return f"#### {_escape_line(block.text)}\n\n"
        case Style.STATUS | Style.ENTRY | Style.REMARK:
            return f"*{_escape_line(block.text)}*\n\n"


def _markdown_pieces(data: ExportData, say: Say) -> Iterator[str]:
    yield f"# {_escape_line(say('title'))}\n\n"
    name = one_line(data.patient_name)
    if name:
        yield f"**{_escape_line(name)}**\n\n"
    yield f"{_escape_line(range_line(data, say))}  \n"
    yield f"{_escape_line(say('timezone', name=data.timezone))}  \n"
    yield f"{_escape_line(say('generated', when=format_when(data.generated_at)))}\n\n"
    if data.mood_chart_png is not None:
        yield f"*{_escape_line(say('chart_in_pdf'))}*\n\n"
    for block in content_blocks(data, say):
        yield _markdown_block(block)


def render_markdown(data: ExportData, say: Say) -> str:
    return "".join(_markdown_pieces(data, say))


def write_markdown(data: ExportData, path: Path, say: Say) -> None:
    """Write block by block, so a long journal never sits in memory as one string."""
    with path.open("w", encoding="utf-8", newline="\n") as file:
        file.writelines(_markdown_pieces(data, say))
