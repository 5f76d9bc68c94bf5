"""Inline keyboards and the callback data they carry."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.journal import SCALE_VALUES, PromptAction
from bot.resources import Companion
from bot.schedule import Step

CONSENT_AGREE = "consent:agree"
PROMPT_PREFIX = "prompt:"
JOURNAL_PREFIX = "journal:"


def consent_keyboard(companion: Companion) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(companion.label("agree"), callback_data=CONSENT_AGREE)]]
    )


def prompt_callback(prompt_id: int, action: PromptAction, value: int | None = None) -> str:
    suffix = "" if value is None else f":{value}"
    return f"{PROMPT_PREFIX}{action}:{prompt_id}{suffix}"


def parse_prompt_callback(data: str) -> tuple[PromptAction, int, int | None] | None:
    parts = data.removeprefix(PROMPT_PREFIX).split(":")
    try:
        action = PromptAction(parts[0])
        prompt_id = int(parts[1])
        value = int(parts[2]) if len(parts) == 3 else None
    except (ValueError, IndexError):
        return None
    return action, prompt_id, value


def prompt_keyboard(
    companion: Companion, step: Step, prompt_id: int
) -> InlineKeyboardMarkup | None:
    """Later and Skip under every prompt that expects an answer, and the scale for scale steps."""
    if step.reply == "none":
        return None
    rows: list[list[InlineKeyboardButton]] = []
    if step.reply == "scale":
        values = list(SCALE_VALUES)
        half = len(values) // 2
        for chunk in (values[:half], values[half:]):
            rows.append(
                [
                    InlineKeyboardButton(
                        str(v), callback_data=prompt_callback(prompt_id, PromptAction.SCALE, v)
                    )
                    for v in chunk
                ]
            )
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
    return InlineKeyboardMarkup(rows)


def journal_keyboard(companion: Companion, page: int, pages: int) -> InlineKeyboardMarkup | None:
    """Older and Newer buttons; page 0 is the newest."""
    buttons = []
    if page + 1 < pages:
        buttons.append(
            InlineKeyboardButton(
                companion.label("older"), callback_data=f"{JOURNAL_PREFIX}{page + 1}"
            )
        )
    if page > 0:
        buttons.append(
            InlineKeyboardButton(
                companion.label("newer"), callback_data=f"{JOURNAL_PREFIX}{page - 1}"
            )
        )
    return InlineKeyboardMarkup([buttons]) if buttons else None
