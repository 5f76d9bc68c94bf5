"""The README's privacy and safety promises, one test per sentence: each test's docstring is a
sentence of the README's "Privacy and safety" section, word for word, and the test proves it
through the real bot, the database, the command line and the logs. The first test checks that
every sentence quoted here is still in the README and that every sentence of the section is
quoted here, so a promise and its proof cannot drift apart and no promise goes unproven.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy import Engine, select
from telegram import Update
from telegram.ext import CallbackContext

import bot.__main__ as cli
from bot import app as companion_app
from bot.app import build_application, build_companion, maintenance_job
from bot.companion import utc_now
from bot.config import Settings
from bot.crisis import crisis_category, is_crisis
from bot.crisis.features import (
    WINDOW,
    feature_id,
    mark_negation,
    position_features,
    tokens,
    windows,
)
from bot.crisis.model import MODEL_PATH, shipped_model, unpack
from bot.crisis.training import DEV_SET, ORDINARY_DEV_SET, read_examples, training_sets
from bot.db.crypto import (
    Cipher,
    DataKeyError,
    EncryptedText,
    is_encrypted,
    is_token,
    new_key,
)
from bot.db.keys import key_file_for, rotate_keys
from bot.db.models import (
    Base,
    Entry,
    Goal,
    GuideInvite,
    GuideJoinAttempt,
    GuideLink,
    InboxUpdate,
    Patient,
    Practice,
    Reminder,
    ScheduledPrompt,
    SessionNote,
    Treatment,
    WeeklyRecap,
)
from bot.db.session import create_db_engine, create_session_factory
from bot.domain.rights import NOT_CONTENT, RETAINED
from bot.telegram.coordination import ChatLocks
from bot.telegram.inbox import Inbox
from bot.telegram.keyboards import CONSENT_AGREE, DELETE_YES, GUIDE_ANNOUNCE_ON, SUPPORT
from tests.auxil.dump import key_in_use, raw_rows, tables_showing
from tests.auxil.filled import (
    MOOD,
    PRACTICE_MINUTES,
    SECRET_WORDS,
    VOICE_SECONDS,
    fill_every_encrypted_column,
    stored_values,
    use_every_feature,
)
from tests.auxil.harness import FakeClock, Harness
from tests.conftest import REPO_PROMPTS
from tests.fake_telegram import ApiRequest, FakeTelegram, TgUser
from tests.test_process import BotProcess, to

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# Written by sessions that never saw the crisis model; this module reads only the first, and
# only through the model's own measuring code.
HELD_OUT = ROOT / "tests" / "data" / "crisis_heldout.tsv"
SECOND_HELD_OUT = ROOT / "tests" / "data" / "crisis_heldout2.tsv"
THIRD_HELD_OUT = ROOT / "tests" / "data" / "crisis_heldout3.tsv"
ORDINARY = ROOT / "tests" / "data" / "ordinary_heldout.tsv"
PLAIN_COLUMNS = re.compile(r"<!-- plain-columns:start -->(.*?)<!-- plain-columns:end -->", re.S)
PLAIN_LINE = re.compile(r"- `(\w+)`: ((?:`\w+`, )*`\w+`) — (\S.*)")
# A bullet's or a paragraph's bold lead-in ("- **Guides.** "): it opens the sentence after it.
LEAD_IN = re.compile(r"^(?:- )?(?:\*\*[^*]+\.\*\* )?")
CODE = re.compile(r"<code>/guide join ([A-Z0-9]{5}-[A-Z0-9]{5})</code>")
WRONG_CODE = "WRONG-CODE2"
CRISIS_OPENING = "I'm really glad you told me."
CRISIS_CONTACTS = "<b>If you are in crisis</b>"
LOW_MOOD_CHECK_IN = (
    "Thank you for telling me. A {value} out of 10 sounds like a really hard time, and you "
    "don't have to carry it alone. If you'd like to talk to someone right now, tap below for "
    "people you can reach at any hour. And whenever you want to write, I'm here."
)

sqlite_only = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="reads the SQLite files themselves"
)


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def raw_readme_section() -> str:
    """The README's "Privacy and safety" section, up to the next heading, as written."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Privacy and safety\n")
    return text[start : text.index("\n## ", start + 1)]


def readme_section() -> str:
    """The README's "Privacy and safety" section, whitespace collapsed."""
    return normalised(raw_readme_section())


def readme_sentences() -> list[str]:
    """The section's sentences as the tests here quote them: split after a full stop that a
    space and no small letter follow, the heading dropped, and a bullet's or a paragraph's bold
    lead-in left to the sentence it opens. The list of plain columns is no prose: the test of
    the sentence that announces it checks it line by line (plain_column_lines)."""
    prose = PLAIN_COLUMNS.sub(" ", raw_readme_section())
    prose = normalised(prose).removeprefix("## Privacy and safety")
    return [LEAD_IN.sub("", s) for s in re.split(r"(?<=[.!?])\s+(?=[^a-z])", prose.strip())]


def plain_column_lines() -> list[tuple[str, list[str], str]]:
    """The README's list of plain columns: (table, columns, why) for each line. Fails on a line
    of any other shape, so nothing else can stand between the markers unproven."""
    [block] = PLAIN_COLUMNS.findall(raw_readme_section())
    lines = []
    for line in block.strip().splitlines():
        match = PLAIN_LINE.fullmatch(line)
        assert match, f"not - `table`: `column`, `column` — why: {line!r}"
        lines.append((match[1], re.findall(r"`(\w+)`", match[2]), match[3]))
    return lines


def listed_plain_columns() -> set[tuple[str, str]]:
    return {(table, column) for table, columns, _ in plain_column_lines() for column in columns}


def plain_in(metadata: sa.MetaData) -> set[tuple[str, str]]:
    """The (table, column) pairs of these models that are not stored encrypted."""
    return {
        (table.name, column.name)
        for table in metadata.sorted_tables
        for column in table.columns
        if not is_encrypted(column.type)
    }


# Helpers.


def messages(requests: list[ApiRequest]) -> list[ApiRequest]:
    return [r for r in requests if r.method == "sendMessage"]


