"""Webhook mode: Telegram posts each update to us; several instances can share the work.

An update is stored in the durable inbox before Telegram gets its 200, so once Telegram is
told, the update is safe. Then this instance puts it in its chat's line
(bot/telegram/updates.py): the chat's lease decides which instance handles it, in order with
the chat's other updates. If this instance dies first, another one takes it up from the inbox
(app.sweep_job).

A request without the right X-Telegram-Bot-Api-Secret-Token gets 403; GET /healthz answers
200 while the bot runs and its database answers, for the load balancer.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text
from telegram import Update
from tornado.httpserver import HTTPServer
from tornado.web import Application as TornadoApplication
from tornado.web import RequestHandler

from bot.companion import BOT_DATA_KEY, Companion
from bot.telegram.inbox import InboxBot, readable
from bot.telegram.updates import CompanionApp

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
# Telegram's default is 40; each request holds a connection until its update is stored.
MAX_CONNECTIONS = 40
MAX_BODY_BYTES = 1024 * 1024  # an update is a few kB; anything this large is not Telegram


class _Base(RequestHandler):
    def initialize(self, app: CompanionApp) -> None:  # tornado's hook, not __init__
        self.app = app

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.clear_header("Server")

    def log_exception(self, *args: Any) -> None:
        # Tornado's default would log the request, which may carry a patient's words.
        log.error("the webhook failed to answer a request")


class UpdateHandler(_Base):
    def initialize(self, app: CompanionApp, secret: str) -> None:  # type: ignore[override]
        super().initialize(app)
        self.secret = secret.encode()

    async def post(self) -> None:
        given = self.request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self.secret):
            log.warning("a webhook request without the right secret was refused")
            self.set_status(403)
            self.finish(b'{"ok":false}')
            return
        try:
            raw = json.loads(self.request.body)
            if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
                raise ValueError("not an update")
        except ValueError:
            self.set_status(400)
            self.finish(b'{"ok":false}')
            return
        bot = self.app.bot
        update = Update.de_json(readable(raw, bot), bot)
        if not isinstance(bot, InboxBot):
            raise TypeError("webhook mode needs the durable inbox")
        # Stored before Telegram hears back; if this fails, Telegram gets a 500 and retries.
        await asyncio.to_thread(bot.inbox.store, [update])
        self.finish(b'{"ok":true}')
        await self.app.update_queue.put(update)


class HealthHandler(_Base):
    async def get(self) -> None:
        res: Companion = self.app.bot_data[BOT_DATA_KEY]
        try:
            ready = self.app.running and await asyncio.to_thread(_database_answers, res)
        except Exception:
            ready = False
        self.set_status(200 if ready else 503)
        self.finish(b'{"status":"ok"}' if ready else b'{"status":"unavailable"}')


def _database_answers(res: Companion) -> bool:
    with res.sessions() as session:
        return session.execute(text("SELECT 1")).scalar() == 1


def web_app(app: CompanionApp, url: str, secret: str) -> TornadoApplication:
    path = urlsplit(url).path or "/"
    return TornadoApplication(
        [
            (path, UpdateHandler, {"app": app, "secret": secret}),
            ("/healthz", HealthHandler, {"app": app}),
        ]
    )


async def serve(app: CompanionApp, stop: asyncio.Event) -> None:
    """Run the bot in webhook mode until `stop` is set: listen, set the webhook, handle."""
    res: Companion = app.bot_data[BOT_DATA_KEY]
    settings = res.settings
    url, secret = settings.require_webhook()
    server = HTTPServer(web_app(app, url, secret), max_body_size=MAX_BODY_BYTES)
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        server.listen(settings.webhook_port, settings.webhook_listen)
        await app.start()
        # Every instance sets the same address; Telegram keeps the last, which is the same.
        await app.bot.set_webhook(
            url,
            secret_token=secret,
            allowed_updates=ALLOWED_UPDATES,
            max_connections=MAX_CONNECTIONS,
        )
        log.info(
            "webhook mode: listening on %s:%s", settings.webhook_listen, settings.webhook_port
        )
        await stop.wait()
        log.info("stopping")
    finally:
        server.stop()  # no new updates here: Telegram and the proxy go to the other instances
        await server.close_all_connections()
        if app.running:
            await app.stop()
            if app.post_stop is not None:
                await app.post_stop(app)
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


def run_webhook(app: CompanionApp) -> None:
    """`python -m bot webhook`: serve until SIGTERM or SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(app, stop)

    asyncio.run(main())
