"""Build the Application: defaults, handlers, the dispatch job, the command menu, lifecycle."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from telegram import BotCommand, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.ext import ApplicationBuilder, ContextTypes, Defaults
from telegram.request import HTTPXRequest

from bot.companion import BOT_DATA_KEY, Clock, Companion, companion, utc_now
from bot.config import DEFAULT_PROMPTS_DIR, Settings
from bot.core.schedule import load_schedule
from bot.crisis import load_resources
from bot.db.crypto import use_cipher
from bot.db.keys import open_cipher
from bot.db.migrate import upgrade_to_head
from bot.db.session import create_db_engine, create_session_factory
from bot.delivery.dispatch import dispatch_due
from bot.domain.guides import forget_spent
from bot.domain.rights import purge_before
from bot.handlers import register_handlers
from bot.render.jinja import Renderer
from bot.render.prompt_folder import CRISIS_RESOURCES
from bot.telegram.bot import CompanionBot
from bot.telegram.coordination import ChatLocks, SendSlots, forget_stale, gone, instance_name, seen
from bot.telegram.inbox import Inbox, InboxBot
from bot.telegram.ratelimit import Limit, TelegramRateLimiter
from bot.telegram.request import BoundedRequest
from bot.telegram.updates import ChatOrderedUpdateProcessor, CompanionApp

__all__ = ["MODE_KEY", "CompanionApp", "build_application", "build_companion"]

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
SWEEP_JOB = "sweep"
# Updates unhandled this long are taken up by whichever instance looks: the one that received
# them died, or is stuck. Longer than a chat's updates normally wait for one another.
WAITING_UPDATE = timedelta(seconds=20)
HEARTBEAT = timedelta(seconds=15)
# Handled updates are remembered this long, to recognise a redelivery of the same update.
INBOX_MEMORY = timedelta(days=2)

MODE_KEY = "mode"


def crisis_resources_path(prompts_dir: Path) -> Path:
    """The operator's crisis resources in PROMPTS_DIR, else the ones this repository ships."""
    own = prompts_dir / CRISIS_RESOURCES
    return own if own.is_file() else DEFAULT_PROMPTS_DIR / CRISIS_RESOURCES


def build_companion(settings: Settings, clock: Clock = utc_now) -> Companion:
    """Open the database (migrated to the newest schema), read the prompts, set up templates."""
    engine = create_db_engine(settings.database_url)
    use_cipher(open_cipher(settings, engine))
    upgrade_to_head(engine)
    sessions = create_session_factory(engine)
    return Companion(
        settings=settings,
        sessions=sessions,
        schedule=load_schedule(settings.prompts_dir),
        texts=Renderer(),
        prompts=Renderer(settings.prompts_dir),
        crisis=load_resources(crisis_resources_path(settings.prompts_dir)),
        clock=clock,
        # SQLite serves one process; any other database may be shared by several instances.
        locks=ChatLocks(sessions, instance_name(), shared=engine.dialect.name != "sqlite"),
    )


async def dispatch_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one repeating job: send everything that is due."""
    app = context.application
    report = await dispatch_due(companion(context), context.bot, lambda: app.running)
    if report.delivered or report.failed or report.retrying:
        sent = ", ".join(f"{count} {kind}" for kind, count in sorted(report.delivered.items()))
        log.info(
            "dispatch: sent %s; %s deferred, %s retrying, %s failed",
            sent or "nothing",
            report.deferred,
            report.retrying,
            report.failed,
        )


async def sweep_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say this instance is alive; take up updates left waiting by an instance that died."""
    res, app = companion(context), context.application
    with res.sessions.begin() as session:
        seen(session, res.locks.owner, app.bot_data[MODE_KEY], utc_now())
    if not isinstance(context.bot, InboxBot):
        return
    inbox = context.bot.inbox
    waiting = inbox.waiting(res.clock() - WAITING_UPDATE)
    if waiting:
        log.info("taking up %s waiting chat(s)", len(waiting))
        for update in inbox.load(waiting, context.bot):
            await app.update_queue.put(update)


async def maintenance_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Once a day: forget old handled updates, old coordination rows, spent guide invitations
    and join attempts, and where old session notes came from; delete what is older than
    RETENTION_DAYS, each table by its own date (bot/domain/rights.py)."""
    res = companion(context)
    if isinstance(context.bot, InboxBot):
        context.bot.inbox.prune(res.clock() - INBOX_MEMORY)
    with res.sessions.begin() as session:
        forget_stale(session, utc_now())
        forget_spent(session, res.clock())
    days = res.settings.retention_days
    if days is None:
        return
    with res.sessions.begin() as session:
        removed = purge_before(session, res.clock() - timedelta(days=days))
    log.info(
        "retention: removed %s rows older than %s days (%s)",
        sum(removed.values()),
        days,
        ", ".join(f"{table} {count}" for table, count in removed.items() if count),
    )


async def post_init(app: CompanionApp) -> None:
    res: Companion = app.bot_data[BOT_DATA_KEY]
    if isinstance(app.bot, InboxBot) and app.bot_data[MODE_KEY] == "polling":
        # Stored before a crash but never handled: these go first, in order. (With webhooks,
        # other instances may be handling them right now: the sweep takes up what waits.)
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
        app.job_queue.run_repeating(
            sweep_job,
            interval=HEARTBEAT,
            first=0,
            name=SWEEP_JOB,
            job_kwargs={"max_instances": 1, "coalesce": True},
        )


async def post_shutdown(app: CompanionApp) -> None:
    res: Companion = app.bot_data[BOT_DATA_KEY]
    with res.sessions.begin() as session:
        gone(session, res.locks.owner)
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
    companion_: Companion,
    rate_limiter: TelegramRateLimiter | None = None,
    mode: str = "polling",
) -> CompanionApp:
    """The Application that runs the bot; tests build the same one against a fake Bot API,
    with a rate limiter whose retries do not make them wait. `mode`: polling or webhook."""
    settings = companion_.settings
    inbox = Inbox(companion_.sessions, companion_.clock)
    limiter = rate_limiter or rate_limiter_for(settings)
    if companion_.locks.shared:
        overall = Limit.per_second(settings.rate_limit_overall)
        limiter.share(
            SendSlots(
                companion_.sessions,
                overall_lanes=overall.count,
                overall_period=overall.period,
                chat_period=1 / settings.rate_limit_per_chat,
                # How long a request can be in flight: a connect and a read at most (writes
                # are small). A dead instance's lanes come free after it.
                hold=2 * settings.telegram_timeout_seconds,
            )
        )
    processor = ChatOrderedUpdateProcessor(companion_.chat_lock, inbox)
    bot = CompanionBot(
        settings.telegram_bot_token.get_secret_value(),
        inbox=inbox,
        base_url=settings.telegram_api_base_url,
        defaults=Defaults(
            parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)
        ),
        # As ApplicationBuilder would: a pool for sending, and one connection for long polling.
        request=BoundedRequest(
            connect_timeout=settings.telegram_timeout_seconds,
            read_timeout=settings.telegram_timeout_seconds,
            write_timeout=settings.telegram_timeout_seconds,
        ),
        get_updates_request=HTTPXRequest(connect_timeout=settings.telegram_timeout_seconds),
        rate_limiter=limiter,
    )
    builder = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(processor)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
    )
    app = builder.build()
    processor.application = app
    app.bot_data[BOT_DATA_KEY] = companion_
    app.bot_data[MODE_KEY] = mode
    register_handlers(app)
    return app
