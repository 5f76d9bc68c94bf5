"""Telegram in and out: thin callbacks that open a session, call the domain, render a reply."""

from __future__ import annotations

from typing import Any

from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.handlers import (
    crisis,
    errors,
    export,
    fallback,
    goals,
    guides,
    journal,
    mood,
    onboarding,
    practices,
    privacy,
    recap,
    settings,
    treatments,
)
from bot.telegram.keyboards import (
    CONSENT_AGREE,
    DELETE_PREFIX,
    FILE_PREFIX,
    GOAL_PREFIX,
    GUIDE_ANNOUNCE_PREFIX,
    JOURNAL_PREFIX,
    MINUTES_PREFIX,
    MOOD_PREFIX,
    PRACTICE_PREFIX,
    PROMPT_PREFIX,
    SEARCH_PREFIX,
    SUPPORT,
    TREATMENT_PREFIX,
    WEEKLY_ON,
)

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


def register_handlers(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Every handler, in the order Telegram updates are matched against them."""
    # Groups and channels first: the journal is private, so nothing there reaches the rest.
    app.add_handler(
        MessageHandler(~filters.ChatType.PRIVATE & filters.UpdateType.MESSAGES, fallback.group)
    )
    # Before everything else, in its own group so the usual handling still follows: a message
    # that sounds like a crisis gets resources at once, and is then saved as usual.
    app.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE
            & filters.UpdateType.MESSAGES
            & (filters.TEXT | filters.CAPTION),
            crisis.crisis_check,
        ),
        group=-1,
    )

    commands = {
        "start": onboarding.start,
        "help": onboarding.help_command,
        "timezone": settings.timezone,
        "quiet": settings.quiet,
        "pause": settings.pause,
        "resume": settings.resume,
        "intention": treatments.intention,
        "treatment": treatments.treatment,
        "journal": journal.journal,
        "mood": mood.mood,
        "practice": practices.practice,
        "remind": practices.remind,
        "goal": goals.goal,
        "goals": goals.goals,
        "notes": guides.notes,
        "guide": guides.guide,
        "share": guides.share,
        "recap": recap.recap,
        "export": export.export,
        "privacy": privacy.privacy,
        "crisis": crisis.crisis,
        "country": crisis.country,
        "delete": privacy.delete,
    }
    for name, callback in commands.items():
        app.add_handler(CommandHandler(name, callback, filters=PRIVATE))

    app.add_handler(CallbackQueryHandler(onboarding.consent, pattern=f"^{CONSENT_AGREE}$"))
    # Before the consent gate of the others: the crisis contacts are for anyone, any time.
    app.add_handler(CallbackQueryHandler(crisis.support_button, pattern=f"^{SUPPORT}$"))
    app.add_handler(CallbackQueryHandler(treatments.prompt_button, pattern=f"^{PROMPT_PREFIX}"))
    app.add_handler(CallbackQueryHandler(journal.journal_page, pattern=f"^{JOURNAL_PREFIX}"))
    app.add_handler(CallbackQueryHandler(journal.file_button, pattern=f"^{FILE_PREFIX}"))
    app.add_handler(CallbackQueryHandler(journal.search_page, pattern=f"^{SEARCH_PREFIX}"))
    app.add_handler(CallbackQueryHandler(journal.treatment_button, pattern=f"^{TREATMENT_PREFIX}"))
    app.add_handler(CallbackQueryHandler(mood.mood_button, pattern=f"^{MOOD_PREFIX}"))
    app.add_handler(CallbackQueryHandler(practices.practice_button, pattern=f"^{PRACTICE_PREFIX}"))
    app.add_handler(CallbackQueryHandler(practices.minutes_button, pattern=f"^{MINUTES_PREFIX}"))
    app.add_handler(CallbackQueryHandler(goals.goal_button, pattern=f"^{GOAL_PREFIX}"))
    app.add_handler(CallbackQueryHandler(recap.weekly_button, pattern=f"^{WEEKLY_ON}$"))
    app.add_handler(CallbackQueryHandler(privacy.delete_button, pattern=f"^{DELETE_PREFIX}"))
    app.add_handler(
        CallbackQueryHandler(guides.announce_button, pattern=f"^{GUIDE_ANNOUNCE_PREFIX}")
    )
    app.add_handler(CallbackQueryHandler(fallback.unknown_button))

    # After the known commands: any other command is unknown, not a journal entry.
    app.add_handler(MessageHandler(PRIVATE & filters.COMMAND, fallback.unknown_command))
    # Text and media become entries; stickers, locations, contacts get a kind explanation;
    # service messages (pins, joins) are ignored.
    app.add_handler(MessageHandler(PRIVATE & ~filters.StatusUpdate.ALL, journal.journal_message))
    app.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & filters.UpdateType.EDITED_MESSAGE, journal.edited_message
        )
    )

    app.add_error_handler(errors.error_handler)