def callbacks(request: ApiRequest) -> list[str]:
    rows = request.params.get("reply_markup", {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row]


def texts_to(bot: Harness, user: TgUser, since: int = 0) -> list[str]:
    return [r.text or "" for r in bot.fake.sent(user.id)[since:]]


async def invite(bot: Harness, user: TgUser) -> str:
    [code] = [m.group(1) for t in await bot.send(user, "/guide invite") if (m := CODE.search(t))]
    return code


def engine_of(bot: Harness) -> Engine:
    assert bot.companion is not None
    engine: Engine = bot.companion.sessions.kw["bind"]
    return engine


async def exported(bot: Harness, user: TgUser) -> dict[str, Any]:
    await bot.send(user, "/export data")
    document = bot.fake.sent(user.id, "sendDocument")[-1].params["document"]
    data: dict[str, Any] = json.loads(document.data)
    return data


async def run_daily_job(bot: Harness) -> None:
    assert bot.app is not None
    await maintenance_job(CallbackContext(bot.app))


async def run_daily_job_later(
    bot: Harness, monkeypatch: pytest.MonkeyPatch, later: timedelta
) -> None:
    """The daily job as it runs `later` by the wall clock, which instances and rate-limit lanes
    go by (the bot's clock, which the rest goes by, stays where it is)."""
    now = utc_now()
    with monkeypatch.context() as patched:
        patched.setattr(companion_app, "utc_now", lambda: now + later)
        await run_daily_job(bot)


def as_one_of_several_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot coordinates through the database as instances sharing one do (PostgreSQL):
    chat leases and rate-limit lanes are rows, even on SQLite."""

    def shared_locks(*args: Any, shared: bool, **kwargs: Any) -> ChatLocks:
        return ChatLocks(*args, shared=True, **kwargs)

    monkeypatch.setattr(companion_app, "ChatLocks", shared_locks)


def stated(test: Any, pattern: str) -> str:
    """A figure the README states, read from the sentence `test` quotes."""
    match = re.search(pattern, normalised(test.__doc__ or ""))
    assert match, f"{pattern!r} is not in the sentence {test.__name__} quotes"
    return match[1]


def held_out_alarms(path: Path = SECOND_HELD_OUT) -> list[tuple[bool, bool]]:
    """For each message of a held-out set: whether it is a crisis, whether the model alarms.
    Only these flags leave this function, never a message."""
    return [(example.crisis, is_crisis(example.text)) for example in read_examples([path])]


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )


def commits_touching(path: Path) -> list[str]:
    """The commits that changed the file, newest first."""
    return git("log", "--format=%H", "--", str(path.relative_to(ROOT))).stdout.split()


def is_git_checkout() -> bool:
    return git("rev-parse", "--is-inside-work-tree").stdout.strip() == "true"


def use_cli_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, data_keys: str | None
) -> None:
    """The command line's settings come from the environment; no developer's .env is read."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    if data_keys is None:
        monkeypatch.delenv("DATA_KEYS", raising=False)
    else:
        monkeypatch.setenv("DATA_KEYS", data_keys)


@pytest.fixture
def restore_logging() -> Any:
    """The command line configures logging for a process; put it back for the next test."""
    names = ("", "telegram", "httpx", "httpcore", "sqlalchemy", "apscheduler", "alembic", "bot")
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = list(logging.getLogger().handlers)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().handlers[:] = handlers


# The promises.


def test_each_sentence_of_the_section_is_quoted_by_one_test_here():
    sentences = readme_sentences()
    module = sys.modules[__name__]
    quoted = {
        name: normalised(function.__doc__ or "")
        for name, function in vars(module).items()
        if name.startswith("test_")
        and callable(function)
        and name != "test_each_sentence_of_the_section_is_quoted_by_one_test_here"
    }
    assert len(sentences) > 40
    assert len(set(sentences)) == len(sentences)
    assert [name for name, sentence in quoted.items() if not sentence] == []
    # Every quote is still a sentence of the README, whole: no docstring quotes two or half.
    assert {name: s for name, s in quoted.items() if s not in sentences} == {}
    # Every sentence of the section is quoted, so none goes unproven...
    assert [s for s in sentences if s not in quoted.values()] == []
    # ...and no two tests prove the same one.
    assert len(set(quoted.values())) == len(quoted)


# Encrypted at rest.


@sqlite_only
async def test_everything_a_patient_or_telegram_produced_is_stored_encrypted(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    """Everything a patient or Telegram produced is stored encrypted with Fernet (AES-128-CBC
    with an HMAC-SHA256, through MultiFernet): what they write (answers, entries, notes,
    captions, intentions, goals), their first name and country, mood scores, the Telegram file
    ids of voice notes, photos and other media and their lengths, what kind each entry is,
    which practices they did and for how long, the practice a reminder names, goal kinds and
    weekly answers, their guides' names and Telegram ids, and every update waiting in the
    inbox."""
    bot = agreed
    await fill_every_encrypted_column(bot, alice, bob)
    key = Cipher([key_in_use(bot.settings).encode()])
    engine = create_db_engine(bot.settings.database_url)
    try:
        values = stored_values(engine)
        # Every value of every encrypted column is a Fernet token under the bot's key.
        not_tokens = [
            f"{table}.{column}"
            for (table, column), stored in values.items()
            for value in stored
            if not (isinstance(value, str) and is_token(value))
        ]
        assert not_tokens == []

        def plain(table: str, column: str) -> set[str]:
            return {key.decrypt(value) for value in values[table, column]}

        # Each thing the sentence names, in the column that holds it.
        assert SECRET_WORDS["answer"] in plain("entries", "text")
        assert SECRET_WORDS["caption"] in plain("entries", "text")
        assert SECRET_WORDS["intention"] in plain("treatments", "intention")
        assert {SECRET_WORDS["guide_note"], SECRET_WORDS["own_note"]} <= plain(
            "session_notes", "text"
        )
        assert SECRET_WORDS["goal"] in plain("goals", "text")
        assert plain("patients", "first_name") == {"Alice"}
        assert plain("patients", "country") == {"GB"}
        assert str(MOOD) in plain("entries", "scale_value")
        assert {SECRET_WORDS["voice"], SECRET_WORDS["photo"]} <= plain("entries", "file_id")
        assert str(VOICE_SECONDS) in plain("entries", "duration_seconds")
        assert {"voice", "photo", "mood", "text"} <= plain("entries", "kind")
        assert {"meditation", "other"} <= plain("practices", "kind")
        assert str(PRACTICE_MINUTES) in plain("practices", "minutes")
        assert plain("reminders", "kind") == {"meditation"}
        assert plain("goals", "kind") == {"build"}
        assert plain("goal_checks", "note") == {SECRET_WORDS["goal_note"]}
        assert len(plain("goal_checks", "answer")) == 1
        assert plain("guide_links", "guide_name") == {"Bob"}
        assert plain("guide_links", "guide_user_id") == {str(bob.id)}
        assert plain("guide_links", "guide_chat_id") == {str(bob.id)}
        waiting = [json.loads(raw) for raw in plain("inbox", "raw")]
        assert "/journal search river" in [u.get("message", {}).get("text") for u in waiting]
    finally:
        engine.dispose()
    # Nor do the files on disk hold any of it in the clear.
    database = Path(bot.settings.database_url.removeprefix("sqlite:///"))
    on_disk = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    words = [w for w in SECRET_WORDS.values() if len(w) >= 5]
    assert [w for w in words if w.encode() in on_disk] == []


async def test_what_stays_plain_is_listed_column_by_column(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    """What stays plain (ids, times, statuses, and the settings the scheduler needs) is listed
    column by column below."""
    lines = plain_column_lines()  # each line: - `table`: `column`, `column` — why
    pairs = [(table, column) for table, columns, _ in lines for column in columns]
    assert len(pairs) == len(set(pairs))  # each column once
    listed = listed_plain_columns()
    assert sorted(plain_in(Base.metadata) - listed) == [], "plain, but not listed"
    assert sorted(listed - plain_in(Base.metadata)) == [], "listed, but not plain"
    # What stays plain is none of what anyone wrote: after every feature has been used, no
    # listed column of a dump holds a word of it.
    bot = agreed
    await use_every_feature(bot, alice, bob)
    words = [w for w in SECRET_WORDS.values() if len(w) >= 5]
    shown = [
        f"{table}.{column}: {value}"
        for table, rows in raw_rows(engine_of(bot)).items()
        for row in rows
        for column, value in row.items()
        if (table, column) in listed and any(w in str(value) for w in words)
    ]
    assert shown == []


async def test_only_the_listed_columns_are_plain_every_other_holds_fernet_tokens(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    """Only these columns are stored plain; every other column holds Fernet tokens."""
    bot = agreed
    await fill_every_encrypted_column(bot, alice, bob)
    listed = listed_plain_columns()
    assert ("entries", "created_at") in listed
    assert ("entries", "text") not in listed
    engine = create_db_engine(bot.settings.database_url)
    try:
        rows = raw_rows(engine)
    finally:
        engine.dispose()
    not_tokens = sorted(
        {
            f"{table}.{column}"
            for table, table_rows in rows.items()
            for row in table_rows
            for column, value in row.items()
            if (table, column) not in listed
            and value is not None
            and not (isinstance(value, str) and is_token(value))
        }
    )
    assert not_tokens == []
    # And every column not listed does hold tokens once the bot is used.
    holding = {
        (table, column)
        for table, table_rows in rows.items()
        for row in table_rows
        for column, value in row.items()
        if isinstance(value, str) and is_token(value)
    }
    unlisted = {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if (table.name, column.name) not in listed
    }
    assert unlisted - holding == set()


def test_a_new_plain_column_is_caught_by_the_comparison_with_the_list():
    """A test compares this list with the models, so no new plain column lands without being
    listed here."""
    listed = listed_plain_columns()
    assert plain_in(Base.metadata) == listed
    # The models grown by a plain column and an encrypted one: the comparison names the plain
    # one, and only it.
    grown = sa.MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(grown)
    grown.tables["entries"].append_column(sa.Column("summary", sa.Text()))
    grown.tables["entries"].append_column(sa.Column("summary_sealed", EncryptedText()))
    assert plain_in(grown) - listed == {("entries", "summary")}
    assert listed - plain_in(grown) == set()
    # A listed column the models no longer have is named too.
    shrunk = sa.MetaData()
    for table in Base.metadata.sorted_tables:
        if table.name != "instances":
            table.to_metadata(shrunk)
    assert {table for table, _ in listed - plain_in(shrunk)} == {"instances"}


async def test_keys_come_from_data_keys_the_first_encrypts_and_all_decrypt(
    settings: Settings, fake: FakeTelegram, clock: FakeClock, alice: TgUser
):
    """Keys come from `DATA_KEYS` (comma-separated; the first encrypts, all decrypt)."""
    old, new = new_key(), new_key()
    first = Harness(settings.model_copy(update={"data_keys": SecretStr(old)}), fake, clock)
    await first.start()
    await first.agree(alice)
    await first.send(alice, "Written under the old key")
    await first.stop()
    both = settings.model_copy(update={"data_keys": SecretStr(f"{new},{old}")})
    second = Harness(both, fake, clock)
    await second.start()
    try:
        await second.send(alice, "Written under the new key")
        page = "\n".join(await second.send(alice, "/journal"))
        assert "Written under the old key" in page
        assert "Written under the new key" in page
        with engine_of(second).connect() as connection:
            tokens = list(connection.execute(sa.text("SELECT text FROM entries ORDER BY id")))
    finally:
        await second.stop()
    [(under_old,), (under_new,)] = tokens
    only_old, only_new = Cipher([old.encode()]), Cipher([new.encode()])
    assert only_old.decrypt(under_old) == "Written under the old key"
    assert only_new.decrypt(under_new) == "Written under the new key"
    assert not only_old.is_current(under_new)
    # With DATA_KEYS no key file is made beside a SQLite database.
    engine = create_db_engine(settings.database_url)
    engine.dispose()
    key_file = key_file_for(engine)
    assert key_file is None or not key_file.exists()


@sqlite_only
async def test_the_first_start_creates_the_key_file_and_says_where_it_is_once(
    settings: Settings,
    fake: FakeTelegram,
    clock: FakeClock,
    tmp_path: Path,
    alice: TgUser,
    caplog: pytest.LogCaptureFixture,
):
    """With SQLite and no `DATA_KEYS`, the first start creates `data/companion.sqlite3.key`
    (mode 0600) and logs once where it is: back it up separately from the database, since the
    journal cannot be read without it."""
    database = tmp_path / "data" / "companion.sqlite3"
    settings = settings.model_copy(
        update={"database_url": f"sqlite:///{database}", "data_keys": None}
    )
    key_file = tmp_path / "data" / "companion.sqlite3.key"
    caplog.set_level(logging.INFO)
    for _ in range(2):  # the first start and a second one
        bot = Harness(settings, fake, clock)
        await bot.start()
        await bot.agree(alice)
        await bot.send(alice, "Something private")
        await bot.stop()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    Cipher([key_file.read_text(encoding="ascii").strip().encode()])  # a well-formed key
    told = [r.getMessage() for r in caplog.records if "encryption key" in r.getMessage()]
    assert told == [
        f"created the journal's encryption key at {key_file} (readable by this user only). "
        "Back it up separately from the database: without it the journal cannot be read."
    ]
    # And indeed: without it the journal cannot be read.
    key_file.unlink()
    with pytest.raises(DataKeyError):
        build_companion(settings)


@sqlite_only
async def test_the_database_folder_and_files_are_the_owners_alone(
    settings: Settings,
    fake: FakeTelegram,
    clock: FakeClock,
    tmp_path: Path,
    alice: TgUser,
    caplog: pytest.LogCaptureFixture,
):
    """The database folder is created 0700 and the database file 0600 (SQLite's `-wal` and
    `-shm` files follow it); a database file others can read is tightened to 0600 at start,
    with one warning."""
    folder = tmp_path / "fresh"
    database = folder / "companion.sqlite3"
    settings = settings.model_copy(update={"database_url": f"sqlite:///{database}"})
    bot = Harness(settings, fake, clock)
    await bot.start()
    try:
        await bot.agree(alice)
        await bot.send(alice, "Something private")
        modes = {
            path.name: stat.S_IMODE(path.stat().st_mode)
            for path in folder.iterdir()
            if path.name in ("companion.sqlite3", "companion.sqlite3-wal", "companion.sqlite3-shm")
        }
    finally:
        await bot.stop()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert modes == {
        "companion.sqlite3": 0o600,
        "companion.sqlite3-wal": 0o600,
        "companion.sqlite3-shm": 0o600,
    }
    # Loosened by someone, tightened again at the next start, with one warning; then quiet.
    database.chmod(0o644)
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        again = Harness(settings, fake, clock)
        await again.start()
        await again.stop()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    warned = [r.getMessage() for r in caplog.records if "readable by others" in r.getMessage()]
    assert warned == [
        f"{database} was readable by others; it is now readable by its owner only (0600)"
    ]


@sqlite_only
async def test_without_its_key_the_bot_refuses_to_start(
    agreed: Harness,
    alice: TgUser,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
):
    """If the key is missing for a database that holds encrypted rows, the bot refuses to
    start."""
    await agreed.send(alice, "Something private")
    await agreed.stop()
    engine = create_db_engine(settings.database_url)
    engine.dispose()
    key_file = key_file_for(engine)
    assert key_file is not None
    assert key_file.exists()
    key_file.unlink()
    with pytest.raises(DataKeyError, match="Restore the key file from your backup"):
        build_companion(settings)
    # `python -m bot run` stops with a message saying what to do.
    use_cli_environment(monkeypatch, tmp_path, settings.database_url, None)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", settings.telegram_bot_token.get_secret_value())
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", settings.telegram_api_base_url)
    assert cli.main(["run"]) == 2
    assert "Restore the key file from your backup" in capsys.readouterr().err
    assert not key_file.exists()  # no new key for old rows


async def test_keys_new_prints_a_key_and_keys_rotate_reaches_every_column_and_hash(
    agreed: Harness,
    alice: TgUser,
    bob: TgUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
):
    """`python -m bot keys new` prints a key; to rotate, put the new key first in `DATA_KEYS`,
    restart, and run `python -m bot keys rotate`: it re-encrypts every encrypted column of every
    table under the new key and recomputes the keyed lookup hashes (in batches; safe to
    interrupt and run again; it prints each table's count and the total of rows it changed)."""
    bot = agreed
    await fill_every_encrypted_column(bot, alice, bob)
    old = key_in_use(bot.settings)
    capsys.readouterr()
    assert cli.main(["keys", "new"]) == 0
    new = capsys.readouterr().out.strip()
    Cipher([new.encode()])  # a well-formed Fernet key
    assert new != old

    # Interrupted after its first table, it leaves a mix of keys; run again, it finishes.
    engine = create_db_engine(bot.settings.database_url)
    both = Cipher([new.encode(), old.encode()])

    done_before: list[str] = []

    def interrupt(table: str, rows: int) -> None:
        if rows:
            done_before.append(table)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotate_keys(engine, both, batch=1, progress=interrupt)
    engine.dispose()
    use_cli_environment(monkeypatch, tmp_path, bot.settings.database_url, f"{new},{old}")
    assert cli.main(["keys", "rotate"]) == 0
    lines = capsys.readouterr().out.splitlines()
    counts = {}
    for line in lines[:-1]:
        match = re.fullmatch(r"(\w+): (\d+) row\(s\)", line)
        assert match, line
        counts[match[1]] = int(match[2])
    changed = [table for table, rows in counts.items() if rows]
    assert len(done_before) == 1
    assert done_before[0] in counts
    assert {"patients", "entries", "guide_links"} <= set(changed) | set(done_before)
    assert lines[-1] == f"Re-encrypted {sum(counts.values())} row(s) under the newest key."

    only_new = Cipher([new.encode()])
    engine = create_db_engine(bot.settings.database_url)
    try:
        stale = [
            f"{table}.{column}"
            for (table, column), values in stored_values(engine).items()
            for value in values
            if not only_new.is_current(value)
        ]
        with engine.connect() as connection:
            hashes = list(connection.execute(sa.text("SELECT guide_user_hash FROM guide_links")))
    finally:
        engine.dispose()
    assert stale == []
    assert hashes == [(only_new.lookup_hash(str(bob.id)),)]
    # Run again: nothing is left under the old key.
    assert cli.main(["keys", "rotate"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1] == "Re-encrypted 0 row(s) under the newest key."
    )


async def test_after_rotation_the_old_key_can_go(
    agreed: Harness, alice: TgUser, bob: TgUser, fake: FakeTelegram
):
    """After that the old key can go."""
    bot = agreed
    await use_every_feature(bot, alice, bob)
    before = await exported(bot, alice)
    journal = await bot.send(alice, "/journal 1")
    await bot.stop()
    old, new = key_in_use(bot.settings), new_key()
    engine = create_db_engine(bot.settings.database_url)
    rotate_keys(engine, Cipher([new.encode(), old.encode()]))
    engine.dispose()
    key_file = key_file_for(engine)
    if key_file is not None:
        key_file.unlink()
    only_new = bot.settings.model_copy(update={"data_keys": SecretStr(new)})
    restarted = Harness(only_new, fake, bot.clock)
    await restarted.start()
    try:
        after = await exported(restarted, alice)
        assert {k: v for k, v in after.items() if k != "exported_at"} == {
            k: v for k, v in before.items() if k != "exported_at"
        }
        assert await restarted.send(alice, "/journal 1") == journal
        # Bob is still recognised as Alice's guide, by the recomputed hash of his id.
        assert (await restarted.send(bob, "/notes One more note"))[0].startswith(
            "Noted for Alice's treatment 1."
        )
    finally:
        await restarted.stop()


async def test_reading_decrypts_in_the_application_never_in_the_database(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    """Search, recaps, mood charts, practice totals and exports decrypt per patient in the
    application; nothing filters, sorts or sums an encrypted column in the database."""
    bot = agreed
    await use_every_feature(bot, alice, bob)
    encrypted = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if is_encrypted(column.type)
    ]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    engine = engine_of(bot)
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        [found] = await bot.send(alice, "/journal search river")
        recap = await bot.send_raw(alice, "/recap")
        exports = await bot.send_raw(alice, "/export")
        data = await exported(bot, alice)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    # Each reads back what only the key opens.
    assert "A <b>river</b> of light" in found
    recap_text = "\n".join(r.text or "" for r in messages(recap))
    assert SECRET_WORDS["intention"] in recap_text
    assert "sendPhoto" in [r.method for r in recap]  # the mood chart
    assert f"{PRACTICE_MINUTES}" in recap_text.replace(",", "")  # practice totals
    assert [r.method for r in exports].count("sendDocument") == 2  # Markdown and PDF
    assert SECRET_WORDS["practice_note"] in json.dumps(data)
    assert statements
    # No statement compares, sorts, groups or sums an encrypted column.
    misuses = []
    for statement in statements:
        # Whether a value is there at all (IS NULL) is not a look at what it holds.
        plain = re.sub(r"\b(\w+\.\w+) IS (NOT )?NULL\b", "", statement)
        clauses = re.split(r"\b(?:WHERE|ORDER BY|GROUP BY|HAVING|ON)\b", plain)[1:]
        aggregates = re.findall(r"\b(?:sum|avg|min|max|total)\(([^)]*)\)", plain, re.I)
        for column in encrypted:
            pattern = re.compile(rf"\b{re.escape(column)}\b")
            if any(pattern.search(c) for c in clauses + aggregates):
                misuses.append(f"{column}: {statement}")
    assert misuses == []


# The patient's rights.


async def test_export_data_sends_everything_as_json(agreed: Harness, alice: TgUser, bob: TgUser):
    """`/export data` sends everything stored about the patient as JSON (`format`,
    `exported_at`, `patient` with settings and `pending_intention_set_at`, `weekly_recap`,
    `treatments`, `prompts`, `entries` with their text, mood, Telegram file id and links,
    `practices` with minutes and notes, `practice_reminder`, `goals` with their weekly checks,
    `guides`, `guides_told_of_treatments`, `session_notes`)."""
    bot = agreed
    await use_every_feature(bot, alice, bob)
    await bot.send(alice, "/recap weekly on")
    data = await exported(bot, alice)
    assert set(data) == {
        "format",
        "exported_at",
        "patient",
        "weekly_recap",
        "treatments",
        "prompts",
        "entries",
        "practices",
        "practice_reminder",
        "goals",
        "guides",
        "guides_told_of_treatments",
        "session_notes",
    }
    patient = data["patient"]
    assert (patient["first_name"], patient["country"]) == ("Alice", "GB")
    assert patient["quiet_hours"] == {"start_minute": 1320, "end_minute": 480}
    assert patient["pending_intention"] == SECRET_WORDS["next_intention"]
    assert patient["pending_intention_set_at"] is not None
    assert data["weekly_recap"] is not None
    assert data["practice_reminder"] is not None
    assert [t["intention"] for t in data["treatments"]] == [SECRET_WORDS["intention"]]
    assert len(data["prompts"]) > 0
    entries = data["entries"]
    assert SECRET_WORDS["answer"] in [e["text"] for e in entries]
    assert MOOD in [e["mood"] for e in entries]
    assert {SECRET_WORDS["voice"], SECRET_WORDS["photo"]} <= {
        e["telegram_file_id"] for e in entries
    }
    [answer] = [e for e in entries if e["text"] == SECRET_WORDS["answer"]]
    assert (answer["treatment_id"], answer["prompt_id"]) == (1, 1)  # its links
    assert PRACTICE_MINUTES in [p["minutes"] for p in data["practices"]]
    assert SECRET_WORDS["practice_note"] in [p["note"] for p in data["practices"]]
    [goal] = data["goals"]
    assert [c["note"] for c in goal["weekly_checks"]] == [SECRET_WORDS["goal_note"]]
    assert [g["name"] for g in data["guides"]] == ["Bob"]
    assert data["guides_told_of_treatments"] is False
    assert [n["text"] for n in data["session_notes"]] == [
        SECRET_WORDS["guide_note"],
        SECRET_WORDS["own_note"],
    ]


async def test_delete_asks_then_deletes_every_row_and_sends_nothing_more(
    bot: Harness, alice: TgUser, bob: TgUser
):
    """`/delete` explains and asks to confirm; then every row about the person is deleted (the
    schema cascades from `patients`), nothing more is sent, and `/start` begins afresh."""
    # Every table that names a patient names them by a key that cascades from `patients`.
    to_patients = [
        (fk.parent.table.name, fk.ondelete)
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name == "patients"
    ]
    assert len(to_patients) >= 10
    assert {ondelete for _, ondelete in to_patients} == {"CASCADE"}
    for user in (alice, bob):
        await bot.agree(user)
        await bot.send(user, "/treatment")
        await bot.send(user, "/remind 08:00 walk")
        await bot.send(user, "/recap weekly on")
        await bot.send(user, f"A note from {user.first_name}")
    await bot.next_prompt(alice)
    [ask] = messages(await bot.send_raw(alice, "/delete"))
    assert (ask.text or "").startswith("<b>Delete everything?</b>")
    assert DELETE_YES in callbacks(ask)
    with bot.session() as session:
        assert session.scalar(select(sa.func.count(Entry.id))) == 2  # nothing gone yet
    done = messages(await bot.press(alice, ask.message_id, DELETE_YES))
    assert [r.text for r in done] == [
        "Everything I kept about you is deleted, and I won't send you anything more. Thank you "
        "for the trust you gave this journal. If you ever want to start again, send /start."
    ]
    engine = engine_of(bot)
    # Operational rows keyed by the chat (listed as plain, forgotten within days): the inbox,
    # and with several instances the chat's rate-limit lane.
    assert tables_showing(engine, alice.id) <= {"inbox", "send_slots"}
    with bot.session() as session:
        assert session.scalars(select(Entry.text)).all() == ["A note from Bob"]
        assert [p.first_name for p in session.scalars(select(Patient))] == ["Bob"]
        assert len(session.scalars(select(Reminder)).all()) == 1
        assert len(session.scalars(select(WeeklyRecap)).all()) == 1
    # Nothing more is sent to her, through a month of dispatching.
    sent_before = len(bot.fake.sent(alice.id))
    for _ in range(30):
        bot.clock.advance(timedelta(days=1))
        await bot.dispatch()
    assert len(bot.fake.sent(alice.id)) == sent_before
    assert len(bot.fake.sent(bob.id)) > 0
    assert "Do you agree?" in (await bot.send(alice, "/start"))[0]


async def test_the_chats_updates_go_and_only_its_rate_limit_lane_stays_a_while(
    settings: Settings,
    fake: FakeTelegram,
    clock: FakeClock,
    alice: TgUser,
    monkeypatch: pytest.MonkeyPatch,
):
    """The chat's updates in `inbox` go with the rest; only an operational row keyed by the
    chat stays a while: with several instances, the chat's rate-limit lane in `send_slots`, for
    an hour."""
    as_one_of_several_instances(monkeypatch)
    bot = Harness(settings, fake, clock)
    await bot.start()
    try:
        await bot.agree(alice)
        await bot.send(alice, "/remind 08:00 walk")
        await bot.send(alice, "A note before leaving")
        [ask] = messages(await bot.send_raw(alice, "/delete"))
        await bot.press(alice, ask.message_id, DELETE_YES)
        engine = engine_of(bot)
        assert tables_showing(engine, alice.id) == {"send_slots"}
        # The chat's rate-limit lane: the daily job keeps it for an hour after her last
        # message, and forgets it after.
        lanes = [row["key"] for row in raw_rows(engine)["send_slots"]]
        assert f"chat:{alice.id}" in lanes
        await run_daily_job_later(bot, monkeypatch, timedelta(minutes=59))
        assert "send_slots" in tables_showing(engine, alice.id)
        await run_daily_job_later(bot, monkeypatch, timedelta(minutes=61))
        assert "send_slots" not in tables_showing(engine, alice.id)
    finally:
        await bot.stop()


async def guiding_alice_and_carol(bot: Harness, alice: TgUser, bob: TgUser, carol: TgUser) -> None:
    """Bob guides Alice and Carol, has noted Alice's session, and tried one wrong code."""
    await bot.agree(carol)
    for patient in (alice, carol):
        await bot.send(bob, f"/guide join {await invite(bot, patient)}")
    await bot.send(alice, "/treatment")
    await bot.send(bob, "/notes Alice Calm at the end")
    await bot.send(bob, f"/guide join {WRONG_CODE}")


async def test_delete_ends_a_guides_role_links_and_failed_attempts(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser
):
    """`/delete` ends a guide's role too, and works for someone who is only a guide: their
    links to their patients and their failed join attempts go."""
    bot = agreed
    await guiding_alice_and_carol(bot, alice, bob, carol)
    with bot.session() as session:
        assert len(session.scalars(select(GuideLink)).all()) == 2
        assert len(session.scalars(select(GuideJoinAttempt)).all()) == 1
        assert session.scalars(select(Patient.first_name)).all() == ["Alice", "Carol"]
    [ask] = messages(await bot.send_raw(bob, "/delete"))
    assert (ask.text or "").startswith(
        "<b>Delete everything?</b>\n\nThis ends your role as a guide"
    )
    done = await bot.press(bob, ask.message_id, DELETE_YES)
    assert [r.text for r in messages(done) if r.chat_id == bob.id] == [
        "Everything I kept about you is deleted: you are no longer anyone's guide here, and I "
        "won't send you anything more. Thank you for the care you gave."
    ]
    with bot.session() as session:
        assert session.scalars(select(GuideLink)).all() == []
        assert session.scalars(select(GuideJoinAttempt)).all() == []
    # (Last: "one more" may draw the crisis resources first, a false alarm the README owns to.)
    assert (await bot.send(bob, "/notes Alice one more"))[-1].startswith("Hello! Send /start")


async def test_a_leaving_guides_notes_stay_and_each_patient_is_told(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser
):
    """The notes they wrote stay in each patient's record, marked as the guide's, but without
    the chat or message they came from, and each patient is told, kindly, that their guide has
    left and can no longer add notes."""
    bot = agreed
    await guiding_alice_and_carol(bot, alice, bob, carol)
    with bot.session() as session:
        [note] = session.scalars(select(SessionNote)).all()
        assert (note.chat_hash, note.message_id) != (None, None)
    [ask] = messages(await bot.send_raw(bob, "/delete"))
    alice_before, carol_before = len(bot.fake.sent(alice.id)), len(bot.fake.sent(carol.id))
    await bot.press(bob, ask.message_id, DELETE_YES)
    left = (
        "<b>Bob</b> has left the companion, so they are no longer linked to you: they can't "
        "add notes to your sessions any more, and nothing you /share reaches them. The notes "
        "they already wrote stay in your journal. Whenever you'd like, /guide invite makes a "
        "code for a guide."
    )
    assert texts_to(bot, alice, alice_before) == [left]
    assert texts_to(bot, carol, carol_before) == [left]
    with bot.session() as session:
        [note] = session.scalars(select(SessionNote)).all()
        assert (note.author, note.text, note.chat_hash, note.message_id) == (
            "guide",
            "Calm at the end",
            None,
            None,
        )
    page = "\n".join(await bot.send(alice, "/journal 1"))
    assert "<b>Your guide's note</b>\n<blockquote>Calm at the end</blockquote>" in page


async def test_privacy_says_it_in_plain_words(bot: Harness, alice: TgUser):
    """`/privacy` says all this in plain words."""
    [text] = await bot.send(alice, "/privacy")
    for words in (
        "Everything you write, and your name, is encrypted there",
        "/export data — everything I keep about you, as a JSON file",
        "/delete — delete everything, for good (as a guide too: the notes you wrote stay with "
        "your patients, with nothing that points to you)",
        "receive only what you send with /share",
        "They are told when you log a treatment only if you choose so",
        "Telegram keeps its own copy of this chat",
    ):
        assert words in text


async def test_telegram_keeps_its_own_copy_which_the_bot_leaves_alone(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    """Telegram keeps its own copy of the chat."""
    bot = agreed
    await use_every_feature(bot, alice, bob)
    [ask] = messages(await bot.send_raw(alice, "/delete"))
    assert (ask.text or "").endswith(
        "The messages in this chat are Telegram's copy: you can clear the chat in Telegram "
        "yourself."
    )
    confirmed = len(bot.fake.requests)
    await bot.press(alice, ask.message_id, DELETE_YES)
    # Deleting her data touches none of the chat's messages at Telegram: it only takes the
    # buttons off the question and says it is done.
    touched = [(r.method, r.params.get("message_id")) for r in bot.fake.requests[confirmed:]]
    assert touched == [
        ("answerCallbackQuery", None),
        ("editMessageReplyMarkup", ask.message_id),
        ("sendMessage", None),
    ]
    # Nor did anything before: no message deleted, no file fetched (the bot keeps Telegram's
    # file ids; Telegram keeps the voice notes and photos themselves).
    methods = {r.method for r in bot.fake.requests}
    assert {"deleteMessage", "deleteMessages", "getFile"} & methods == set()
    [privacy] = await bot.send(alice, "/privacy")
    assert "Telegram keeps its own copy of this chat, as with any chat." in privacy


# Guides.


async def test_nothing_reaches_a_guide_unless_the_patient_shares_or_chooses(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    """Nothing reaches a guide unless the patient sends it with `/share`, or chooses, when
    inviting a guide or any time after (`/guide announce on`, `off`, or the button under
    `/guide`), to have their guides told when a treatment is logged."""
    bot = agreed
    await bot.send(bob, f"/guide join {await invite(bot, alice)}")
    linked = len(bot.fake.sent(bob.id))
    # Alice uses her journal: Bob receives nothing.
    await bot.send(alice, "/intention Meet the old fear")
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.send(alice, "A river of light")
    ask = messages(await bot.send_raw(alice, "/mood"))[0]
    await bot.press(alice, ask.message_id, "mood:7")
    await bot.send(alice, "/practice walk 20")
    for _ in range(6):
        await bot.next_prompt(alice)
    assert texts_to(bot, bob, linked) == []
    # She shares: that reaches him.
    assert await bot.send(alice, "/share recap") == ["Sent your recap to your guide."]
    shared_texts = texts_to(bot, bob, linked)
    assert shared_texts[0] == "<b>Alice</b> shared their recap with you."
    assert shared_texts[1].startswith("<b>Your last 7 days</b>")
    shared = len(bot.fake.sent(bob.id))
    # She chooses announcements with the button under /guide: her next treatment reaches him.
    [page] = messages(await bot.send_raw(alice, "/guide"))
    assert GUIDE_ANNOUNCE_ON in callbacks(page)
    await bot.press(alice, page.message_id, GUIDE_ANNOUNCE_ON)
    assert len(bot.fake.sent(bob.id)) == shared
    await bot.send(alice, "/treatment")
    [announced] = texts_to(bot, bob, shared)
    assert "Alice" in announced
    assert "treatment 2" in announced
    # And off again: the next one does not.
    await bot.send(alice, "/guide announce off")
    await bot.send(alice, "/treatment")
    assert len(bot.fake.sent(bob.id)) == shared + 1


async def test_announcements_are_off_unless_chosen(agreed: Harness, alice: TgUser, bob: TgUser):
    """This is off unless chosen."""
    bot = agreed
    await bot.send(bob, f"/guide join {await invite(bot, alice)}")
    with bot.session() as session:
        assert session.scalars(select(Patient.announce_treatments)).all() == [False]
    linked = len(bot.fake.sent(bob.id))
    await bot.send(alice, "/treatment")
    assert texts_to(bot, bob, linked) == []
    assert (await exported(bot, alice))["guides_told_of_treatments"] is False


async def test_a_guides_ids_are_encrypted_and_the_inbox_forgets_his_chat_in_two_days(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    """The guide tables hold a guide's Telegram user and chat ids only encrypted; like anyone's,
    the chat id of each update a guide sends stays plain in the inbox (`inbox`.`chat_id`,
    listed below) until the update is forgotten, once handled, two days after it arrived."""
    bot = agreed
    await bot.send(bob, f"/guide join {await invite(bot, alice)}")
    await bot.send(alice, "/treatment")
    await bot.send(bob, "/notes Calm at the end")
    await bot.send(bob, f"/guide join {WRONG_CODE}")
    engine = engine_of(bot)
    rows = raw_rows(engine)
    guide_tables = {"guide_links", "guide_invites", "guide_join_attempts", "session_notes"}
    assert all(rows[table] for table in guide_tables)
    assert tables_showing(engine, bob.id) & guide_tables == set()
    key = Cipher([key_in_use(bot.settings).encode()])
    [link] = rows["guide_links"]
    assert key.decrypt(link["guide_user_id"]) == key.decrypt(link["guide_chat_id"]) == str(bob.id)
    # Like anyone's, his chat id is in the inbox, plainly and as listed, once for each update
    # he sent, and nothing more of them: their words went when they were handled.
    assert ("inbox", "chat_id") in listed_plain_columns()
    his = [row for row in rows["inbox"] if row["chat_id"] == bob.id]
    assert len(his) == 3
    assert [row["raw"] for row in his] == [None] * 3
    # And an update handled a day after it came: stored, then the process died before
    # handling it, and started again a day later.
    await bot.stop()
    late = bot.fake.text_update(bob, "/help")
    stored = create_db_engine(bot.settings.database_url)
    try:
        inbox = Inbox(create_session_factory(stored), bot.clock)
        inbox.store([Update.de_json(bot.fake.withdraw(late), None)])
    finally:
        stored.dispose()
    bot.clock.advance(timedelta(days=1))
    await bot.start()
    await bot.wait_handled(late)
    with bot.session() as session:
        his_rows = session.scalars(select(InboxUpdate).where(InboxUpdate.chat_id == bob.id))
        handled = {row.update_id: row.received_at for row in his_rows if row.handled_at}
    assert len(handled) == 4
    # Each is forgotten two days after it arrived, the late one too (a day after it was
    # handled): the daily job just before keeps it, the one just after forgets it.
    for moment in sorted(set(handled.values())):
        then = [update_id for update_id, at in handled.items() if at == moment]

        def kept(ids: list[int]) -> list[int]:
            with bot.session() as session:
                return [i for i in ids if session.get(InboxUpdate, i) is not None]

        bot.clock.set(moment.replace(tzinfo=UTC) + timedelta(days=2, minutes=-1))
        await run_daily_job(bot)
        assert kept(then) == then
        bot.clock.set(moment.replace(tzinfo=UTC) + timedelta(days=2, minutes=1))
        await run_daily_job(bot)
        assert kept(then) == []
    # (With several instances his rate-limit lane stays an hour by the wall clock: see above.)
    assert tables_showing(engine, bob.id) - {"send_slots"} == set()


async def test_who_guides_whom_is_matched_by_a_keyed_hash_a_dump_does_not_show(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    """Every check of who a guide is matches a keyed lookup hash of the user id (HMAC-SHA256
    with a secret derived from each data key, recomputed by `keys rotate`), so a dump does not
    show who guides whom."""
    bot = agreed
    await bot.send(bob, f"/guide join {await invite(bot, alice)}")
    key = Cipher([key_in_use(bot.settings).encode()])
    engine = engine_of(bot)
    rows = raw_rows(engine)
    [link] = rows["guide_links"]
    assert link["guide_user_hash"] == key.lookup_hash(str(bob.id))
    assert str(bob.id) not in link["guide_user_hash"]
    # Bob's id is in no table but the inbox, whose rows say nothing of Alice.
    assert tables_showing(engine, bob.id) - {"send_slots"} == {"inbox"}
    # The check is by the hash: with it altered, Bob is no longer recognised as her guide.
    await bot.send(alice, "/treatment")
    assert (await bot.send(bob, "/notes Calm"))[0].startswith("Noted for Alice")
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE guide_links SET guide_user_hash = 'x'"))
    assert not (await bot.send(bob, "/notes Calm"))[0].startswith("Noted for Alice")


async def test_invite_codes_are_ten_characters_for_a_day_once_and_stored_hashed(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser, dave: TgUser
):
    """Invite codes are ten characters (50 bits), valid 24 hours, used once, and stored only as
    that keyed hash."""
    bot = agreed
    code = await invite(bot, alice)
    plain = code.replace("-", "")
    assert len(plain) == 10
    assert re.fullmatch(r"[A-Z0-9]{10}", plain)
    key = Cipher([key_in_use(bot.settings).encode()])
    rows = raw_rows(engine_of(bot))
    assert [row["code_hash"] for row in rows["guide_invites"]] == [key.lookup_hash(plain)]
    dumped = json.dumps(rows, default=str)
    assert plain not in dumped
    assert code not in dumped
    # Used once.
    assert (await bot.send(bob, f"/guide join {code}"))[0].startswith("You're now linked")
    assert (await bot.send(carol, f"/guide join {code}"))[0].startswith("That code doesn't work")
    # Valid 24 hours: a fresh code works just before, not just after.
    early, late = await invite(bot, alice), await invite(bot, alice)
    bot.clock.advance(timedelta(hours=23, minutes=59))
    assert (await bot.send(carol, f"/guide join {early}"))[0].startswith("You're now linked")
    bot.clock.advance(timedelta(minutes=2))
    assert (await bot.send(dave, f"/guide join {late}"))[0].startswith("That code doesn't work")


async def test_five_failed_joins_in_an_hour_refuse_every_code(
    agreed: Harness, alice: TgUser, bob: TgUser, dave: TgUser
):
    """After five failed `/guide join` attempts in an hour, counted in the database by the
    hashed user id, every code is refused, the right one too, until the hour has passed."""
    bot = agreed
    code = await invite(bot, alice)
    for _ in range(5):
        [refused] = await bot.send(dave, f"/guide join {WRONG_CODE}")
        assert refused.startswith("That code doesn't work")
        bot.clock.advance(timedelta(minutes=1))
    key = Cipher([key_in_use(bot.settings).encode()])
    rows = raw_rows(engine_of(bot))["guide_join_attempts"]
    assert [row["user_hash"] for row in rows] == [key.lookup_hash(str(dave.id))] * 5
    # Counted in the database: a restart forgets nothing. Bob's attempts are his own.
    await bot.restart()
    assert (await bot.send(bob, f"/guide join {WRONG_CODE}"))[0].startswith(
        "That code doesn't work"
    )
    assert await bot.send(dave, f"/guide join {code}") == [
        "Several codes in a row didn't work, so to keep everyone's codes safe I'll take the "
        "next one in about 55 minutes. If your code keeps failing, ask for a new one (/guide "
        "invite)."
    ]
    bot.clock.advance(timedelta(minutes=55))
    [joined] = await bot.send(dave, f"/guide join {code}")
    assert joined.startswith("You're now linked to <b>Alice</b> as their guide.")


# Retention.


@pytest.fixture
def retention_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"retention_days": 7})


async def test_with_retention_each_kind_of_record_goes_by_its_own_date(
    retention_settings: Settings,
    fake: FakeTelegram,
    clock: FakeClock,
    alice: TgUser,
    bob: TgUser,
    carol: TgUser,
    dave: TgUser,
):
    """With `RETENTION_DAYS`, once a day, each kind of record goes by its own date once that is
    older than the cutoff: entries and session notes when they were written; practices when
    they were done; a prompt sent, skipped or failed when it was sent (one never sent: when it
    was due; prompts still to come stay); a weekly goal answer when it was given (or last
    changed); a done or dropped goal when it was closed, an active goal once it was set before
    the cutoff and has no weekly answer left from after it; a treatment (with its intention)
    when it took place, once none of its prompts and session notes is left; the intention kept
    for the next treatment when it was set; guide invitations when they expired; failed join
    attempts when they were made; stored updates when Telegram delivered them."""
    bot = Harness(retention_settings, fake, clock)
    await bot.start()
    try:
        for user in (alice, carol):
            await bot.agree(user)
        # Old things, written on day 0.
        await bot.send(alice, "/goal add an old habit")
        await bot.send(alice, "/goal add closed long ago")
        await bot.send(alice, "/goal done 2")
        await bot.send(alice, "/intention Old hope")
        await bot.send(alice, "/treatment")
        await bot.send(alice, "Old entry")
        await bot.send(alice, "/practice meditation 10")
        await bot.send(bob, f"/guide join {await invite(bot, alice)}")
        await bot.send(bob, "/notes Old guide note")
        await bot.send(carol, "/guide invite")  # never used: it expires a day later
        await bot.send(dave, f"/guide join {WRONG_CODE}")
        await bot.send(alice, "/intention Kept for the next one")
        # Ten days on, new things.
        clock.advance(timedelta(days=10))
        await bot.send(alice, "New entry")
        await bot.send(alice, "/practice walk 20")
        await bot.send(alice, "/goal add a new goal")
        await bot.send(bob, "/notes New guide note")
        await bot.send(carol, "/intention New hope")
        await run_daily_job(bot)
        cutoff = clock.now - timedelta(days=7)
        with bot.session() as session:
            assert session.scalars(select(Entry.text)).all() == ["New entry"]
            assert session.scalars(select(Practice.minutes)).all() == [20]
            assert session.scalars(select(SessionNote.text)).all() == ["New guide note"]
            # The old active goal had no answer since the cutoff; the closed one went too.
            assert [g.text for g in session.scalars(select(Goal))] == ["a new goal"]
            assert session.scalars(select(GuideInvite)).all() == []
            assert session.scalars(select(GuideJoinAttempt)).all() == []
            intentions = {
                p.first_name: p.pending_intention for p in session.scalars(select(Patient))
            }
            assert intentions == {"Alice": None, "Carol": "New hope"}
            received = session.scalars(select(InboxUpdate.received_at)).all()
            assert received
            assert all(r.replace(tzinfo=UTC) >= cutoff for r in received)
            # The treatment stays while prompts still to come are left.
            steps = session.scalars(select(ScheduledPrompt.step_key)).all()
            assert steps
            assert session.scalars(select(Treatment.number)).all() == [1]
        # Months later, all its prompts long sent or past: the treatment goes with them.
        for _ in range(10):
            try:
                await bot.next_prompt(alice)
            except AssertionError:
                break
        clock.advance(timedelta(days=120))
        await run_daily_job(bot)
        with bot.session() as session:
            assert session.scalars(select(ScheduledPrompt)).all() == []
            assert session.scalars(select(Treatment)).all() == []
            assert session.scalars(select(Patient.first_name)).all() == ["Alice", "Carol"]
    finally:
        await bot.stop()


async def test_settings_links_and_the_account_stay_until_changed(
    retention_settings: Settings,
    fake: FakeTelegram,
    clock: FakeClock,
    alice: TgUser,
    bob: TgUser,
):
    """Settings (time zone, quiet hours, the weekly recap, a reminder), the link to a guide and
    the account itself stay until changed, `/guide remove` or `/delete`."""
    bot = Harness(retention_settings, fake, clock)
    await bot.start()
    try:
        await bot.agree(alice)
        await bot.send(alice, "/timezone Europe/London")
        await bot.send(alice, "/quiet 23:00-06:00")
        await bot.send(alice, "/recap weekly on")
        await bot.send(alice, "/remind 08:00 walk")
        await bot.send(bob, f"/guide join {await invite(bot, alice)}")
        clock.advance(timedelta(days=400))
        await run_daily_job(bot)
        with bot.session() as session:
            [patient] = session.scalars(select(Patient)).all()
            assert (patient.timezone, patient.quiet_start_minute, patient.quiet_end_minute) == (
                "Europe/London",
                23 * 60,
                6 * 60,
            )
            assert len(session.scalars(select(WeeklyRecap)).all()) == 1
            assert len(session.scalars(select(Reminder)).all()) == 1
            assert len(session.scalars(select(GuideLink)).all()) == 1
        await bot.send(alice, "/guide remove")
        with bot.session() as session:
            assert session.scalars(select(GuideLink)).all() == []
    finally:
        await bot.stop()


async def test_spent_invitations_attempts_and_where_notes_came_from_are_forgotten_daily(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser, dave: TgUser
):
    """Whatever `RETENTION_DAYS` says, used or expired invitations and join attempts older than
    an hour are forgotten daily, and a session note forgets after two days which chat and
    message it came from (kept only to recognise a redelivery)."""
    bot = agreed
    assert bot.settings.retention_days is None
    await bot.agree(carol)
    await bot.send(alice, "/treatment")
    await bot.send(bob, f"/guide join {await invite(bot, alice)}")  # used
    await bot.send(bob, "/notes")
    await bot.send(bob, "Calm at the end")
    note_update = bot.last_update_id
    await bot.send(carol, "/guide invite")  # expires in a day
    await bot.send(dave, f"/guide join {WRONG_CODE}")
    bot.clock.advance(timedelta(minutes=61))
    await bot.send(dave, f"/guide join {WRONG_CODE}")  # within the hour: kept
    await run_daily_job(bot)
    with bot.session() as session:
        assert len(session.scalars(select(GuideInvite)).all()) == 1  # the unused, unexpired
        assert len(session.scalars(select(GuideJoinAttempt)).all()) == 1
        note = session.scalars(select(SessionNote)).one()
        assert (note.chat_hash, note.message_id) != (None, None)
    # A redelivery within the two days is recognised, not noted twice.
    await bot.redeliver(bob, note_update)
    with bot.session() as session:
        assert len(session.scalars(select(SessionNote)).all()) == 1
    bot.clock.advance(timedelta(days=2))
    await run_daily_job(bot)
    with bot.session() as session:
        assert session.scalars(select(GuideInvite)).all() == []
        assert session.scalars(select(GuideJoinAttempt)).all() == []
        note = session.scalars(select(SessionNote)).one()
        assert (note.text, note.chat_hash, note.message_id) == ("Calm at the end", None, None)


def test_rights_classifies_every_table():
    """`bot/domain/rights.py` classifies every table, and a test fails for a table added without a
    retention date or a reason why it holds no one's content."""
    tables = {table.name for table in Base.metadata.sorted_tables}
    assert set(RETAINED) | set(NOT_CONTENT) == tables
    assert set(RETAINED) & set(NOT_CONTENT) == set()
    for name, retained in RETAINED.items():
        columns = Base.metadata.tables[name].c
        assert retained.by, name
        assert all(c in columns for c in retained.by), name
        assert retained.rule
    assert all(reason for reason in NOT_CONTENT.values())
    # The date columns retention goes by are plain, so the database can compare them.
    assert [
        f"{name}.{c}"
        for name, retained in RETAINED.items()
        for c in retained.by
        if is_encrypted(Base.metadata.tables[name].c[c].type)
    ] == []


# Crisis language.


async def test_crisis_language_gets_resources_first_and_the_entry_is_still_saved(
    agreed: Harness, alice: TgUser
):
    """Any text (an entry, an answer, a caption, an intention, an edit) that expresses suicidal
    thoughts, wanting to die, self-harm or a medical emergency gets, at once and before anything
    else, a warm reply with crisis resources for the patient's country; the entry is still
    saved."""
    bot = agreed
    await bot.send(alice, "/timezone Europe/London")
    entry = await bot.send(alice, "I don't want to be alive anymore")
    assert entry[0].startswith(CRISIS_OPENING)
    assert "<b>Samaritans</b>: call 116 123" in entry[0]  # the time zone's country: GB
    assert entry[1:] == ["Saved in your journal."]
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    answer = await bot.send(alice, "I cut myself again last night")
    assert answer[0].startswith(CRISIS_OPENING)
    assert answer[1] == "Thank you. Saved as your answer to <i>Check-in</i>."
    photo = [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]
    caption = messages(await bot.send_update(alice, photo=photo, caption="I took all my pills"))
    assert (caption[0].text or "").startswith(CRISIS_OPENING)
    assert caption[1].text == "Saved your photo in your journal."
    intention = await bot.send(alice, "/intention I want to kill myself")
    assert intention[0].startswith(CRISIS_OPENING)
    assert intention[1].startswith("Your intention is set")
    with bot.session() as session:
        texts = session.scalars(select(Entry.text).order_by(Entry.id)).all()
        pending = session.scalars(select(Patient.pending_intention)).one()
    assert texts == [
        "I don't want to be alive anymore",
        "I cut myself again last night",
        "I took all my pills",
    ]
    assert pending == "I want to kill myself"


async def test_resources_come_from_the_operators_file_for_the_patients_country(
    settings: Settings, fake: FakeTelegram, clock: FakeClock, tmp_path: Path, alice: TgUser
):
    """The resources are in `prompts/crisis_resources.toml` (operators edit it); the country is
    `/country` or the time zone's."""
    prompts = tmp_path / "prompts"
    shutil.copytree(REPO_PROMPTS, prompts)
    resources = prompts / "crisis_resources.toml"
    original = resources.read_text(encoding="utf-8")
    assert "116 123" in original
    resources.write_text(original.replace("116 123", "0100 200 300"), encoding="utf-8")
    bot = Harness(settings.model_copy(update={"prompts_dir": prompts}), fake, clock)
    await bot.start()
    try:
        await bot.agree(alice)
        await bot.send(alice, "/timezone Europe/London")
        [by_zone] = await bot.send(alice, "/crisis")
        assert "0100 200 300" in by_zone
        assert "116 123" not in by_zone
        await bot.send(alice, "/country US")
        [by_country] = await bot.send(alice, "/crisis")
        assert "call or text 988" in by_country
        assert "0100 200 300" not in by_country
    finally:
        await bot.stop()


async def test_crisis_shows_resources_and_every_page_has_the_button(
    agreed: Harness, alice: TgUser
):
    """`/crisis` shows them any time, and every prompt (answered ones too), journal page and
    treatment page carries a **Talk to someone now** button that shows them in one tap."""
    bot = agreed
    [contacts] = await bot.send(alice, "/crisis")
    assert contacts.startswith(CRISIS_CONTACTS)
    await bot.send(alice, "/treatment")
    await bot.send(alice, "a first entry")
    pages = [await bot.next_prompt(alice) for _ in range(3)]
    pages.append(messages(await bot.send_raw(alice, "/journal"))[-1])
    pages.append(messages(await bot.send_raw(alice, "/journal 1"))[-1])
    for page in pages:
        rows = page.params["reply_markup"]["inline_keyboard"]
        labels = {b["text"]: b["callback_data"] for row in rows for b in row}
        assert labels.get("Talk to someone now") == SUPPORT, page.text
    # Answered: Later, Skip and any scale go, and only that button stays.
    edits_before = len(bot.fake.sent(method="editMessageReplyMarkup"))
    await bot.send(alice, "an answer to the last question")
    [edit] = bot.fake.sent(method="editMessageReplyMarkup")[edits_before:]
    assert edit.message_id in {page.message_id for page in pages[:3]}
    answered = bot.fake.bot_message(alice.id, edit.message_id)["reply_markup"]
    assert [b["text"] for row in answered["inline_keyboard"] for b in row] == [
        "Talk to someone now"
    ]
    for page in pages:
        [shown] = messages(await bot.press(alice, page.message_id, SUPPORT))
        assert shown.text == contacts


async def test_the_crisis_reply_goes_before_other_patients_waiting_messages(
    settings: Settings, fake: FakeTelegram, clock: FakeClock, alice: TgUser
):
    """The reply goes out before any other patient's waiting messages."""
    # Telegram-like limits: each chat one message every three seconds, so a flooding chat's
    # later acknowledgements wait their turn.
    limited = settings.model_copy(
        update={"rate_limit_overall": 30, "rate_limit_per_chat": 1 / 3, "rate_limit_chat_burst": 1}
    )
    bot = Harness(limited, fake, clock)
    await bot.start()
    try:
        flooders = [TgUser(id=5000 + n, first_name=f"F{n}") for n in range(12)]
        with bot.session() as session, session.begin():
            for user in [*flooders, alice]:
                session.add(
                    Patient(
                        telegram_user_id=user.id,
                        chat_id=user.id,
                        first_name=user.first_name,
                        consented_at=clock.now - timedelta(days=1),
                        created_at=clock.now - timedelta(days=1),
                    )
                )
        start = len(fake.sent())
        waiting = [fake.text_update(user, f"flood {n}") for user in flooders for n in range(2)]

        def saved() -> list[ApiRequest]:
            return [
                r
                for r in fake.sent()[start:]
                if r.text == "Saved in your journal." and r.chat_id != alice.id
            ]

        # Each flooding chat has had its first acknowledgement; the others are waiting.
        assert await fake.wait_until(lambda: len(saved()) >= len(flooders), 10)
        crisis = fake.text_update(alice, "i cant do this anymore i want to die")
        await bot.wait_handled(crisis)
        sent = fake.sent()[start:]
        [reply_at] = [
            i
            for i, r in enumerate(sent)
            if r.chat_id == alice.id and (r.text or "").startswith(CRISIS_OPENING)
        ]
        # Before it, only the first acknowledgement of each flooding chat.
        assert len([r for r in sent[:reply_at] if r.text == "Saved in your journal."]) == len(
            flooders
        )
        for update_id in waiting:
            await bot.wait_handled(update_id)
        assert len(saved()) == 2 * len(flooders)
    finally:
        await bot.stop()


async def test_a_very_low_mood_gets_a_gentle_check_in_whatever_the_words(
    agreed: Harness, alice: TgUser
):
    """A mood of 1 or 2 (from `/mood`, a scale prompt's button or a number typed in answer to
    it) gets, whatever words come with it, a gentle check-in with the same button."""
    bot = agreed
    ask = messages(await bot.send_raw(alice, "/mood"))[0]
    pressed = messages(await bot.press(alice, ask.message_id, "mood:1"))
    assert pressed[-1].text == LOW_MOOD_CHECK_IN.format(value=1)
    assert callbacks(pressed[-1]) == [SUPPORT]
    # Cheerful words with it change nothing: the check-in comes with them too.
    words = messages(await bot.send_raw(alice, "all good really, lovely day"))
    assert [r.text for r in words] == [
        "Added as the note to your mood (1 out of 10).",
        LOW_MOOD_CHECK_IN.format(value=1),
    ]
    assert callbacks(words[-1]) == [SUPPORT]
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)  # the check-in
    await bot.send(alice, "fine")
    scale = await bot.next_prompt(alice)  # how do you feel, 1-10
    two = [d for d in callbacks(scale) if d.endswith(":2")]
    assert two, callbacks(scale)
    button = messages(await bot.press(alice, scale.message_id, two[0]))
    assert button[-1].text == LOW_MOOD_CHECK_IN.format(value=2)
    assert callbacks(button[-1]) == [SUPPORT]
    await bot.next_prompt(alice)  # the reflection
    await bot.send(alice, "it was a lot")
    await bot.next_prompt(alice)  # day two
    await bot.send(alice, "calmer today")
    await bot.next_prompt(alice)  # the day-three scale
    typed = messages(await bot.send_raw(alice, "1"))
    assert typed[-1].text == LOW_MOOD_CHECK_IN.format(value=1)
    assert callbacks(typed[-1]) == [SUPPORT]


async def test_only_text_the_patient_wrote_is_checked(agreed: Harness, alice: TgUser):
    """Only text the patient wrote is checked: a command's own name and the arguments of
    commands such as `/goal done 2` or `/quiet 22:00-07:00` are not, the words after
    `/intention`, `/notes` and `/goal add` are."""
    bot = agreed
    words = "i want to kill myself"
    for command in (f"/goal done {words}", f"/quiet {words}"):
        replies = await bot.send(alice, command)
        assert len(replies) == 1, command
        assert CRISIS_OPENING not in replies[0], command
    await bot.send(alice, "/treatment")
    for command in (f"/intention {words}", f"/notes {words}", f"/goal add {words}"):
        replies = await bot.send(alice, command)
        assert replies[0].startswith(CRISIS_OPENING), command
        assert len(replies) == 2, command


async def test_detection_is_a_small_learned_linear_model_scored_over_windows(
    agreed: Harness, alice: TgUser
):
    """Detection is a small learned model (`bot/crisis/`), not a list of phrases: a linear model
    over words, word pairs and triples and the letter groups of longer words, with rare
    misspellings mended to a known word one slip away (so "suicidel" or "killin" weigh like the
    words they mean), negation marked only over the few words it governs ("im not ok i want to
    die" negates "ok"), scored over windows of sixteen words so that one crisis sentence in a
    long diary entry is not drowned by the rest."""
    model = shipped_model()
    shipped = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    weights = unpack(shipped["weights"])
    # Linear: a message's score is the bias plus the weights of its best window's features,
    # and nothing else is looked up.
    for text in ("i want to die", "I took all my pills", "a calm walk by the river"):
        scored = model.score(text)
        assert scored.score == pytest.approx(
            float(shipped["bias"]) + sum(weights.get(f, 0.0) for f in scored.features)
        )
    # Over words, word pairs and triples, and the letter groups of longer words only.
    [_, want, _, die] = position_features(["i", "want", "to", "die"])
    for feature in ("w:want", "b:want to", "t:want to die", "c:<wa", "c:ant>"):
        assert feature_id(feature) in want, feature
    assert feature_id("w:die") in die
    assert not {feature_id(f"c:{group}") for group in ("<di", "die", "ie>", "<die>")} & set(die)
    # Each kind carries learned weight.
    for feature in ("w:die", "b:to die", "t:want to die", "c:<kil"):
        assert weights.get(feature_id(feature), 0.0) > 0, feature
    # Misspellings weigh like the words they mean: each one-slip misspelling of the longer
    # words of these messages (a letter dropped, doubled or two swapped) still alarms...
    for message in ("i feel suicidal tonight", "i took an overdose of my pills"):
        assert is_crisis(message)
        for word in (w for w in message.split() if len(w) >= 5):
            for i in range(1, len(word) - 1):
                for slip in (
                    word[:i] + word[i + 1 :],
                    word[:i] + word[i] + word[i:],
                    word[:i] + word[i + 1] + word[i] + word[i + 2 :],
                ):
                    assert is_crisis(message.replace(word, slip)), (message, slip)
    # ...and the letter groups a misspelling the model never saw shares with its word weigh
    # towards a crisis.
    [suicidal], [misspelt] = position_features(["suicidal"]), position_features(["suisidle"])
    shared = set(suicidal) & set(misspelt)
    assert model.speller.mend("suisidle") == "suisidle"
    assert shared
    assert sum(weights.get(f, 0.0) for f in shared) > 0
    # Negation is marked over the few words it governs, up to a clause's end.
    assert mark_negation(tokens("im not ok i want to die")) == [
        "im",
        "not",
        "~ok",
        "i",
        "want",
        "to",
        "die",
    ]
    bot = agreed
    assert (await bot.send(alice, "im not ok i want to die"))[0].startswith(CRISIS_OPENING)
    # Windows of sixteen words, covering every word.
    assert WINDOW == 16
    spans = list(windows(100))
    assert [len(span) for span in spans[:-1]] == [16] * (len(spans) - 1)
    assert set().union(*spans) == set(range(100))
    # One crisis sentence in a long diary entry is not drowned by the rest.
    day = (
        "Today I walked by the river with my sister and we talked about the garden, the "
        "weather and the cake we will bake on Sunday. "
    ) * 6
    assert len(tokens(day)) > 10 * WINDOW
    assert await bot.send(alice, day + day) == ["Saved in your journal."]
    entry = await bot.send(alice, day + "I want to kill myself. " + day)
    assert entry[0].startswith(CRISIS_OPENING)
    assert entry[1:] == ["Saved in your journal."]


@pytest.mark.slow
def test_the_model_ships_loads_on_first_use_and_rebuilds_byte_for_byte(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """It ships as `bot/crisis/model.json` (4 MB, loaded on first use, nothing downloaded), and
    `python -m bot crisis train` rebuilds it byte for byte from the labelled sets in
    `bot/crisis/training/` (about 14,000 messages, written by helper sessions apart from every
    test set; a separate development set of 411 messages sets the threshold: the lowest that
    keeps precision 0.9 there, alarms on at most 4 % of its safe messages and on at most 1 % of
    396 everyday messages kept out of the training)."""
    claim = test_the_model_ships_loads_on_first_use_and_rebuilds_byte_for_byte
    assert MODEL_PATH == ROOT / "bot" / "crisis" / "model.json"
    assert round(MODEL_PATH.stat().st_size / 1e6) == int(stated(claim, r"\((\d+) MB,"))
    # Loaded on first use, from the file: building the bot loads nothing, and the first
    # message loads it with every connection refused.
    shipped_model.cache_clear()
    companion = build_companion(settings)
    build_application(companion)
    companion.sessions.kw["bind"].dispose()
    assert shipped_model.cache_info().currsize == 0

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("no network here")

    with monkeypatch.context() as offline:
        offline.setattr(socket.socket, "connect", refuse)
        offline.setattr(socket, "getaddrinfo", refuse)
        assert is_crisis("i want to die tonight")
    assert shipped_model.cache_info().currsize == 1
    examples = read_examples(training_sets())
    # About 14,000 labelled messages in bot/crisis/training/, which the shipped model says it
    # was trained on.
    assert {path.parent for path in training_sets()} == {ROOT / "bot" / "crisis" / "training"}
    # (Counts are asserted, never the messages: a failure must not print a held-out one.)
    labelled = len(examples)
    assert round(labelled, -3) == int(stated(claim, r"\(about ([\d,]+) messages").replace(",", ""))
    shipped = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert shipped["trained_on"]["messages"] == labelled
    # Apart from the test sets: the held-out set shares at most ten short messages with them
    # (the bound test_crisis.py keeps, and says why).
    dev = read_examples([DEV_SET])
    for path in (HELD_OUT, SECOND_HELD_OUT, ORDINARY):
        held_out = {example.text for example in read_examples([path])}
        in_common = len(held_out & {example.text for example in [*examples, *dev]})
        assert in_common <= 10, path.name
    # The development set: separate, of that size, and its threshold the lowest that keeps
    # the stated precision and share of false alarms there.
    assert DEV_SET not in training_sets()
    dev_size = len(dev)
    assert dev_size == int(stated(claim, r"development set of (\d+) messages"))
    precision = float(stated(claim, r"keeps precision ([\d.]+) there"))
    share = int(stated(claim, r"at most (\d+) % of its safe")) / 100
    everyday = read_examples([ORDINARY_DEV_SET])
    assert ORDINARY_DEV_SET not in training_sets()
    assert len(everyday) == int(stated(claim, r"at most 1 % of (\d+) everyday messages"))
    assert not any(example.crisis for example in everyday)
    everyday_share = int(stated(claim, r"at most (\d+) % of \d+ everyday")) / 100
    model = shipped_model()
    scored = [(model.score(example.text), example.crisis) for example in dev]
    safe = sum(not crisis for _, crisis in scored)
    everyday_scored = [model.score(example.text) for example in everyday]

    def keeps(threshold: float) -> bool:
        alarmed = [crisis for s, crisis in scored if s.score >= threshold and s.evidence > 0]
        false_alarms = len(alarmed) - sum(alarmed)
        everyday_alarms = sum(s.score >= threshold and s.evidence > 0 for s in everyday_scored)
        return (
            sum(alarmed) >= precision * len(alarmed)
            and false_alarms <= share * safe
            and everyday_alarms <= everyday_share * len(everyday)
        )

    assert keeps(model.threshold)
    lower = [s.score for s, _ in scored if s.evidence > 0 and s.score < model.threshold]
    assert not any(keeps(score) for score in lower)
    # `python -m bot crisis train` rebuilds it byte for byte.
    rebuilt = tmp_path / "model.json"
    monkeypatch.setattr("bot.crisis.model.MODEL_PATH", rebuilt)
    assert cli.main(["crisis", "train"]) == 0
    assert rebuilt.read_bytes() == MODEL_PATH.read_bytes()


def test_crisis_measure_reports_precision_and_recall_on_a_labelled_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`python -m bot crisis measure FILE` reports precision and recall on any labelled set."""
    from bot.crisis import is_crisis

    rows = [
        ("crisis", "suicide", "i want to die tonight"),
        ("crisis", "self_harm", "i cut myself again last night"),
        ("crisis", "medical", "i took all my pills and my chest hurts"),
        ("safe", "-", "the old me died in that session and it felt freeing"),
        ("safe", "-", "a calm walk by the river"),
        ("safe", "-", "i am dying to try yoga"),
    ]
    labelled = tmp_path / "mine.tsv"
    labelled.write_text(
        "# label<TAB>category<TAB>text\n" + "".join("\t".join(r) + "\n" for r in rows),
        encoding="utf-8",
    )
    alarms = [(label == "crisis", is_crisis(text)) for label, _, text in rows]
    hits = sum(crisis and alarm for crisis, alarm in alarms)
    precision = hits / max(sum(alarm for _, alarm in alarms), 1)
    recall = hits / 3
    capsys.readouterr()
    assert cli.main(["crisis", "measure", str(labelled)]) == 0
    assert capsys.readouterr().out == (
        f"6 messages, 3 crisis: precision {precision:.3f}, recall {recall:.3f}\n"
    )
    assert hits > 0


def measured_figures(path: Path, capsys: pytest.CaptureFixture[str]) -> re.Match[str]:
    """`python -m bot crisis measure` on a held-out set: messages, crisis, precision, recall."""
    capsys.readouterr()
    assert cli.main(["crisis", "measure", str(path)]) == 0
    measured = re.fullmatch(
        r"(\d+) messages, (\d+) crisis: precision (\S+), recall (\S+)\n",
        capsys.readouterr().out,
    )
    assert measured
    return measured


def committed_once_before_the_model(path: Path) -> None:
    """Committed in one go, never changed after, before the shipped model was."""
    if not is_git_checkout():
        pytest.skip("not a git checkout: when the set was committed is not checked")
    [committed] = commits_touching(path)
    assert git("status", "--porcelain", "--", str(path.relative_to(ROOT))).stdout == ""
    model = commits_touching(MODEL_PATH)[0]
    assert committed != model
    assert git("merge-base", "--is-ancestor", committed, model).returncode == 0


def test_the_held_out_figures_are_the_shipped_models(capsys: pytest.CaptureFixture[str]):
    """**Measured:** on a held-out set of 393 messages (176 crisis, typed as patients type, with
    long entries and hard negatives), written in one go by a session that never saw the model or
    its data and committed before its first measurements, of this model and three
    variants (`tests/data/crisis_heldout2.tsv`), it has precision 0.975 and recall 0.869, and
    alarms on 4 of its 217 safe messages."""
    claim = normalised(test_the_held_out_figures_are_the_shipped_models.__doc__ or "")
    assert f"(`{SECOND_HELD_OUT.relative_to(ROOT)}`)" in claim
    measured = measured_figures(SECOND_HELD_OUT, capsys)
    assert f"a held-out set of {measured[1]} messages ({measured[2]} crisis," in claim
    assert f"it has precision {measured[3]} and recall {measured[4]}," in claim
    safe = [alarm for crisis, alarm in held_out_alarms() if not crisis]
    assert f"alarms on {sum(safe)} of its {len(safe)} safe messages." in claim
    # Long entries (one message in twenty at least is longer than a window) and hard negatives
    # (one safe message in ten at least speaks of dying, killing, cutting or pills). Counts
    # are asserted, never the messages: a failure must not print a held-out one.
    examples = read_examples([SECOND_HELD_OUT])
    total, safe_messages = len(examples), len(safe)
    long_entries = sum(len(tokens(e.text)) > WINDOW for e in examples)
    assert 20 * long_entries >= total
    hard = {"die", "dying", "dead", "death", "kill", "killing", "suicide", "suicidal", "cut"}
    hard |= {"cutting", "hurt", "hurting", "pills", "overdose"}
    negatives = sum(bool(hard & set(tokens(e.text))) for e in examples if not e.crisis)
    assert 10 * negatives >= safe_messages
    # Written apart from the model's data: at most ten short messages in common.
    trained = {example.text for example in read_examples([*training_sets(), DEV_SET])}
    assert len(trained & {example.text for example in examples}) <= 10
    committed_once_before_the_model(SECOND_HELD_OUT)


def test_the_earlier_held_out_set_has_steered_the_work(capsys: pytest.CaptureFixture[str]):
    """On an earlier held-out set of 447 messages (196 crisis, in English and about 15 % German,
    Spanish, French, Dutch and Portuguese), written the same way (`tests/data/crisis_heldout.tsv`)
    but measured for every model since the first, so that it has steered the work, it has
    precision 0.978 and recall 0.893, and alarms on 4 of its 251 safe messages."""
    claim = normalised(test_the_earlier_held_out_set_has_steered_the_work.__doc__ or "")
    assert f"(`{HELD_OUT.relative_to(ROOT)}`)" in claim
    measured = measured_figures(HELD_OUT, capsys)
    assert f"held-out set of {measured[1]} messages ({measured[2]} crisis," in claim
    assert f"it has precision {measured[3]} and recall {measured[4]}," in claim
    safe = [alarm for crisis, alarm in held_out_alarms(HELD_OUT) if not crisis]
    assert f"alarms on {sum(safe)} of its {len(safe)} safe messages." in claim
    # Measured for every model since the first: it was there before the first model.
    if not is_git_checkout():
        pytest.skip("not a git checkout: when the set was committed is not checked")
    [committed] = commits_touching(HELD_OUT)
    first_model = commits_touching(MODEL_PATH)[-1]
    assert committed != first_model
    assert git("merge-base", "--is-ancestor", committed, first_model).returncode == 0
    committed_once_before_the_model(HELD_OUT)


def test_few_ordinary_messages_draw_the_resources():
    """It answers 3 of 532 ordinary messages, none of them a crisis, with the crisis resources
    (`tests/data/ordinary_heldout.tsv`, written and committed the same way)."""
    claim = normalised(test_few_ordinary_messages_draw_the_resources.__doc__ or "")
    assert f"(`{ORDINARY.relative_to(ROOT)}`," in claim
    alarms = held_out_alarms(ORDINARY)
    assert not any(crisis for crisis, _ in alarms)
    alarmed = sum(alarm for _, alarm in alarms)
    assert f"It answers {alarmed} of {len(alarms)} ordinary messages," in claim
    committed_once_before_the_model(ORDINARY)


async def test_the_goal_is_not_met_yet_and_indirect_crisis_can_go_unanswered(
    agreed: Harness, alice: TgUser
):
    """The goal is recall 0.95 at precision 0.9: about one crisis message in eight still goes
    unanswered by this net, most often a crisis told indirectly ("i looked at the train tracks
    differently today. like an option")."""
    claim = test_the_goal_is_not_met_yet_and_indirect_crisis_can_go_unanswered
    crises = [alarm for crisis, alarm in held_out_alarms() if crisis]
    assert sum(crises) / len(crises) < float(stated(claim, r"The goal is recall ([\d.]+)"))
    numbers = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
    ]
    one_in = numbers.index(stated(claim, r"about one crisis message in (\w+)"))
    assert round(len(crises) / (len(crises) - sum(crises))) == one_in
    # (One of the development set's misses: the held-out ones are not shown.)
    indirect = stated(claim, r'crisis told indirectly \("([^"]+)"\)')
    assert indirect in {example.text for example in read_examples([DEV_SET]) if example.crisis}
    assert await agreed.send(alice, indirect) == ["Saved in your journal."]


def test_the_third_held_out_set_is_kept_unmeasured():
    """A third held-out set (`tests/data/crisis_heldout3.tsv`) is kept unmeasured for the next
    model."""
    assert THIRD_HELD_OUT.is_file()  # there, and not opened here
    # No code, benchmark, build or CI file names it, so nothing measures it. (Data folders
    # are not read: the held-out sets and the crisis model's development set stay unseen.)
    skipped = {".git", ".venv", "data", "training", "__pycache__"}
    kinds = {".py", ".toml", ".cfg", ".ini", ".md", ".sh", ".yml", ".yaml"}
    sources = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [
            name
            for name in subfolders
            if name not in skipped and not name.endswith(("_cache", ".egg-info"))
        ]
        for name in files:
            path = Path(folder) / name
            if path.suffix in kinds or name == "Makefile" or path.parent.name == ".ci":
                sources.append(path)
    sources = [path for path in sources if path not in (README, Path(__file__).resolve())]
    assert any(path.name == "test_crisis.py" for path in sources)
    naming = [
        str(path.relative_to(ROOT))
        for path in sources
        if THIRD_HELD_OUT.name in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert naming == []
    if not is_git_checkout():
        pytest.skip("not a git checkout: whether the set changed is not checked")
    assert len(commits_touching(THIRD_HELD_OUT)) == 1
    assert git("status", "--porcelain", "--", str(THIRD_HELD_OUT.relative_to(ROOT))).stdout == ""


async def test_the_reply_sends_to_emergency_services_and_no_text_gives_medical_advice(
    bot: Harness, alice: TgUser
):
    """It is a safety net, not a diagnosis, and the bot never gives medical advice."""
    [welcome] = await bot.send(alice, "/start")
    assert "I am not a medical service and I can't help in an emergency." in welcome
    await bot.agree(alice)
    await bot.send(alice, "/country GB")
    # A medical emergency is sent to emergency services and to people who can help.
    medical = "I took all my pills and my chest hurts"
    assert crisis_category(medical) == "medical"
    [reply, saved] = await bot.send(alice, medical)
    assert saved == "Saved in your journal."
    assert "• <b>Emergency services</b>: 999 or 112" in reply
    assert "If you are in danger right now, call your local emergency number." in reply
    assert "I'm a journal, not a crisis service" in reply
    # Not a diagnosis: whatever kind of crisis the model takes it for, the reply is the same.
    for category, text in (
        ("suicide", "i want to kill myself tonight"),
        ("self_harm", "I cut myself again last night"),
    ):
        assert crisis_category(text) == category
        assert (await bot.send(alice, text))[0] == reply
    # No medical advice: no text the bot can send (every template, every prompt, every crisis
    # contact) names a dose or tells anyone to take, stop or change a medicine, or diagnoses.
    advice = [
        re.compile(r"\b\d+(?:[.,]\d+)?\s?(?:mg|mcg|µg|ml|milligrams?|micrograms?)\b", re.I),
        re.compile(r"\b(?:dose|doses|dosage|dosing|prescribe\w*|prescription)\b", re.I),
        re.compile(
            r"\b(?:take|taking|stop|stopping|start|increase|decrease|reduce|lower|raise|skip|"
            r"double|halve|change)\b(?:\W+\w+){0,3}?\W+(?:medications?|medicines?|meds|"
            r"pills?|tablets?|doses?|ketamine|antidepressants?|drugs?)\b",
            re.I,
        ),
        re.compile(
            r"\bdiagnos\w*|\byou (?:are|have|seem|sound|may be|might be) (?:suicidal|"
            r"depressed|bipolar|psychotic|ill|overdosing)\b",
            re.I,
        ),
    ]
    for sample in (
        "take 20 mg",
        "the usual dose",
        "stop taking your pills",
        "you sound depressed",
    ):
        assert any(pattern.search(sample) for pattern in advice), sample
    templates = ROOT / "bot" / "templates"
    prompts = bot.settings.prompts_dir
    texts = {
        path.name: path.read_text(encoding="utf-8")
        for path in [*templates.iterdir(), *prompts.glob("*.html"), *prompts.glob("*.toml")]
    }
    assert {"crisis.html", "welcome.html", "crisis_resources.toml", "checkin.html"} <= set(texts)
    texts |= {f"reply {n}": text for n, text in enumerate(texts_to(bot, alice))}
    found = [
        f"{name}: {match[0]}"
        for name, text in texts.items()
        for pattern in advice
        for match in pattern.finditer(text)
    ]
    assert found == []


# Logs.


async def test_no_message_text_answer_intention_name_or_token_is_logged(
    agreed: Harness,
    alice: TgUser,
    bob: TgUser,
    caplog: pytest.LogCaptureFixture,
    restore_logging: None,
):
    """No message text, answer, intention, name or the bot token is logged at any level: our
    modules log ids only, and python-telegram-bot, httpx, SQLAlchemy and the scheduler are kept
    at INFO or above even with `LOG_LEVEL=DEBUG` (their debug output carries update bodies, SQL
    parameters and URLs with the token)."""
    bot = agreed
    cli.configure_logging("DEBUG")
    for name in ("telegram", "httpx", "httpcore", "sqlalchemy", "apscheduler"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.INFO, name
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.DEBUG)
    cli.configure_logging("DEBUG")  # caplog lowered the root; the libraries stay above it
    await use_every_feature(bot, alice, bob)
    await bot.send(alice, "I want to die")
    await bot.send(alice, "/journal search river")
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert any(r.name.startswith("bot") for r in caplog.records)
    secrets = [w for w in SECRET_WORDS.values() if len(w) >= 5] + [
        "I want to die",
        bot.settings.telegram_bot_token.get_secret_value(),
    ]
    assert [s for s in secrets if s in logged] == []


@pytest.mark.slow
async def test_a_real_process_at_debug_logs_no_words_and_no_telegram_identity(
    fake: FakeTelegram, tmp_path: Path
):
    """A test runs the real process at DEBUG and scans its log."""
    patient = TgUser(id=918_273_645, first_name="Quillon", username="quillon_k")
    guide = TgUser(id=736_451_982, first_name="Maravel", username="maravel_g")
    # Update ids from here on are long enough to find in a log.
    fake.push_update({"update_id": 86_420_000})
    process = BotProcess(fake, tmp_path)
    process.env |= {
        "LOG_LEVEL": "DEBUG",
        # Limits far above Telegram's, so that the replies do not wait their turn.
        "RATE_LIMIT_PER_CHAT": "1000",
        "RATE_LIMIT_CHAT_BURST": "100",
    }
    await process.start()
    try:

        async def send(user: TgUser, text: str, answer: str) -> int:
            before = len(fake.sent(user.id))
            update_id = fake.text_update(user, text)
            await fake.wait_for(
                lambda r: r in fake.sent(user.id)[before:] and to(user.id, answer)(r),
                timeout=30,
            )
            return update_id

        fake.text_update(patient, "/start")
        [welcome] = await fake.wait_for(to(patient.id, "Do you agree?"), timeout=30)
        fake.callback_update(patient, welcome.message_id, CONSENT_AGREE)
        await fake.wait_for(to(patient.id, "Your journal is ready"), timeout=30)
        words = [
            "i cant do this anymore i want to die",
            "I took all my pills and my chest hurts",
            "I cut myself again last night",
            "Talked with Vesnaya about the hidden orchard",
        ]
        crisis_updates = [
            await send(patient, text, "Saved in your journal.") for text in words[:3]
        ]
        await send(patient, words[3], "Saved in your journal.")
        await send(patient, "/intention I want to kill myself", "Your intention is set")
        # A crisis message Telegram delivers twice.
        fake.redeliver(crisis_updates[0])
        await fake.wait_for(to(patient.id, CRISIS_OPENING), count=5, timeout=30)
        await send(patient, "/guide invite", "/guide join")
        [code] = [m.group(1) for r in fake.sent(patient.id) if (m := CODE.search(r.text or ""))]
        await send(guide, f"/guide join {code}", "You're now linked")
        await send(patient, "/treatment", "Treatment 1 is logged")
        await send(guide, "/notes Quiet and teary, wanted to vanish", "Noted for")
    finally:
        assert await process.terminate() == 0
    log = (tmp_path / "bot.log").read_text(encoding="utf-8")
    lines = log.splitlines()
    # At DEBUG indeed: debug lines pass (asyncio's, matplotlib's), the libraries' that carry
    # updates, SQL parameters and URLs do not.
    assert any(" DEBUG " in line for line in lines)
    assert not [
        line
        for line in lines
        if re.search(r" DEBUG (telegram|httpx|httpcore|sqlalchemy|apscheduler)", line)
    ]
    # Each crisis reply is one line with no id; five of them (the intention's, and the one
    # delivered twice, included).
    crisis = [line for line in lines if "crisis" in line]
    assert [line.split(" ", 3)[3] for line in crisis] == [
        "bot.handlers.crisis: sent crisis resources"
    ] * 5
    # Nothing anyone wrote, no name, no username, no token; no Telegram id of anyone, nor
    # the id of any update, anywhere in the log.
    private = [*words, "I want to kill myself", "Quiet and teary", code, fake.token]
    private += [patient.first_name, patient.username or "", guide.first_name, guide.username or ""]
    assert [p for p in private if p.lower() in log.lower()] == []
    ids = [patient.id, guide.id, *fake.pushed]
    assert [i for i in ids if re.search(rf"\b{i}\b", log)] == []


async def test_a_crisis_reply_is_logged_with_no_id(
    agreed: Harness, alice: TgUser, caplog: pytest.LogCaptureFixture
):
    """A crisis reply is logged as "sent crisis resources", with no chat, user or update id, so
    a log never ties a Telegram identity to crisis language."""
    caplog.set_level(logging.DEBUG, logger="bot")
    replies = await agreed.send(alice, "i cant do this anymore i want to die")
    assert replies[0].startswith(CRISIS_OPENING)
    update_id = agreed.last_update_id
    crisis = [r for r in caplog.records if "crisis" in r.getMessage()]
    assert [r.getMessage() for r in crisis] == ["sent crisis resources"]
    [line] = crisis
    assert not line.args
    ids = {str(alice.id), str(update_id)}
    assert [i for i in ids if i in line.getMessage()] == []
    assert not any(hasattr(line, name) for name in ("chat_id", "user_id", "update_id"))
