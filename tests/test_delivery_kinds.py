"""The dispatch job runs every kind of delivery in bot/delivery/: a new kind is one new module."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

import bot.delivery
from bot.delivery.dispatch import delivery_kinds, dispatch_due
from bot.delivery.kind import IN_FLIGHT
from tests.auxil.harness import Harness
from tests.auxil.seed import add_due_prompts
from tests.fake_telegram import TgUser

DELIVERY = Path(bot.delivery.__file__).parent
# The loop, what a kind is, and what the kinds on a patient's own clock share: the rest are kinds.
NOT_KINDS = {"__init__", "dispatch", "kind", "recurring"}

# A kind as someone would add one: claims rows 1..5 in batches of two, "sends" each.
EXTRA_KIND = """
from bot.delivery.kind import Claimed, Delivery

class Extra:
    name = "extra"
    order = 99
    due = [1, 2, 3, 4, 5]
    delivered: list[int] = []
    released: list[int] = []

    def claim(self, companion, session, now, report):
        batch, self.due[:] = self.due[:2], self.due[2:]
        return [Claimed(row, 1000 + row, now) for row in batch]

    def compose(self, companion, session, batch, report):
        return [Delivery(claimed, f"row {claimed.row_id}") for claimed in batch]

    async def send(self, companion, bot, delivery):
        self.delivered.append(delivery.claimed.row_id)

    def record(self, companion, session, deliveries, report):
        for delivery in deliveries:
            if delivery.sent:
                report.delivered[self.name] += 1
            else:
                self.released.append(delivery.claimed.row_id)

KIND = Extra()
"""


# A kind on the patient's own clock, as someone would add one: it says how to claim, compose
# and record; sending, the chat's lock, retries and the report come with RecurringKind. (It
# borrows the practice reminder's table for its due times.)
GREETING_KIND = """
from bot.db.models import Patient, Reminder
from bot.delivery.recurring import RecurringKind, Text

class Greeting(RecurringKind[Text]):
    name = "greeting"
    order = 98
    model = Reminder
    due = [1]
    recorded: list[int] = []

    def claim_patients(self, companion, session, now):
        batch, self.due[:] = self.due[:], []
        return batch

    def compose_for(self, companion, session, patient_id):
        return Text(f"Hello, {session.get_one(Patient, patient_id).first_name}")

    def record_for(self, companion, session, patient_id, receipt):
        self.recorded.append((patient_id, receipt.text))

KIND = Greeting()
"""


def add_kind(name: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """A module with a new kind, in a folder the delivery package also reads from."""
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.setattr(bot.delivery, "__path__", [*bot.delivery.__path__, str(tmp_path)])
    delivery_kinds.cache_clear()
    return importlib.import_module(f"bot.delivery.{name}").KIND


@pytest.fixture
def extra_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    yield add_kind("extra_kind", EXTRA_KIND, tmp_path, monkeypatch)
    sys.modules.pop("bot.delivery.extra_kind", None)
    delivery_kinds.cache_clear()


@pytest.fixture
def greeting_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    yield add_kind("greeting_kind", GREETING_KIND, tmp_path, monkeypatch)
    sys.modules.pop("bot.delivery.greeting_kind", None)
    delivery_kinds.cache_clear()


def test_every_kind_in_the_folder_runs_in_its_order() -> None:
    kinds = delivery_kinds()
    assert [kind.name for kind in kinds] == [
        "reflection prompt",
        "weekly recap",
        "goal check-in",
        "practice reminder",
    ]
    modules = {path.stem for path in DELIVERY.glob("*.py")} - NOT_KINDS
    assert len(modules) == len(kinds)  # each module besides those is a kind the job runs


async def test_a_new_module_is_a_new_kind_the_job_sends(bot: Harness, extra_kind: object) -> None:
    assert extra_kind in delivery_kinds()
    report = await bot.dispatch()
    # Claimed batch after batch until none was left, each row delivered once.
    assert extra_kind.delivered == [1, 2, 3, 4, 5]  # type: ignore[attr-defined]
    assert report.delivered["extra"] == 5
    assert extra_kind.released == []  # type: ignore[attr-defined]


async def test_a_stopping_bot_gives_back_what_it_has_not_begun(
    bot: Harness, extra_kind: object
) -> None:
    assert bot.companion is not None
    assert bot.app is not None
    # Asked to stop once the first batch is out: the next batch, claimed and composed while
    # that one travelled, is given back whole.
    delivered: list[int] = extra_kind.delivered  # type: ignore[attr-defined]
    report = await dispatch_due(bot.companion, bot.app.bot, lambda: not delivered)
    assert extra_kind.delivered == [1, 2]  # type: ignore[attr-defined]
    assert extra_kind.released == [3, 4]  # type: ignore[attr-defined]
    assert extra_kind.due == [5]  # type: ignore[attr-defined]  # never claimed
    assert report.delivered["extra"] == 2


def test_kinds_are_ordered_by_their_order_not_their_file_names() -> None:
    orders = [kind.order for kind in delivery_kinds()]
    assert orders == sorted(orders)
    assert len(set(orders)) == len(orders)


async def test_a_kind_on_the_patients_clock_says_only_how_to_claim_compose_and_record(
    agreed: Harness, alice: TgUser, greeting_kind: object
) -> None:
    report = await agreed.dispatch()
    [greeting] = agreed.fake.sent(alice.id)[-1:]
    assert greeting.text == f"Hello, {alice.first_name}"
    # Recorded with what Telegram answered (the sent message).
    assert greeting_kind.recorded == [(1, greeting.text)]  # type: ignore[attr-defined]
    assert report.delivered["greeting"] == 1


async def test_a_batch_of_prompts_is_composed_in_one_transaction_and_recorded_in_one(
    bot: Harness,
) -> None:
    assert bot.companion is not None
    with bot.session() as session:
        chats = add_due_prompts(session, bot.clock(), IN_FLIGHT)  # one batch
        session.commit()
    engine = bot.companion.sessions.kw["bind"]
    # Transactions that read or wrote prompts (not the chats' leases or send lanes, which
    # PostgreSQL adds, nor the other kinds' claims).
    touching: set[int] = set()
    commits = [0]

    def statement(connection: object, _cursor: object, sql: str, *_: object) -> None:
        if "scheduled_prompts" in sql:
            touching.add(id(connection))

    def commit(connection: object) -> None:
        if id(connection) in touching:
            touching.discard(id(connection))
            commits[0] += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        report = await bot.dispatch()
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    assert len(report.sent) == IN_FLIGHT
    assert {request.chat_id for request in bot.fake.sent()} == chats
    # One claim, one compose, one record, and the claim that finds nothing more: not two
    # transactions for each prompt.
    assert commits[0] == 4
