"""Inline keyboards and the callback data they carry."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.companion import Companion
from bot.core.schedule import Step
from bot.core.text import small_number
from bot.domain.goals import ANSWERS as GOAL_ANSWERS
from bot.domain.journal import SCALE, PromptAction
from bot.domain.practices import KINDS, MINUTE_CHOICES

CONSENT_AGREE = "consent:agree"
# One tap to the crisis contacts, under every prompt and journal page.
SUPPORT = "support"
PROMPT_PREFIX = "prompt:"
JOURNAL_PREFIX = "journal:"
MOOD_PREFIX = "mood:"
FILE_PREFIX = "file:"
TREATMENT_PREFIX = "jtreat:"
WEEKLY_ON = "weekly:on"
DELETE_PREFIX = "delete:"
DELETE_YES = "delete:yes"
DELETE_NO = "delete:no"
SEARCH_PREFIX = "jsearch:"
PRACTICE_PREFIX = "practice:"
MINUTES_PREFIX = "pmin:"
GOAL_PREFIX = "goal:"
GUIDE_ANNOUNCE_PREFIX = "guide:announce:"
GUIDE_ANNOUNCE_ON = "guide:announce:on"
GUIDE_ANNOUNCE_OFF = "guide:announce:off"
# Telegram allows 64 bytes of callback data; a search's paging buttons carry its words.
MAX_SEARCH_BYTES = 64 - len(SEARCH_PREFIX) - len("999:")


def consent_keyboard(companion: Companion) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(companion.label("agree"), callback_data=CONSENT_AGREE)]]
    )


def callback_number(data: str, prefix: str) -> int | None:
    """The number after `prefix` in callback data ("journal:3", "jsearch:2:words"), or None."""
    return small_number(data.removeprefix(prefix).split(":", 1)[0])


def prompt_callback(prompt_id: int, action: PromptAction, value: int | None = None) -> str:
    suffix = "" if value is None else f":{value}"
    return f"{PROMPT_PREFIX}{action}:{prompt_id}{suffix}"


def parse_prompt_callback(data: str) -> tuple[PromptAction, int, int | None] | None:
    parts = data.removeprefix(PROMPT_PREFIX).split(":")
    try:
        action = PromptAction(parts[0])
    except ValueError:
        return None
    numbers = [small_number(part) for part in parts[1:]]
    if len(numbers) not in (1, 2) or None in numbers:
        return None
    return action, numbers[0] or 0, numbers[1] if len(numbers) == 2 else None


def scale_rows(callback_data: Callable[[int], str]) -> list[list[InlineKeyboardButton]]:
    """The 1-10 scale as two rows of five."""
    values = list(SCALE)
    half = len(values) // 2
    return [
        [InlineKeyboardButton(str(v), callback_data=callback_data(v)) for v in chunk]
        for chunk in (values[:half], values[half:])
    ]


def support_row(companion: Companion) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(companion.label("support"), callback_data=SUPPORT)]


def support_keyboard(companion: Companion) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([support_row(companion)])


def mood_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(scale_rows(lambda value: f"{MOOD_PREFIX}{value}"))


def prompt_keyboard(
    companion: Companion, step: Step, prompt_id: int
) -> InlineKeyboardMarkup | None:
    """Later and Skip under every prompt that expects an answer, the scale for scale steps, and
    the way to the crisis contacts under every prompt."""
    if step.reply == "none":
        return support_keyboard(companion)
    if step.reply == "scale":
        rows = scale_rows(lambda value: prompt_callback(prompt_id, PromptAction.SCALE, value))
    elif step.reply == "practice":
        rows = practice_rows(
            companion, lambda index: prompt_callback(prompt_id, PromptAction.PRACTICE, index)
        )
    else:
        rows = []
    rows.append(
        [
            InlineKeyboardButton(
                companion.label("later"),
                callback_data=prompt_callback(prompt_id, PromptAction.LATER),
            ),
            InlineKeyboardButton(
                companion.label("skip"),
                callback_data=prompt_callback(prompt_id, PromptAction.SKIP),
            ),
        ]
    )
    rows.append(support_row(companion))
    return InlineKeyboardMarkup(rows)


def paging_row(
    companion: Companion, page: int, pages: int, callback_data: Callable[[int], str]
) -> list[InlineKeyboardButton]:
    """Older and Newer; page 0 is the newest."""
    row = []
    if page + 1 < pages:
        row.append(
            InlineKeyboardButton(companion.label("older"), callback_data=callback_data(page + 1))
        )
    if page > 0:
        row.append(
            InlineKeyboardButton(companion.label("newer"), callback_data=callback_data(page - 1))
        )
    return row


def journal_keyboard(
    companion: Companion,
    page: int,
    pages: int,
    files: Sequence[tuple[int, str]] = (),
    treatments: Sequence[int] = (),
) -> InlineKeyboardMarkup | None:
    """A button per kept file (entry id, label), one per recent treatment, Older and Newer."""
    rows = [
        [InlineKeyboardButton(label, callback_data=f"{FILE_PREFIX}{entry_id}")]
        for entry_id, label in files
    ]
    if treatments:
        rows.append(
            [
                InlineKeyboardButton(
                    companion.label("treatment_button", number=number),
                    callback_data=f"{TREATMENT_PREFIX}{number}",
                )
                for number in treatments
            ]
        )
    rows.append(paging_row(companion, page, pages, lambda p: f"{JOURNAL_PREFIX}{p}"))
    rows.append(support_row(companion))
    return InlineKeyboardMarkup([row for row in rows if row])


def search_keyboard(
    companion: Companion, page: int, pages: int, words: Sequence[str]
) -> InlineKeyboardMarkup | None:
    query = " ".join(words)
    row = paging_row(companion, page, pages, lambda p: f"{SEARCH_PREFIX}{p}:{query}")
    return InlineKeyboardMarkup([row for row in (row, support_row(companion)) if row])


def weekly_offer_keyboard(companion: Companion) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(companion.label("weekly_yes"), callback_data=WEEKLY_ON)]]
    )


def delete_keyboard(companion: Companion) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(companion.label("delete_yes"), callback_data=DELETE_YES)],
            [InlineKeyboardButton(companion.label("delete_no"), callback_data=DELETE_NO)],
        ]
    )


def announce_choice_keyboard(companion: Companion) -> InlineKeyboardMarkup:
    """Under an invitation: should the guide be told of each treatment logged?"""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    companion.label("announce_yes"), callback_data=GUIDE_ANNOUNCE_ON
                )
            ],
            [
                InlineKeyboardButton(
                    companion.label("announce_no"), callback_data=GUIDE_ANNOUNCE_OFF
                )
            ],
        ]
    )


def announce_toggle_keyboard(companion: Companion, *, on: bool) -> InlineKeyboardMarkup:
    """Under /guide: the other choice than the current one."""
    label, data = (
        ("announce_stop", GUIDE_ANNOUNCE_OFF) if on else ("announce_start", GUIDE_ANNOUNCE_ON)
    )
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(companion.label(label), callback_data=data)]]
    )


def practice_rows(
    companion: Companion, callback_data: Callable[[int], str]
) -> list[list[InlineKeyboardButton]]:
    """Every practice, two to a row, by its place in KINDS."""
    buttons = [
        InlineKeyboardButton(
            companion.label("practice_name", kind=kind), callback_data=callback_data(i)
        )
        for i, kind in enumerate(KINDS)
    ]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def practice_keyboard(companion: Companion) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        practice_rows(companion, lambda index: f"{PRACTICE_PREFIX}{index}")
    )


def minutes_keyboard(companion: Companion, practice_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    companion.label("minutes", minutes=minutes),
                    callback_data=f"{MINUTES_PREFIX}{practice_id}:{minutes}",
                )
                for minutes in MINUTE_CHOICES
            ]
        ]
    )


def parse_minutes_callback(data: str) -> tuple[int, int] | None:
    parts = [small_number(part) for part in data.removeprefix(MINUTES_PREFIX).split(":")]
    if len(parts) != 2 or parts[0] is None or parts[1] is None:
        return None
    return parts[0], parts[1]


def reminder_keyboard(companion: Companion, kind: str) -> InlineKeyboardMarkup:
    """One button: note the reminded practice as done (then minutes and a note, as usual)."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    companion.label("reminder_done", kind=kind),
                    callback_data=f"{PRACTICE_PREFIX}{KINDS.index(kind)}",
                )
            ]
        ]
    )


def goal_checkin_keyboard(
    companion: Companion, goals: Sequence[tuple[int, int]]
) -> InlineKeyboardMarkup:
    """A row per goal, (goal id, number): yes, partly, no."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    companion.label("goal_answer", number=number, answer=answer),
                    callback_data=f"{GOAL_PREFIX}{goal_id}:{answer}",
                )
                for answer in GOAL_ANSWERS
            ]
            for goal_id, number in goals
        ]
    )


def parse_goal_callback(data: str) -> tuple[int, str] | None:
    raw_id, _, answer = data.removeprefix(GOAL_PREFIX).partition(":")
    goal_id = small_number(raw_id)
    if goal_id is None or answer not in GOAL_ANSWERS:
        return None
    return goal_id, answer
