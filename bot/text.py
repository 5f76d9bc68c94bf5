"""Small text helpers shared by the journal and the recap."""

from __future__ import annotations

from bot.schedule import Schedule


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
