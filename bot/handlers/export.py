"""/export: the journal as a Markdown file and a PDF, to bring to a therapist."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tempfile
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from telegram import Bot, Update
from telegram.ext import ContextTypes

from bot.companion import Companion
from bot.core.moods import MoodPoint, TreatmentMark
from bot.core.text import small_number
from bot.domain.export_data import ExportData, collect_export
from bot.domain.patients import zone_of
from bot.domain.rights import personal_data
from bot.handlers.common import FromPatient, from_patient, the_patient
from bot.render.chart import mood_chart_png
from bot.render.export import write_markdown

MAX_EXPORT_DAYS = 3650


def with_mood_chart(res: Companion, data: ExportData, zone: ZoneInfo) -> ExportData:
    """The data with its mood chart, when there are mood figures (drawn off the event loop)."""
    groups = [t.moods + [a for p in t.prompts for a in p.answers] for t in data.treatments]
    entries = [e for group in groups for e in group] + data.other_entries
    moods = sorted(
        (MoodPoint(e.when, e.mood) for e in entries if e.mood is not None), key=lambda p: p.when
    )
    if not moods:
        return data
    marks = [TreatmentMark(t.when, t.number) for t in data.treatments]
    earliest = min([moods[0].when, *(m.when for m in marks)])
    # A chart needs some width: a mood given this very moment still gets an hour of it.
    start = data.start or min(earliest, data.end - timedelta(hours=1))
    png = mood_chart_png(
        moods,
        marks,
        start,
        data.end,
        zone,
        title=res.label("chart_title_export"),
    )
    return dataclasses.replace(data, mood_chart_png=png)


def write_files(res: Companion, data: ExportData, folder: Path, zone: ZoneInfo) -> list[Path]:
    """Both files, written in `folder`; blocking work, run in a thread."""
    stem = f"integration-journal-{data.end:%Y-%m-%d}"
    markdown, pdf = folder / f"{stem}.md", folder / f"{stem}.pdf"
    complete = with_mood_chart(res, data, zone)
    say = res.texts.sayer("journal_words.txt")
    # fpdf2 loads on the first export, not when the bot starts.
    from bot.render.pdf import write_pdf

    write_markdown(complete, markdown, say)
    write_pdf(complete, pdf, say)
    return [markdown, pdf]


async def send_personal_data(incoming: FromPatient) -> None:
    """Everything stored about the patient, as a JSON file (its shape is in the README)."""
    res = incoming.res
    now = res.clock()

    def read() -> bytes:
        with res.sessions.begin() as session:
            data = personal_data(session, the_patient(session, incoming.user_id), now)
        return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")

    # Everything about the patient, decrypted: off the event loop, so other chats go on.
    content = await asyncio.to_thread(read)
    await incoming.message.reply_document(
        content,
        filename=f"integration-companion-data-{now:%Y-%m-%d}.json",
        caption=res.label("export_caption_json"),
    )


async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/export (everything) or /export 30 (the last 30 days): a Markdown file and a PDF."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res, message, args = incoming.res, incoming.message, context.args or []
    if [arg.lower() for arg in args] == ["data"]:
        await send_personal_data(incoming)
        return
    days = small_number(args[0]) if len(args) == 1 else None
    if args and (days is None or not 1 <= days <= MAX_EXPORT_DAYS):
        await message.reply_html(res.texts.render("export.html", outcome="usage"))
        return

    def collect() -> tuple[ExportData, ZoneInfo]:
        with res.sessions.begin() as session:
            patient = the_patient(session, incoming.user_id)
            data = collect_export(
                session, patient, res.schedule, res.clock(), res.settings.default_timezone, days
            )
            return data, zone_of(patient, res.settings.default_timezone)

    # The whole journal, decrypted: off the event loop, so other chats go on.
    data, zone = await asyncio.to_thread(collect)
    if data.is_empty:
        await message.reply_html(res.texts.render("export.html", outcome="empty", days=days))
        return
    await message.reply_html(res.texts.render("export.html", outcome="preparing"))
    await send_export_files(res, message.get_bot(), [message.chat_id], data, zone)


async def send_export_files(
    res: Companion, bot: Bot, chat_ids: list[int], data: ExportData, zone: ZoneInfo
) -> None:
    """The Markdown file and the PDF, to each chat (the patient's, or guides it is shared
    with). Built in a private temporary folder, sent, then removed: nothing stays on disk."""
    with tempfile.TemporaryDirectory(prefix="companion-export-") as folder:
        files = await asyncio.to_thread(write_files, res, data, Path(folder), zone)
        for chat_id in chat_ids:
            for path in files:
                with path.open("rb") as file:
                    await bot.send_document(
                        chat_id,
                        file,
                        filename=path.name,
                        caption=res.label(f"export_caption_{path.suffix[1:]}", zone=zone.key),
                    )
