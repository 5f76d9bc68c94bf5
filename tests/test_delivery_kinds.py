"""The dispatch job runs every kind of delivery in bot/delivery/: a new kind is one new module."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot.delivery
from bot.delivery.dispatch import delivery_kinds, dispatch_due
from tests.auxil.harness import Harness

DELIVERY = Path(bot.delivery.__file__).parent
# The loop, what a kind is, and what the kinds on a patient's own clock share: the rest are kinds.
NOT_KINDS = {"__init__", "dispatch", "kind", "recurring"}

# A kind as someone would add one: claims rows 1..5 in batches of two, "sends" each.
EXTRA_KIND = """
from bot.delivery.kind import Claimed

class Extra:
    name = "extra"
    order = 99
    due = [1, 2, 3, 4, 5]
    delivered: list[int] = []
    released: list[int] = []

    def claim(self, companion, session, now, report):
        batch, self.due[:] = self.due[:2], self.due[2:]
        return [Claimed(row, 1000 + row, now) for row in batch]

    async def deliver(self, companion, bot, claimed, report):
        self.delivered.append(claimed.row_id)
        report.delivered[self.name] += 1

    def release(self, companion, claimed):
        self.released.append(claimed.row_id)

KIND = Extra()
"""


@pytest.fixture
def extra_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A module with a new kind, in a folder the delivery package also reads from."""
    (tmp_path / "extra_kind.py").write_text(EXTRA_KIND, encoding="utf-8")
    monkeypatch.setattr(bot.delivery, "__path__", [*bot.delivery.__path__, str(tmp_path)])
    delivery_kinds.cache_clear()
    yield importlib.import_module("bot.delivery.extra_kind").KIND
    sys.modules.pop("bot.delivery.extra_kind", None)
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
    # Asked to stop once the first row of the first batch is out.
    delivered: list[int] = extra_kind.delivered  # type: ignore[attr-defined]
    report = await dispatch_due(bot.companion, bot.app.bot, lambda: not delivered)
    assert extra_kind.delivered == [1]  # type: ignore[attr-defined]
    assert extra_kind.released == [2]  # type: ignore[attr-defined]
    assert report.delivered["extra"] == 1


def test_kinds_are_ordered_by_their_order_not_their_file_names() -> None:
    orders = [kind.order for kind in delivery_kinds()]
    assert orders == sorted(orders)
    assert len(set(orders)) == len(orders)
