"""The journal export: Markdown that renders the patient's words literally, and a printable PDF."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from pypdf import PdfReader

from bot.domain.export_data import ExportData, ExportEntry, ExportPrompt, ExportTreatment
from bot.render.export import render_markdown, write_markdown
from bot.render.jinja import Renderer
from bot.render.pdf import write_pdf

SAY = Renderer().sayer("journal_words.txt")

BERLIN = ZoneInfo("Europe/Berlin")
HOSTILE = "<b>bold</b> & *star* _under_ `tick` # head"
HEBREW = "שלום עולם"
MARKDOWN_SPECIALS = set("\\`*_{}[]<>()#+-.!|~&=$")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BERLIN)


def sample() -> ExportData:
    first = ExportTreatment(
        number=1,
        when=at(24, 18),
        intention=HOSTILE,
        notes=[("guide", "The guide noted: calm throughout.\nAsked for water twice.")],
        prompts=[
            ExportPrompt(
                title="How are you this morning?",
                sent_at=at(25, 9),
                status="answered",
                answers=[
                    ExportEntry(at(25, 9, 12), "text", "Rested.\nStill a bit foggy.", edited=True),
                    ExportEntry(at(25, 13, 40), "text", "1. Better after lunch\n- clearer"),
                ],
            ),
            ExportPrompt(
                title="What did your body tell you?", sent_at=at(25, 17), status="skipped"
            ),
            ExportPrompt(
                title="Say it out loud",
                sent_at=at(26, 9),
                status="answered",
                answers=[ExportEntry(at(26, 9, 30), "voice", "", duration_seconds=42)],
            ),
            ExportPrompt(
                title="Mood check",
                sent_at=at(26, 20),
                status="answered",
                answers=[ExportEntry(at(26, 20, 5), "mood", "steadier", mood=7)],
            ),
        ],
        moods=[ExportEntry(at(27, 8), "mood", "Tired but fine", mood=5)],
        entries=[
            ExportEntry(at(27, 21), "text", f"Hebrew first: {HEBREW} and Latin after"),
            ExportEntry(at(28, 10), "photo", "A seedling 🌱 on the windowsill"),
        ],
    )
    second = ExportTreatment(
        number=2,
        when=at(30, 10),
        intention="",
        prompts=[ExportPrompt(title="Arriving", sent_at=None, status="not_sent")],
    )
    return ExportData(
        patient_name="Alice",
        timezone="Europe/Berlin",
        generated_at=at(30, 12),
        start=at(20, 0),
        end=at(30, 12),
        treatments=[first, second],
        other_entries=[
            ExportEntry(at(21, 7), "text", "# Not a heading\n    four spaces, not code\n{nb}"),
            ExportEntry(at(21, 8), "document", "Reading list"),
        ],
    )


def written_texts(data: ExportData) -> list[str]:
    """What the patient and the guide wrote, in the order the export shows it."""
    texts: list[str] = []
    for treatment in data.treatments:
        texts.extend([treatment.intention, *(text for _, text in treatment.notes)])
        for prompt in treatment.prompts:
            texts.extend(answer.text for answer in prompt.answers)
        texts.extend(entry.text for entry in [*treatment.moods, *treatment.entries])
    texts.extend(entry.text for entry in data.other_entries)
    return [text for text in texts if text]


def quoted_texts(markdown: str) -> list[str]:
    """A tiny Markdown reader: the block quotes, with escapes and hard breaks undone."""
    texts: list[str] = []
    current: list[str] | None = None
    for line in markdown.split("\n"):
        if not line.startswith(">"):
            if current is not None:
                texts.append("\n".join(current))
            current = None
            continue
        content = line.removeprefix(">").removeprefix(" ").removesuffix("  ")
        content = re.sub(r"\\(.)", r"\1", content)
        indent = len(content) - len(content.lstrip("\u00a0"))
        (current := current if current is not None else []).append(" " * indent + content[indent:])
    return texts


def pdf_text(path: Path, pages: slice = slice(None)) -> str:
    reader = PdfReader(path)
    return "\n".join(page.extract_text() for page in reader.pages[pages])


def flat(text: str) -> str:
    """Line wrapping in the PDF moves line ends; compare words only."""
    return " ".join(text.split())


def test_it_keeps_every_text_verbatim_and_in_order_in_markdown() -> None:
    data = sample()
    assert quoted_texts(render_markdown(data, SAY)) == written_texts(data)


def test_it_escapes_hostile_text_in_markdown() -> None:
    markdown = render_markdown(sample(), SAY)
    unescaped = re.sub(r"\\.", "", markdown)
    for raw in ("*star*", "<b>", "_under_", "`tick`", "# head", "1. Better", "- clearer", "{nb}"):
        assert raw not in unescaped
    assert r"\<b\>bold\</b\> \& \*star\* \_under\_ \`tick\` \# head" in markdown
    for line in markdown.split("\n"):
        if line.startswith(">"):
            unescaped = re.sub(r"\\.", "", line[1:])
            assert not MARKDOWN_SPECIALS & set(unescaped), line
            assert not unescaped.startswith("    "), line  # an indented code block


def test_it_lays_out_treatments_prompts_and_entries_in_markdown() -> None:
    markdown = render_markdown(sample(), SAY)
    expected_in_order = [
        "# Integration journal",
        "**Alice**",
        "From Friday 20 November 2026, 00:00 to Monday 30 November 2026, 12:00",
        "Time zone: Europe/Berlin",
        "Generated Monday 30 November 2026, 12:00",
        "## Treatment 1 — Tuesday 24 November 2026, 18:00",
        "### Intention",
        "### Session notes",
        "### Prompts",
        "#### How are you this morning?",
        "*Sent Wednesday 25 November 2026, 09:00 · answered*",
        "*Wednesday 25 November 2026, 09:12 \\(edited\\)*",
        "#### What did your body tell you?",
        "*Sent Wednesday 25 November 2026, 17:00 · skipped*",
        "*Thursday 26 November 2026, 09:30 · Voice note \\(0:42\\)*",
        "*Thursday 26 November 2026, 20:05 · Mood: 7/10*",
        "### Mood records",
        "*Friday 27 November 2026, 08:00 · Mood: 5/10*",
        "### Journal entries",
        "*Saturday 28 November 2026, 10:00 · Photo*",
        "## Treatment 2 — Monday 30 November 2026, 10:00",
        "*No intention was set\\.*",
        "#### Arriving",
        "*Not sent yet*",
        "## Other entries",
        "*Saturday 21 November 2026, 08:00 · Document*",
    ]
    positions = [markdown.index(line) for line in expected_in_order]
    assert positions == sorted(positions)
    assert "chart" not in markdown


def test_it_says_everything_up_to_the_end_when_there_is_no_start() -> None:
    markdown = render_markdown(replace(sample(), start=None), SAY)
    assert "Everything up to Monday 30 November 2026, 12:00" in markdown


def test_it_leaves_out_other_entries_when_there_are_none() -> None:
    data = replace(sample(), other_entries=[])
    assert "Other entries" not in render_markdown(data, SAY)


def test_it_points_to_the_pdf_for_the_mood_chart() -> None:
    markdown = render_markdown(replace(sample(), mood_chart_png=png()), SAY)
    assert "The mood chart is in the PDF version of this export" in markdown


def test_it_writes_the_markdown_it_renders(tmp_path: Path) -> None:
    data = sample()
    write_markdown(data, tmp_path / "journal.md", SAY)
    assert (tmp_path / "journal.md").read_text(encoding="utf-8") == render_markdown(data, SAY)


def test_it_writes_a_pdf_with_every_heading_and_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = sample()
    with caplog.at_level(logging.WARNING):
        write_pdf(data, tmp_path / "journal.pdf", SAY)
    assert not caplog.records  # e.g. fpdf2's "missing glyphs": the emoji was replaced
    text = flat(pdf_text(tmp_path / "journal.pdf"))
    for heading in (
        "Integration journal",
        "Alice",
        "From Friday 20 November 2026, 00:00 to Monday 30 November 2026, 12:00",
        "Treatment 1 — Tuesday 24 November 2026, 18:00",
        "Intention",
        "Session notes",
        "How are you this morning?",
        "Voice note (0:42)",
        "Mood: 7/10",
        "(edited)",
        "Mood records",
        "Journal entries",
        "Treatment 2 — Monday 30 November 2026, 10:00",
        "No intention was set.",
        "Other entries",
    ):
        assert heading in text
    for written in written_texts(data):
        if HEBREW in written or "🌱" in written:
            continue
        assert flat(written) in text
    assert "Hebrew first:" in text
    assert "and Latin after" in text
    assert "A seedling" in text
    assert "on the windowsill" in text


def test_it_draws_right_to_left_text_in_visual_order(tmp_path: Path) -> None:
    write_pdf(sample(), tmp_path / "journal.pdf", SAY)
    # pypdf turns right-to-left runs drawn left to right back into reading order, so Hebrew
    # drawn in reading order (as fpdf2 alone would draw it) would come out backwards here.
    text = pdf_text(tmp_path / "journal.pdf")
    assert HEBREW in text
    assert HEBREW[::-1] not in text


def test_it_starts_each_treatment_on_a_new_page_with_a_bookmark(tmp_path: Path) -> None:
    write_pdf(sample(), tmp_path / "journal.pdf", SAY)
    reader = PdfReader(tmp_path / "journal.pdf")
    page_texts = [page.extract_text() for page in reader.pages]
    assert page_texts[1].startswith("Treatment 1 — ")
    assert any(text.startswith("Treatment 2 — ") for text in page_texts[2:])
    assert any(text.startswith("Other entries") for text in page_texts[2:])
    assert [item.title for item in reader.outline] == [  # type: ignore[union-attr]
        "Treatment 1 — Tuesday 24 November 2026, 18:00",
        "Treatment 2 — Monday 30 November 2026, 10:00",
        "Other entries",
    ]


def test_it_numbers_the_pages_in_the_footer(tmp_path: Path) -> None:
    write_pdf(sample(), tmp_path / "journal.pdf", SAY)
    reader = PdfReader(tmp_path / "journal.pdf")
    total = len(reader.pages)
    assert total >= 4
    for number, page in enumerate(reader.pages[1:], start=2):
        assert f"{number} / {total}" in page.extract_text()


def with_other_entries(*texts: str) -> ExportData:
    entries = [ExportEntry(at(21, 9, minute), "text", text) for minute, text in enumerate(texts)]
    return replace(sample(), treatments=[], other_entries=entries)


def test_it_replaces_what_the_font_cannot_draw(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = with_other_entries(
        "Family 👨\u200d👩\u200d👧 thumbs 👍🏽 flag 🇩🇪 heart ❤️ end",
        "Chinese 你好 control \x00\x1b tab\there end",
        "Arabic مرحبا بالعالم end",
    )
    with caplog.at_level(logging.WARNING):
        write_pdf(data, tmp_path / "journal.pdf", SAY)
    assert not caplog.records
    text = pdf_text(tmp_path / "journal.pdf")
    # Joiners and variation selectors stay: DejaVu has them, and they take no room.
    assert "Family □\u200d□\u200d□ thumbs □ flag □□ heart ❤\ufe0f end" in text
    assert "Chinese □□ control" in text
    assert "control  tab    here end" in text
    assert "Arabic" in text


def test_it_breaks_a_word_longer_than_a_line(tmp_path: Path) -> None:
    link = "https://example.org/" + "abcdefghij" * 40
    write_pdf(with_other_entries(f"Before {link} after"), tmp_path / "journal.pdf", SAY)
    text = pdf_text(tmp_path / "journal.pdf")
    assert link in "".join(text.split())
    assert "Before" in text
    assert "after" in text


def png(width: int = 800, height: int = 400) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_it_embeds_the_mood_chart_in_the_pdf(tmp_path: Path) -> None:
    write_pdf(replace(sample(), mood_chart_png=png()), tmp_path / "with_chart.pdf", SAY)
    write_pdf(sample(), tmp_path / "without_chart.pdf", SAY)
    with_chart = PdfReader(tmp_path / "with_chart.pdf")
    assert len(with_chart.pages[0].images) == 1
    assert "Mood over time" in with_chart.pages[0].extract_text()
    assert not any(page.images for page in PdfReader(tmp_path / "without_chart.pdf").pages)


def test_it_gives_a_tall_chart_a_page_of_its_own(tmp_path: Path) -> None:
    write_pdf(replace(sample(), mood_chart_png=png(400, 800)), tmp_path / "journal.pdf", SAY)
    reader = PdfReader(tmp_path / "journal.pdf")
    assert not reader.pages[0].images
    assert len(reader.pages[1].images) == 1
    assert reader.pages[2].extract_text().startswith("Treatment 1 — ")


def test_it_exports_an_empty_period(tmp_path: Path) -> None:
    data = replace(sample(), treatments=[], other_entries=[])
    write_markdown(data, tmp_path / "journal.md", SAY)
    write_pdf(data, tmp_path / "journal.pdf", SAY)
    remark = "Nothing was recorded in this period."
    assert remark.replace(".", "\\.") in (tmp_path / "journal.md").read_text(encoding="utf-8")
    assert remark in pdf_text(tmp_path / "journal.pdf")


def large_journal(entries: int) -> ExportData:
    per_treatment = entries // 10
    words = "I noticed the light on the water and felt something loosen. " * 4
    treatments = [
        ExportTreatment(
            number=number + 1,
            when=at(1, 10) + timedelta(days=3 * number),
            intention=f"Intention {number + 1}",
            entries=[
                ExportEntry(
                    at(1, 12) + timedelta(days=3 * number, minutes=index),
                    "text",
                    f"Entry {number * per_treatment + index:04d}. {words}\nA second line.",
                )
                for index in range(per_treatment)
            ],
        )
        for number in range(10)
    ]
    return replace(sample(), treatments=treatments, other_entries=[])


def test_it_exports_a_large_journal(tmp_path: Path) -> None:
    data = large_journal(3000)
    write_markdown(data, tmp_path / "journal.md", SAY)
    write_pdf(data, tmp_path / "journal.pdf", SAY)
    markdown = (tmp_path / "journal.md").read_text(encoding="utf-8")
    assert markdown.index("Entry 0000\\.") < markdown.index("Entry 2999\\.")
    assert "Entry 0000." in pdf_text(tmp_path / "journal.pdf", slice(1, 2))
    assert "Entry 2999." in pdf_text(tmp_path / "journal.pdf", slice(-1, None))
