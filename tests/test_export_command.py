"""/export: the journal as Markdown and PDF files, organised by treatment."""

from __future__ import annotations

import io
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import insert

from bot.db.models import Entry
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser


def documents(requests: list[ApiRequest]) -> dict[str, bytes]:
    found = {}
    for request in requests:
        if request.method == "sendDocument":
            upload = request.params["document"]
            found[upload.filename] = upload.data
    return found


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture(autouse=True)
def own_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports build in this test's own temporary folder, so other processes' exports running
    at the same time are not counted as leftovers."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


def leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("companion-export-*")}


async def test_it_exports_the_journal_by_treatment(agreed: Harness, alice: TgUser):
    bot = agreed
    before = leftovers()
    await bot.send(alice, "/intention Face the *old* <fear> & let go")
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.send(alice, "Calm and warm")
    mood = await bot.next_prompt(alice)
    await bot.press(alice, mood.message_id, "prompt:scale:2:7")
    await bot.next_prompt(alice)
    await bot.send_update(alice, voice={"file_id": "v1", "file_unique_id": "u1", "duration": 75})
    bot.clock.advance(timedelta(hours=2))
    await bot.send(alice, "A free thought about the sea")

    requests = await bot.send_raw(alice, "/export")
    texts = [r.text or "" for r in requests if r.method == "sendMessage"]
    assert texts[0].startswith("Preparing your journal as a Markdown file and a PDF")
    files = documents(requests)
    assert sorted(files) == [
        "integration-journal-2026-11-26.md",
        "integration-journal-2026-11-26.pdf",
    ]

    markdown = files["integration-journal-2026-11-26.md"].decode()
    assert "Treatment 1" in markdown
    assert r"\*old\*" in markdown  # the patient's text is escaped for Markdown
    for text in ("Calm and warm", "A free thought about the sea", r"Check\-in", "Reflection"):
        assert text in markdown
    assert markdown.index("Calm and warm") < markdown.index("A free thought about the sea")

    pdf = files["integration-journal-2026-11-26.pdf"]
    text = pdf_text(pdf)
    for expected in ("Treatment 1", "Calm and warm", "A free thought about the sea", "Check-in"):
        assert expected in text
    assert b"/Subtype /Image" in pdf  # the mood chart
    assert leftovers() == before  # the temporary files are gone


async def test_it_exports_the_last_days_only(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "An old note from long ago")
    bot.clock.advance(timedelta(days=40))
    await bot.send(alice, "A recent note")
    files = documents(await bot.send_raw(alice, "/export 30"))
    markdown = next(data for name, data in files.items() if name.endswith(".md")).decode()
    assert "A recent note" in markdown
    assert "An old note" not in markdown


async def test_it_says_when_there_is_nothing_to_export(agreed: Harness, alice: TgUser):
    assert await agreed.send(alice, "/export") == [
        "There's nothing in your journal to export yet."
    ]
    assert await agreed.send(alice, "/export abc") == [
        "You can send /export for your whole journal, /export 30 for the last 30 days, or "
        "/export data for everything I keep about you, as a JSON file."
    ]


async def test_it_exports_a_mood_given_this_very_moment(agreed: Harness, alice: TgUser):
    # Found by the property test: the chart's start equalled its end, and drawing refused.
    bot = agreed
    await bot.send(alice, "/mood")
    await bot.press(alice, bot.fake.sent(alice.id)[-1].message_id, "mood:5")
    requests = await bot.send_raw(alice, "/export")
    assert len(documents(requests)) == 2


async def test_it_exports_moods_and_practices_without_any_treatment(
    agreed: Harness, alice: TgUser
):
    # Found by the property test: a mood chart with no treatment to mark once failed.
    bot = agreed
    await bot.send(alice, "/mood")
    await bot.press(alice, bot.fake.sent(alice.id)[-1].message_id, "mood:5")
    await bot.send(alice, "/practice meditation 10")
    bot.clock.advance(timedelta(hours=1))
    requests = await bot.send_raw(alice, "/export")
    files = documents(requests)
    assert len(files) == 2
    markdown = next(data for name, data in files.items() if name.endswith(".md")).decode()
    assert "Mood: 5/10" in markdown
    assert "Meditation, 10 min" in markdown


@pytest.mark.slow
async def test_it_exports_a_large_journal(agreed: Harness, alice: TgUser):
    bot = agreed
    start = bot.clock.now - timedelta(days=300)
    with bot.session() as session, session.begin():
        session.execute(
            insert(Entry),
            [
                {
                    "patient_id": 1,
                    "kind": "text",
                    "text": f"Entry number {n}: a walk, a breath, a thought.",
                    "chat_id": alice.id,
                    "message_id": 10_000 + n,
                    "created_at": start + timedelta(hours=2 * n),
                }
                for n in range(3000)
            ],
        )
    files = documents(await bot.send_raw(alice, "/export"))
    markdown = next(data for name, data in files.items() if name.endswith(".md")).decode()
    assert "Entry number 0:" in markdown
    assert "Entry number 2999:" in markdown
    text = pdf_text(next(data for name, data in files.items() if name.endswith(".pdf")))
    assert "Entry number 0:" in text
    assert "Entry number 2999:" in text
