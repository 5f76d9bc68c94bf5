"""Small text helpers shared by the journal and the recap."""

from __future__ import annotations

from bot.core.schedule import Schedule

# Numbers a person or a button may give: ids, days, page and treatment numbers. Beyond this
# a database integer column overflows, and no such row exists anyway.
MAX_NUMBER = 2**31 - 1


def small_number(text: str) -> int | None:
    """ASCII digits as an int up to MAX_NUMBER, else None ("²" is a digit to str.isdigit(),
    not to int(); "99999999999999999999" overflows a query)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if number <= MAX_NUMBER else None


def shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, with an ellipsis if cut.

    Line breaks are kept: a patient's paragraphs stay paragraphs.
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:\n") + "…"


def step_title(schedule: Schedule, key: str) -> str:
    """The step's human title; a step removed from the schedule shows its key."""
    step = schedule.step(key)
    return step.title if step else key.replace("_", " ").capitalize()
