"""Generated updates from three patients through the real Application (hypothesis).

Three properties hold after every step:

(a) nothing fails unhandled: no record at ERROR from the bot (or python-telegram-bot), and every
    update is handled within the harness's wait;
(b) Telegram would accept every reply: no send or edit the fake Bot API refused, no inline
    button Telegram would refuse, no caption or callback answer over Telegram's limits;
(c) no patient reaches another's data: each patient writes a secret marker of their own, and no
    request to one chat (or one presser's callback answer) carries another patient's marker; a
    button pressed on another person's message, or forged callback data naming another
    patient's rows, changes nothing in the database and sends nothing but the callback answer.

`tests/test_fuzz.py` is the seeded-random predecessor; this one lets hypothesis generate the
updates (and shrink a failure to the shortest story that shows it).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import create_engine, select, text
from telegram import Update

from bot.app import MENU
from bot.config import Settings
from bot.db import models
from bot.db.crypto import new_key
from bot.domain.goals import ANSWERS as GOAL_ANSWERS
from bot.domain.journal import PromptAction, open_prompt
from bot.domain.practices import MINUTE_CHOICES
from bot.telegram.keyboards import (
    CONSENT_AGREE,
    DELETE_NO,
    DELETE_YES,
    FILE_PREFIX,
    GOAL_PREFIX,
    JOURNAL_PREFIX,
    MINUTES_PREFIX,
    MOOD_PREFIX,
    SEARCH_PREFIX,
    TREATMENT_PREFIX,
    WEEKLY_ON,
    prompt_callback,
)
from tests.auxil.harness import FakeClock, Harness
from tests.fake_telegram import (
    BOT_USERNAME,
    HTML_TAGS,
    MAX_MESSAGE_LENGTH,
    ApiError,
    ApiRequest,
    FakeTelegram,
    TgUser,
)

REPO_PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
START = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)  # a Wednesday afternoon, as in conftest


@dataclass(frozen=True)
class Person:
    user: TgUser
    marker: str  # in this patient's texts, captions, file ids and name; nowhere else


ALICE = Person(TgUser(id=1001, first_name="Alice QZALICEZQ", username="alice"), "QZALICEZQ")
BOB = Person(TgUser(id=1002, first_name="Bob QZBOBZQ"), "QZBOBZQ")
CAROL = Person(TgUser(id=1003, first_name="Carol QZCAROLZQ", language_code="he"), "QZCAROLZQ")
PEOPLE = (ALICE, BOB, CAROL)

GROUP = {"id": -1001234, "type": "supergroup", "title": "Integration circle"}
SMALL_GROUP = {"id": -5678, "type": "group", "title": "Friends"}
CHANNEL = {"id": -1009999, "type": "channel", "title": "Clinic news"}
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group"}

# Telegram's limits the fake does not check itself.
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
# Telegram answers "message is not modified" to an edit that changes nothing. The bot makes such
# an edit knowingly and ignores the answer (taking the buttons off a prompt answered a second
# time, whose buttons went with the first answer): the message already shows what it should, so
# it is not a reply Telegram refused. Any other refusal of an edit counts.
NOT_MODIFIED = "message is not modified"

# -- strategies ----------------------------------------------------------------------------

TRICKY = [
    "<b>",
    "</b>",
    "<i>x</i>",
    "<a href='tg://user?id=1002'>me</a>",
    "<tg-spoiler>",
    "</blockquote>",
    "<script>alert(1)</script>",
    "<",
    ">",
    "&",
    "&amp;",
    "&lt;b&gt;",
    "&#0;",
    "*bold*",
    "_it_",
    "`code`",
    "```pre```",
    "[link](http://example.com)",
    "||spoiler||",
    "\\",
    "{{ 7*7 }}",
    "{% raw %}",
    "%s",
    "'; DROP TABLE entries; --",
    "\u200b",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u202e",
    "\u2066",
    "\ufeff",
    "e\u0301",
    "שלום",
    "مرحبا بك",
    "🌱",
    "👨‍👩‍👧",
    "🏳️‍🌈",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\n",
    "\n\n",
    "   ",
    "\t",
    "garden",
    "father",
    "/journal",
    "@" + BOT_USERNAME,
    "#tag",
    "I want to die",
    "I'm going to kill myself",
    "I died and was reborn in the session",
    "cut myself",
]
FRAGMENTS = st.one_of(
    st.sampled_from(TRICKY),
    st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=24),
)
WORDS = [
    "",
    "off",
    "on",
    "auto",
    "data",
    "search",
    "weekly",
    "sun",
    "Mon",
    "18:00",
    "25:99",
    "8-22",
    "22:00-08:00",
    "00:00-00:00",
    "23:59-00:01",
    "9.30",
    "yesterday",
    "today",
    "tomorrow",
    "14:30",
    "Europe/Berlin",
    "europe/BERLIN",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "Etc/GMT+12",
    "UTC",
    "Mars/Olympus",
    "GB",
    "de",
    "US",
    "XX",
    "0",
    "1",
    "3",
    "7",
    "30",
    "365",
    "366",
    "3650",
    "-5",
    "999999999999999999999",
    "٣",
    "garden",
]
COMMANDS = [
    *MENU,
    *(name.upper() for name in MENU[:3]),
    f"journal@{BOT_USERNAME}",
    f"start@{BOT_USERNAME}",
    "recap@someone_else_bot",
    "nonsense",
    "journal_",
    "x" * 40,
]
# Every feature, well formed, so each run reaches deep into the bot, not only its usage texts.
FEATURES = [
    "/start",
    "/help",
    "/journal",
    "/journal 1",
    "/journal 2",
    "/journal search {marker}",
    "/journal search garden",
    "/recap",
    "/recap 30",
    "/recap weekly",
    "/recap weekly on",
    "/recap weekly off",
    "/recap weekly sun 18:00",
    "/export",
    "/export 7",
    "/export data",
    "/mood",
    "/intention To meet my grief with kindness {marker}",
    "/intention",
    "/timezone America/New_York",
    "/timezone Pacific/Chatham",
    "/timezone",
    "/quiet 23:00-07:00",
    "/quiet off",
    "/pause",
    "/resume",
    "/country GB",
    "/country auto",
    "/crisis",
    "/privacy",
    "/delete",
    "/practice",
    "/remind 08:00 meditation",
    "/remind off",
    "/goal add build: walk every morning {marker}",
    "/goal add break: scrolling at night",
    "/goals",
    "/notes",
    "/notes {marker} what my guide said about the garden",
    "/guide",
    "/guide invite",
    "/guide join 123456",
    "/share recap",
    "/share export",
    "{marker} I saw my father's garden",
]
MEDIA_KINDS = [
    "voice",
    "audio",
    "video",
    "video_note",
    "document",
    "animation",
    "photo",
    "sticker",
    "location",
    "venue",
    "contact",
    "dice",
    "poll",
]
CAPTIONED = {"voice", "audio", "video", "document", "animation", "photo"}


def utf16_length(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


def clip(value: str, limit: int) -> str:
    """At most `limit` UTF-16 code units, as Telegram counts, never half a character."""
    while utf16_length(value) > limit:
        value = value[: max(0, len(value) - (utf16_length(value) - limit + 1) // 2)]
    return value


@st.composite
def message_texts(draw: st.DrawFn, marker: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """What a patient may type: markup characters, invisible and right-to-left ones, emoji,
    crisis words, now and then their own marker, and sometimes as long as Telegram allows."""
    parts = draw(st.lists(FRAGMENTS, max_size=10))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), marker)
    value = draw(st.sampled_from([" ", "", "\n"])).join(parts)
    if draw(st.integers(0, 12)) == 0:  # exactly at the limit, or just below
        value = (value or marker) * (limit // max(1, utf16_length(value or marker)) + 1)
        value = clip(value, limit - draw(st.sampled_from([0, 0, 1, 2])))
    value = clip(value, limit)
    return value if value.strip() else marker


def command_texts(marker: str) -> st.SearchStrategy[str]:
    argument = st.one_of(
        st.sampled_from(WORDS),
        st.integers(-(10**6), 10**12).map(str),
        message_texts(marker, limit=120),
    )
    return st.builds(
        lambda name, args, sep: clip(f"/{name}" + "".join(sep + a for a in args), 4096),
        st.sampled_from(COMMANDS),
        st.lists(argument, max_size=4),
        st.sampled_from([" ", "\n"]),
    )


GARBAGE_DATA = st.one_of(
    st.sampled_from(
        [
            "",
            "garbage",
            "prompt:",
            "prompt:later",
            "prompt:scale:1",
            "prompt:scale:1:7:9",
            "prompt:fly:1",
            "journal:",
            "journal:-1",
            "journal:99999999999999999999",
            "jsearch:0:",
            "jsearch:x:garden",
            "jtreat:0",
            "file:",
            "file:abc",
            "mood:0",
            "mood:11",
            "mood:5:5",
            "delete:maybe",
            "weekly:off",
            "consent:agree ",
        ]
    ),
    st.text(max_size=64).map(lambda value: value.encode()[:64].decode(errors="ignore")),
)


def media_fields(kind: str, file_id: str) -> dict[str, Any]:
    file = {"file_id": file_id, "file_unique_id": f"u-{file_id}"}
    match kind:
        case "voice" | "audio":
            return {kind: file | {"duration": 42}}
        case "video" | "animation":
            media = file | {"width": 320, "height": 240, "duration": 7}
            # An animation message carries the same file as a document, as Telegram sends it.
            return {kind: media} | ({"document": file} if kind == "animation" else {})
        case "video_note":
            return {"video_note": file | {"length": 240, "duration": 9}}
        case "document":
            return {"document": file | {"file_name": f"{file_id}.txt", "mime_type": "text/plain"}}
        case "photo":
            return {
                "photo": [file | {"width": 90, "height": 90}, file | {"width": 800, "height": 800}]
            }
        case "sticker":
            return {
                "sticker": file
                | {
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                }
            }
        case "location":
            return {"location": {"latitude": 52.52, "longitude": 13.40}}
        case "venue":
            return {
                "venue": {
                    "location": {"latitude": 52.52, "longitude": 13.40},
                    "title": f"Clinic {file_id}",
                    "address": "Somewhere 1",
                },
                "location": {"latitude": 52.52, "longitude": 13.40},
            }
        case "contact":
            return {"contact": {"phone_number": "+4930123456", "first_name": file_id}}
        case "dice":
            return {"dice": {"emoji": "🎲", "value": 4}}
        case _:
            return {"poll": poll(file_id)}


def poll(question: str) -> dict[str, Any]:
    return {
        "id": f"poll-{question}",
        "question": question,
        "options": [
            {"persistent_id": "a", "text": "yes", "voter_count": 0},
            {"persistent_id": "b", "text": "no", "voter_count": 0},
        ],
        "total_voter_count": 0,
        "is_closed": False,
        "is_anonymous": True,
        "type": "regular",
        "allows_multiple_answers": False,
        "allows_revoting": False,
        "members_only": False,
    }


def command_entities(value: str) -> list[dict[str, Any]]:
    if not value.startswith("/"):
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_length(value.split()[0])}]


def buttons(markup: object) -> list[str]:
    if not isinstance(markup, dict):
        return []
    return [
        button["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for button in row
        if "callback_data" in button
    ]


# -- the fake Bot API, remembering why it refused what it refused ----------------------------


class RecordingTelegram(FakeTelegram):
    """The fake Bot API; it also keeps the reason of each refusal, and can deliver presses whose
    message Telegram would not give (inaccessible, or showing a forged button)."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals: dict[int, str] = {}  # id(request.params) -> the error's description
        self.callback_users: dict[str, int] = {}  # callback query id -> who pressed

    def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        try:
            return super()._dispatch(method, params)
        except ApiError as error:
            self.refusals[id(params)] = error.description
            raise

    def callback_update(
        self, user: TgUser, message_id: int, data: str, *, chat_id: int | None = None
    ) -> int:
        update_id = super().callback_update(user, message_id, data, chat_id=chat_id)
        self.callback_users[self.pushed[update_id]["callback_query"]["id"]] = user.id
        return update_id

    def raw_callback_update(self, user: TgUser, data: str, **where: Any) -> int:
        """A press with `message` (or `inline_message_id`) given as is."""
        query_id = f"raw-{next(self._ids)}"
        self._callback_query_ids.add(query_id)
        self.callback_users[query_id] = user.id
        query = {
            "id": query_id,
            "from": user.to_dict(),
            "chat_instance": f"instance-{user.id}",
            "data": data,
            **where,
        }
        return self.push_update({"callback_query": query})


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self) -> str:
        formatter = logging.Formatter("%(name)s: %(message)s")
        return "\n".join(
            formatter.format(record)
            + ("\n" + formatter.formatException(record.exc_info) if record.exc_info else "")
            for record in self.records
        )


