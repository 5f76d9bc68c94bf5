"""Build the Application: defaults, handlers, the dispatch job, the command menu, lifecycle."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from telegram import BotCommand, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults
from telegram.request import HTTPXRequest

from bot.config import DEFAULT_PROMPTS_DIR, Settings
from bot.crisis import load_resources
from bot.db.crypto import use_cipher
from bot.db.migrate import upgrade_to_head
from bot.db.session import create_db_engine, create_session_factory
from bot.dispatch import dispatch_due
from bot.handlers import register_handlers
from bot.inbox import Inbox, InboxBot
from bot.keys import open_cipher
from bot.prompt_folder import CRISIS_RESOURCES
from bot.ratelimit import Limit, TelegramRateLimiter
from bot.render import Renderer
from bot.resources import BOT_DATA_KEY, Clock, Companion, companion, utc_now
from bot.rights import purge_before
from bot.schedule import load_schedule
from bot.telegram_bot import CompanionBot
from bot.updates import ChatOrderedUpdateProcessor

# python-telegram-bot 22 hands out durations (RetryAfter.retry_after) as timedelta with this.
os.environ.setdefault("PTB_TIMEDELTA", "true")

log = logging.getLogger(__name__)

MENU = (
    "treatment",
    "intention",
    "journal",
    "recap",
    "mood",
    "practice",
    "remind",
    "goal",
    "goals",
    "notes",
    "guide",
    "share",
    "export",
    "timezone",
    "quiet",
    "pause",
    "resume",
    "crisis",
    "country",
    "privacy",
    "delete",
    "help",
    "start",
)
DISPATCH_JOB = "dispatch"
MAINTENANCE_JOB = "maintenance"
# Handled updates are remembered this long, to recognise a redelivery of the same update.
INBOX_MEMORY = timedelta(days=2)

CompanionApp = Application[Any, Any, Any, Any, Any, Any]


def crisis_resources_path(prompts_dir: Path) -> Path:
    """The operator's crisis resources in PROMPTS_DIR, else the ones this repository ships."""
    own = prompts_dir / CRISIS_RESOURCES
    return own if own.is_file() else DEFAULT_PROMPTS_DIR / CRISIS_RESOURCES


def build_companion(settings: Settings, clock: Clock = utc_now) -> Companion:
    """Open the database (migrated to the newest schema), read the prompts, set up templates."""
    engine = create_db_engine(settings.database_url)
    use_cipher(open_cipher(settings, engine))
    upgrade_to_head(engine)
    return Companion(
        settings=settings,
        sessions=create_session_factory(engine),
        schedule=load_schedule(settings.prompts_dir),
        texts=Renderer(),
        prompts=Renderer(settings.prompts_dir),
        crisis=load_resources(crisis_resources_path(settings.prompts_dir)),
        clock=clock,
    )


async def dispatch_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one repeating job: send every prompt that is due."""
    app = context.application
    report = await dispatch_due(companion(context), context.bot, lambda: app.running)
    if report.sent or report.failed or report.retrying or report.recaps or report.reminders:
        log.info(
            "dispatch: %s sent, %s deferred, %s retrying, %s failed, %s weekly recaps, "
            "%s reminders",
            len(report.sent),
            report.deferred,
            report.retrying,
            report.failed,
            report.recaps,
            report.reminders,
        )


async def maintenance_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Once a day: forget old handled updates; delete content older than RETENTION_DAYS."""
    res = companion(context)
    if isinstance(context.bot, InboxBot):
        context.bot.inbox.prune(res.clock() - INBOX_MEMORY)
    days = res.settings.retention_days
    if days is None:
        return
    with res.sessions.begin() as session:
        removed = purge_before(session, res.clock() - timedelta(days=days))
    log.info("retention: removed %s rows older than %s days", removed, days)


async def post_init(app: CompanionApp) -> None:
    res: Companion = app.bot_data[BOT_DATA_KEY]
    if isinstance(app.bot, InboxBot):
        # Stored before a crash but never handled: these go first, in order.
        for pending in app.bot.inbox.unhandled(app.bot):
            await app.update_queue.put(pending)
    await app.bot.set_my_commands(
        [BotCommand(name, res.label(f"command_{name}")) for name in MENU]
    )
    if app.job_queue is not None:
        app.job_queue.run_repeating(
            dispatch_job,
            interval=res.settings.dispatch_interval_seconds,
            first=res.settings.dispatch_interval_seconds,
            name=DISPATCH_JOB,
            job_kwargs={"max_instances": 1, "coalesce": True},
        )
        app.job_queue.run_repeating(
            maintenance_job, interval=timedelta(days=1), first=60, name=MAINTENANCE_JOB
        )


async def post_shutdown(app: CompanionApp) -> None:
    res: Companion = app.bot_data[BOT_DATA_KEY]
    bind = res.sessions.kw.get("bind")
    if bind is not None:
        bind.dispose()


def rate_limiter_for(settings: Settings) -> TelegramRateLimiter:
    return TelegramRateLimiter(
        overall=Limit.per_second(settings.rate_limit_overall),
        per_chat=Limit.per_second(
            settings.rate_limit_per_chat, burst=settings.rate_limit_chat_burst
        ),
    )


def build_application(
    companion_: Companion, rate_limiter: TelegramRateLimiter | None = None
) -> CompanionApp:
    """The Application that runs the bot; tests build the same one against a fake Bot API,
    with a rate limiter whose retries do not make them wait."""
    settings = companion_.settings
    inbox = Inbox(companion_.sessions, companion_.clock)
    bot = CompanionBot(
        settings.telegram_bot_token.get_secret_value(),
        inbox=inbox,
        base_url=settings.telegram_api_base_url,
        defaults=Defaults(
            parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)
        ),
        # As ApplicationBuilder would: a pool for sending, and one connection for long polling.
        request=HTTPXRequest(
            connection_pool_size=256,
            connect_timeout=settings.telegram_timeout_seconds,
            read_timeout=settings.telegram_timeout_seconds,
            write_timeout=settings.telegram_timeout_seconds,
        ),
        get_updates_request=HTTPXRequest(connect_timeout=settings.telegram_timeout_seconds),
        rate_limiter=rate_limiter or rate_limiter_for(settings),
    )
    builder = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(ChatOrderedUpdateProcessor(companion_.chat_lock, inbox))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
    )
    app = builder.build()
    app.bot_data[BOT_DATA_KEY] = companion_
    register_handlers(app)
    return app