# -- the machine ---------------------------------------------------------------------------

PATIENT = st.sampled_from(PEOPLE)
STATS = {"examples": 0, "updates": 0}


class CompanionMachine(RuleBasedStateMachine):
    """The real Application against the fake Bot API, on its own event loop and database."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.TemporaryDirectory(prefix="companion-properties-")
        self.errors = ErrorRecords()
        for name in ("bot", "telegram"):
            logging.getLogger(name).addHandler(self.errors)
        self.fake = RecordingTelegram()
        self.bot: Harness | None = None
        self.checked = 0  # requests already checked by the invariant
        self.group_message_ids = itertools.count(1)
        self.run(self.fake.start())
        settings = Settings(
            _env_file=None,
            telegram_bot_token=self.fake.token,
            telegram_api_base_url=self.fake.base_url,
            database_url=database_url(Path(self.folder.name)),
            prompts_dir=REPO_PROMPTS,
            dispatch_interval_seconds=3600,  # the rules run the dispatcher themselves
            default_timezone="Europe/Berlin",
            rate_limit_overall=1000,
            rate_limit_per_chat=1000,
            rate_limit_chat_burst=100,
            telegram_timeout_seconds=2,
            data_keys=new_key() if os.environ.get("TEST_DATABASE_URL") else None,
        )
        self.bot = Harness(settings, self.fake, FakeClock(START))
        self.run(self.bot.start())

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        STATS["examples"] += 1
        STATS["updates"] += len(self.fake.pushed)
        try:
            try:
                if self.bot is not None:
                    self.run(self.bot.stop())
            finally:
                self.run(self.fake.stop())
                # Whatever a failed stop left running, so the loop closes clean.
                leftovers = asyncio.all_tasks(self.loop)
                for task in leftovers:
                    task.cancel()
                if leftovers:
                    self.run(settle(leftovers))
                self.run(self.loop.shutdown_asyncgens())
                self.run(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()
            for name in ("bot", "telegram"):
                logging.getLogger(name).removeHandler(self.errors)
            self.folder.cleanup()

    @property
    def harness(self) -> Harness:
        assert self.bot is not None
        return self.bot

    # -- what the rules look at --------------------------------------------------------------

    def bot_messages(self, chat_id: int) -> list[int]:
        """The ids of the messages the bot sent to a chat, oldest first."""
        return sorted(
            {
                request.message_id
                for request in self.fake.requests
                if request.chat_id == chat_id
                and request.method.startswith("send")
                and isinstance(request.result, dict)
            }
        )

    def current_buttons(self, chat_id: int) -> list[tuple[int, str]]:
        return [
            (message_id, data)
            for message_id in self.bot_messages(chat_id)
            for data in buttons(self.fake.bot_message(chat_id, message_id).get("reply_markup"))
        ]

    def stale_buttons(self, chat_id: int) -> list[tuple[int, str]]:
        """Buttons as the bot once sent them, some long gone."""
        return [
            (request.message_id, data)
            for request in self.fake.requests
            if request.chat_id == chat_id and isinstance(request.result, dict)
            for data in buttons(request.result.get("reply_markup"))
        ]

    def own_messages(self, user: TgUser) -> list[dict[str, Any]]:
        """The messages the patient sent in their private chat (as Telegram delivered them)."""
        return [
            update["message"]
            for update in self.fake.pushed.values()
            if "message" in update and update["message"]["chat"]["id"] == user.id
        ]

    def others_rows(self, user: TgUser) -> dict[str, list[Any]]:
        """Other patients' rows a forgery would aim at: their open prompts (what Later or Skip
        would change), all their prompts, their entries (those with a file first), practices
        and goals (newest first), and the words of their entries."""
        assert self.harness.companion is not None
        schedule = self.harness.companion.schedule
        with self.harness.session() as session:
            others = session.scalars(
                select(models.Patient).where(models.Patient.telegram_user_id != user.id)
            ).all()
            ids = [other.id for other in others]
            opened = [open_prompt(session, other, schedule) for other in others]
            prompts = session.scalars(
                select(models.ScheduledPrompt.id)
                .where(models.ScheduledPrompt.patient_id.in_(ids))
                .order_by(models.ScheduledPrompt.sent_at.desc(), models.ScheduledPrompt.id)
            ).all()
            entries = session.scalars(
                select(models.Entry)
                .where(models.Entry.patient_id.in_(ids))
                .order_by(models.Entry.file_id.is_(None), models.Entry.id.desc())
            ).all()
            practices = session.scalars(
                select(models.Practice.id)
                .where(models.Practice.patient_id.in_(ids))
                .order_by(models.Practice.id.desc())
            ).all()
            goals = session.scalars(
                select(models.Goal.id)
                .where(models.Goal.patient_id.in_(ids))
                .order_by(models.Goal.id.desc())
            ).all()
            words = {
                word
                for entry in entries
                for word in (entry.text or "").split()
                if not any(p.marker.lower() in word.lower() for p in PEOPLE)
            }
            return {
                "open prompts": [prompt.id for prompt in opened if prompt is not None],
                "prompts": list(prompts),
                "entries": [entry.id for entry in entries],
                "practices": list(practices),
                "goals": list(goals),
                "words": sorted(words),
            }

    def snapshot(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Every row of every table (decrypted), but the inbox, which records each update, and
        the tables in which running instances coordinate (heartbeats, chat leases, send lanes),
        which change with the clock, not with what a patient does."""
        with self.harness.session() as session:
            return [
                (table.name, tuple(row))
                for table in models.Base.metadata.sorted_tables
                if table.name not in NOT_PATIENT_DATA
                for row in session.execute(select(table).order_by(*table.primary_key.columns))
            ]

    def push(self, update: dict[str, Any]) -> int:
        """Deliver a raw update, checked first as python-telegram-bot will read it: a malformed
        one would stall polling and fail only after the harness's wait."""
        Update.de_json(dict(update, update_id=0), None)
        return self.fake.push_update(update)

    async def handled(self, update_id: int) -> list[ApiRequest]:
        before = len(self.fake.requests)
        await self.harness.wait_handled(update_id)
        return self.fake.requests[before:]

    def reply_target(self, data: st.DataObject, user: TgUser) -> int | None:
        """Now and then, a Telegram reply to one of the bot's messages in this chat."""
        messages = self.bot_messages(user.id)
        if not messages or not data.draw(st.booleans(), label="reply"):
            return None
        # Newest first, so a shrunk example replies to the latest message (the open prompt).
        return data.draw(st.sampled_from(messages[::-1]), label="reply_to")

    def changes_nothing(self, presser: TgUser, push: Any) -> None:
        """Run a press that must change nothing and show nothing but the callback answer."""
        before = self.snapshot()
        done = self.run(self.handled(push()))
        assert [r.method for r in done] == ["answerCallbackQuery"], [r.summary() for r in done]
        assert self.snapshot() == before, "a press on another's message or data changed rows"
        answer = done[0].params.get("text") or ""
        for person in PEOPLE:
            if person.user.id != presser.id:
                assert person.marker.lower() not in answer.lower()

    # -- rules -------------------------------------------------------------------------------

    @initialize(
        carol_agrees=st.booleans(),
        treated=st.sets(PATIENT),
        with_goal=st.sets(PATIENT),
        with_practice=st.sets(PATIENT),
    )
    def patients_agree(
        self,
        carol_agrees: bool,
        treated: set[Person],
        with_goal: set[Person],
        with_practice: set[Person],
    ) -> None:
        """Alice and Bob (and perhaps Carol) agree; some log a treatment, add a goal or note a
        practice, so that from the first step there are rows of theirs to forge presses at."""
        for person in (ALICE, BOB, CAROL) if carol_agrees else (ALICE, BOB):
            self.run(self.harness.agree(person.user))
        for person in sorted(treated, key=lambda p: p.user.id):
            self.run(self.harness.send_raw(person.user, "/treatment"))
        for person in sorted(with_goal, key=lambda p: p.user.id):
            self.run(self.harness.send_raw(person.user, f"/goal add build: {person.marker}"))
        for person in sorted(with_practice, key=lambda p: p.user.id):
            self.run(self.harness.send_raw(person.user, "/practice"))
            choices = self.current_buttons(person.user.id)
            if choices:
                self.run(self.harness.press(person.user, *choices[-1]))

    @rule(person=PATIENT, data=st.data())
    def send_text(self, person: Person, data: st.DataObject) -> None:
        value = data.draw(message_texts(person.marker), label="text")
        reply_to = self.reply_target(data, person.user)
        self.run(self.harness.send_raw(person.user, value, reply_to=reply_to))

    @rule(person=PATIENT, data=st.data())
    def send_command(self, person: Person, data: st.DataObject) -> None:
        value = data.draw(command_texts(person.marker), label="command")
        self.run(self.harness.send_raw(person.user, value))

    @rule(person=PATIENT, feature=st.sampled_from(FEATURES))
    def use_a_feature(self, person: Person, feature: str) -> None:
        """A well-formed command, as a patient who read /help would send it."""
        self.run(self.harness.send_raw(person.user, feature.format(marker=person.marker)))

    @rule(
        person=PATIENT,
        days=st.integers(-40, 200),
        hour=st.integers(0, 23),
        minute=st.integers(0, 59),
        form=st.sampled_from(["date", "day", "clock", "now"]),
    )
    def log_treatment(self, person: Person, days: int, hour: int, minute: int, form: str) -> None:
        """/treatment at a time around now, in each form it accepts."""
        day = (self.harness.clock.now + timedelta(days=days)).date()
        clock = f"{hour:02d}:{minute:02d}"
        args = {
            "date": f"{day.isoformat()} {clock}",
            "day": f"{['yesterday', 'today', 'tomorrow'][days % 3]} {clock}",
            "clock": clock,
            "now": "",
        }[form]
        self.run(self.harness.send_raw(person.user, f"/treatment {args}".strip()))

    @rule(person=PATIENT, kind=st.sampled_from(MEDIA_KINDS), data=st.data())
    def send_media(self, person: Person, kind: str, data: st.DataObject) -> None:
        file_id = f"{person.marker}-{kind}-{len(self.fake.pushed)}"
        fields = media_fields(kind, file_id)
        if kind in CAPTIONED and data.draw(st.booleans(), label="captioned"):
            fields["caption"] = data.draw(
                message_texts(person.marker, limit=MAX_CAPTION_LENGTH), label="caption"
            )
        if data.draw(st.booleans(), label="forwarded"):
            fields["forward_origin"] = {"type": "hidden_user", "date": 1, "sender_user_name": "X"}
        reply_to = self.reply_target(data, person.user)
        self.run(self.harness.send_update(person.user, reply_to=reply_to, **fields))

    @rule(person=PATIENT, data=st.data())
    def edit_a_message(self, person: Person, data: st.DataObject) -> None:
        """Telegram tells of an edit to one of the patient's text or captioned messages."""
        with self.harness.session() as session:
            kept = set(
                session.scalars(
                    select(models.Entry.message_id).where(models.Entry.chat_id == person.user.id)
                )
            )
        editable = sorted(
            (m for m in self.own_messages(person.user) if "text" in m or "caption" in m),
            # Messages that made an entry first (their edits change the journal), newest first.
            key=lambda m: (m["message_id"] not in kept, -m["message_id"]),
        )
        if not editable:
            return
        original = data.draw(st.sampled_from(editable), label="edited")
        new = data.draw(message_texts(person.marker), label="new text")
        edited = dict(original, edit_date=int(time.time()))
        if "text" in original:
            edited |= {"text": new, "entities": command_entities(new)}
        else:
            edited["caption"] = clip(new, MAX_CAPTION_LENGTH)
        self.run(self.handled(self.push({"edited_message": edited})))

    def with_buttons(self) -> list[Person]:
        return [person for person in PEOPLE if self.current_buttons(person.user.id)]

    @precondition(lambda self: bool(self.with_buttons()))
    @rule(data=st.data())
    def press_a_button(self, data: st.DataObject) -> None:
        """A button the bot put in a patient's chat, still there: the way the bot is used."""
        person = data.draw(st.sampled_from(self.with_buttons()), label="presser")
        current = self.current_buttons(person.user.id)
        message_id, value = data.draw(st.sampled_from(current[::-1]), label="pressed")
        self.run(self.harness.press(person.user, message_id, value))

    @rule(person=PATIENT, stale=st.booleans(), data=st.data())
    def press_stale_or_garbage(self, person: Person, stale: bool, data: st.DataObject) -> None:
        """In the patient's own chat, a button long gone (a double tap) or garbage data."""
        user = person.user
        old, messages = self.stale_buttons(user.id), self.bot_messages(user.id)
        if stale and old:
            message_id, value = data.draw(st.sampled_from(old[::-1]), label="pressed")
        elif messages:
            message_id = data.draw(st.sampled_from(messages[::-1]), label="message")
            value = data.draw(GARBAGE_DATA, label="data")
        else:
            return
        self.run(self.harness.press(user, message_id, value))

    @rule(presser=PATIENT, owner=PATIENT, data=st.data())
    def press_anothers_button(self, presser: Person, owner: Person, data: st.DataObject) -> None:
        """A button on another person's message: it must change and reveal nothing."""
        if presser == owner:
            return
        current = self.current_buttons(owner.user.id)
        messages = self.bot_messages(owner.user.id)
        real = data.draw(st.booleans(), label="real button")
        if current and real:
            message_id, value = data.draw(st.sampled_from(current[::-1]), label="pressed")
        elif messages:
            message_id = data.draw(st.sampled_from(messages[::-1]), label="message")
            value = data.draw(GARBAGE_DATA, label="data")
        else:
            return
        self.changes_nothing(
            presser.user,
            lambda: self.fake.callback_update(
                presser.user, message_id, value, chat_id=owner.user.id
            ),
        )

    @rule(person=PATIENT, action=st.sampled_from(list(PromptAction)), data=st.data())
    def press_forged_prompt(
        self, person: Person, action: PromptAction, data: st.DataObject
    ) -> None:
        """Later, Skip or a mood value for another patient's prompt (their open one, above all:
        the one it would change)."""
        rows = self.others_rows(person.user)
        candidates = rows["open prompts"] or rows["prompts"]
        if not candidates:
            return
        prompt_id = data.draw(st.sampled_from(candidates), label="their prompt")
        value = data.draw(st.integers(1, 10), label="value") if action == "scale" else None
        self.forge(person, prompt_callback(prompt_id, action, value), data)

    @rule(person=PATIENT, data=st.data())
    def press_forged_file(self, person: Person, data: st.DataObject) -> None:
        """The file button of another patient's entry."""
        entries = self.others_rows(person.user)["entries"]
        if not entries:
            return
        entry_id = data.draw(st.sampled_from(entries), label="their entry")
        self.forge(person, f"{FILE_PREFIX}{entry_id}", data)

    @rule(person=PATIENT, minutes=st.sampled_from(MINUTE_CHOICES), data=st.data())
    def press_forged_practice(self, person: Person, minutes: int, data: st.DataObject) -> None:
        """The minutes button of another patient's practice."""
        practices = self.others_rows(person.user)["practices"]
        if not practices:
            return
        practice_id = data.draw(st.sampled_from(practices), label="their practice")
        self.forge(person, f"{MINUTES_PREFIX}{practice_id}:{minutes}", data)

    @rule(person=PATIENT, answer=st.sampled_from(GOAL_ANSWERS), data=st.data())
    def press_forged_goal(self, person: Person, answer: str, data: st.DataObject) -> None:
        """A weekly check-in answer for another patient's goal."""
        goals = self.others_rows(person.user)["goals"]
        if not goals:
            return
        goal_id = data.draw(st.sampled_from(goals), label="their goal")
        self.forge(person, f"{GOAL_PREFIX}{goal_id}:{answer}", data)

    def forge(self, person: Person, forged: str, data: st.DataObject) -> None:
        """Press forged data on the patient's own message, or even on one that shows it as a
        button (as if the check of the message's buttons were bypassed)."""
        user = person.user
        messages = self.bot_messages(user.id)
        if not messages:
            return
        message_id = data.draw(st.sampled_from(messages[::-1]), label="message")
        if data.draw(st.booleans(), label="shows the forged button"):
            message = self.fake.bot_message(user.id, message_id)
            message["reply_markup"] = {
                "inline_keyboard": [[{"text": "forged", "callback_data": forged}]]
            }
            self.changes_nothing(
                user, lambda: self.fake.raw_callback_update(user, forged, message=message)
            )
        else:
            self.changes_nothing(user, lambda: self.fake.callback_update(user, message_id, forged))

    @rule(person=PATIENT, data=st.data())
    def search_for_anothers_words(self, person: Person, data: st.DataObject) -> None:
        """/journal search with words from another patient's entries: only one's own come back
        (the search must not reveal their entry, which carries their marker)."""
        words = self.others_rows(person.user)["words"]
        if not words:
            return
        chosen = data.draw(st.lists(st.sampled_from(words), min_size=1, max_size=2), label="w")
        self.run(
            self.harness.send_raw(person.user, clip(f"/journal search {' '.join(chosen)}", 4096))
        )

    @rule(person=PATIENT, data=st.data())
    def press_without_a_message(self, person: Person, data: st.DataObject) -> None:
        """A press on a message too old to be given (date 0), or on an inline message."""
        user = person.user
        value = data.draw(
            st.one_of(
                GARBAGE_DATA,
                st.sampled_from(
                    [
                        CONSENT_AGREE,
                        DELETE_YES,
                        DELETE_NO,
                        WEEKLY_ON,
                        f"{MOOD_PREFIX}5",
                        f"{JOURNAL_PREFIX}1",
                        f"{TREATMENT_PREFIX}1",
                        f"{SEARCH_PREFIX}0:garden",
                        f"{FILE_PREFIX}1",
                        prompt_callback(1, PromptAction.SKIP),
                    ]
                ),
            ),
            label="data",
        )
        if data.draw(st.booleans(), label="inaccessible"):
            where: dict[str, Any] = {
                "message": {"message_id": 1, "date": 0, "chat": user.private_chat()}
            }
        else:
            where = {"inline_message_id": "inline-1"}
        self.run(self.handled(self.fake.raw_callback_update(user, value, **where)))

    @rule(
        person=PATIENT,
        chat=st.sampled_from([GROUP, SMALL_GROUP]),
        anonymous=st.booleans(),
        edited=st.booleans(),
        data=st.data(),
    )
    def write_in_a_group(
        self,
        person: Person,
        chat: dict[str, Any],
        anonymous: bool,
        edited: bool,
        data: st.DataObject,
    ) -> None:
        """A message (a command, now and then) in a group, perhaps as its anonymous admin."""
        value = data.draw(
            st.one_of(message_texts(person.marker), command_texts(person.marker)), label="text"
        )
        message: dict[str, Any] = {
            "message_id": next(self.group_message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": ANONYMOUS_ADMIN if anonymous else person.user.to_dict(),
            "text": value,
            "entities": command_entities(value),
        }
        if anonymous:
            message["sender_chat"] = chat
        if edited:
            message["edit_date"] = int(time.time())
        kind = "edited_message" if edited else "message"
        self.run(self.handled(self.push({kind: message})))

    @rule(person=PATIENT, edited=st.booleans(), data=st.data())
    def post_in_a_channel(self, person: Person, edited: bool, data: st.DataObject) -> None:
        """A channel post: no `from` at all."""
        value = data.draw(message_texts(person.marker), label="text")
        post = {
            "message_id": next(self.group_message_ids),
            "date": int(time.time()),
            "chat": CHANNEL,
            "sender_chat": CHANNEL,
            "text": value,
            "entities": command_entities(value),
        }
        if edited:
            post["edit_date"] = int(time.time())
        kind = "edited_channel_post" if edited else "channel_post"
        self.run(self.handled(self.push({kind: post})))

    @rule(
        person=PATIENT,
        kind=st.sampled_from(["inline_query", "poll", "poll_answer", "my_chat_member", "pin"]),
    )
    def other_update(self, person: Person, kind: str) -> None:
        """Updates that are not messages, some without a chat or a sender."""
        user = person.user
        bot_user = {"id": self.fake.bot_id, "is_bot": True, "first_name": "Companion"}
        match kind:
            case "inline_query":
                update: dict[str, Any] = {
                    "inline_query": {
                        "id": "iq",
                        "from": user.to_dict(),
                        "query": person.marker,
                        "offset": "",
                    }
                }
            case "poll":
                update = {"poll": poll(person.marker)}
            case "poll_answer":
                update = {
                    "poll_answer": {
                        "poll_id": "p",
                        "voter_chat": CHANNEL,
                        "option_ids": [0],
                        "option_persistent_ids": ["a"],
                    }
                }
            case "my_chat_member":
                update = {
                    "my_chat_member": {
                        "chat": user.private_chat(),
                        "from": user.to_dict(),
                        "date": int(time.time()),
                        "old_chat_member": {"status": "member", "user": bot_user},
                        "new_chat_member": {"status": "kicked", "user": bot_user, "until_date": 0},
                    }
                }
            case _:
                messages = self.bot_messages(user.id)
                if not messages:
                    return
                pinned = self.fake.bot_message(user.id, messages[-1])
                update = {
                    "message": {
                        "message_id": 10**6 + len(self.fake.pushed),
                        "date": int(time.time()),
                        "chat": user.private_chat(),
                        "from": user.to_dict(),
                        "pinned_message": pinned,
                    }
                }
        self.run(self.handled(self.push(update)))

    @rule(
        minutes=st.one_of(
            st.sampled_from([60, 3 * 60, 13 * 60, 14 * 60, 24 * 60, 7 * 24 * 60]),
            st.integers(1, 8 * 24 * 60),
        )
    )
    def time_passes(self, minutes: int) -> None:
        """The clock moves on and the dispatcher runs one tick."""
        self.harness.clock.advance(timedelta(minutes=minutes))
        self.run(self.harness.dispatch())

    # -- the properties ----------------------------------------------------------------------

    @invariant()
    def nothing_failed_rejected_or_leaked(self) -> None:
        assert not self.errors.records, self.errors.describe()
        # No Telegram call was made while a transaction was open.
        assert self.bot is not None
        assert self.bot.sent_in_transaction == []
        new, self.checked = self.fake.requests[self.checked :], len(self.fake.requests)
        for request in new:
            problem = self.refused(request)
            assert problem is None, f"{request.summary()}: {problem}"
            audience = self.audience(request)
            seen = str(request.params).lower()
            for person in PEOPLE:
                if person.user.id != audience:
                    assert person.marker.lower() not in seen, (
                        f"{person.marker} reached {audience}: {request.summary()}"
                    )

    def audience(self, request: ApiRequest) -> int | None:
        """Who reads what the request carries: its chat, or the person who pressed."""
        if request.method == "answerCallbackQuery":
            return self.fake.callback_users.get(str(request.params.get("callback_query_id")))
        return request.chat_id

    def refused(self, request: ApiRequest) -> str | None:
        """Why Telegram would refuse the request, if it would."""
        if not request.method.startswith(("send", "edit", "answer")):
            return None
        if request.result is None:
            reason = self.fake.refusals.get(id(request.params), "no answer")
            if not (request.method.startswith("edit") and NOT_MODIFIED in reason):
                return reason
        for data in buttons(request.params.get("reply_markup")):
            if not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                return f"BUTTON_DATA_INVALID: {data!r}"
        caption = request.params.get("caption")
        if isinstance(caption, str):
            return caption_problem(caption)
        answer = request.params.get("text")
        if (
            request.method == "answerCallbackQuery"
            and isinstance(answer, str)
            and utf16_length(answer) > MAX_CALLBACK_ANSWER_LENGTH
        ):
            return f"callback answer too long: {answer!r}"
        return None


_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^>]*>")


def caption_problem(caption: str) -> str | None:
    """A caption is parsed as HTML (the bot's default) and holds at most 1024 characters."""
    opened: list[str] = []
    for match in _TAG.finditer(caption):
        closing, tag = match.group(1) == "/", match.group(2).lower()
        if tag not in HTML_TAGS:
            return f"unsupported tag {tag!r} in caption {caption!r}"
        if not closing:
            opened.append(tag)
        elif not opened or opened.pop() != tag:
            return f"unbalanced tags in caption {caption!r}"
    if opened:
        return f"unclosed tag in caption {caption!r}"
    if utf16_length(html.unescape(_TAG.sub("", caption))) > MAX_CAPTION_LENGTH:
        return f"caption too long: {caption[:60]!r}"
    return None


async def settle(tasks: set[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


NOT_PATIENT_DATA = {
    models.InboxUpdate.__tablename__,
    models.Instance.__tablename__,
    models.ChatLease.__tablename__,
    models.SendSlot.__tablename__,
}


def database_url(folder: Path) -> str:
    """A SQLite file per example, or the PostgreSQL database TEST_DATABASE_URL names, emptied
    (as conftest's `settings` fixture does)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{folder / 'companion.sqlite3'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


# On PostgreSQL the same rules run again for what differs there (SQL, locks, types); the
# behaviour they explore was explored on SQLite, so a third of the examples suffice.
ON_POSTGRESQL = bool(os.environ.get("TEST_DATABASE_URL"))
EXAMPLES = 20 if ON_POSTGRESQL else 60


@pytest.mark.slow
def test_it_keeps_its_properties_under_generated_updates() -> None:
    STATS.update(examples=0, updates=0)
    run_state_machine_as_test(
        CompanionMachine,
        settings=hypothesis.settings(
            max_examples=EXAMPLES,
            stateful_step_count=120,
            deadline=None,  # a step is a round trip through HTTP and the database
            derandomize=True,  # the same examples on every run, in CI too
            database=None,
        ),
    )
    # The properties held over thousands of updates, not over a handful.
    assert STATS["updates"] >= 50 * EXAMPLES, STATS
