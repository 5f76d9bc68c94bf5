"""A lean fake of the Telegram Bot API for the benchmarks, run in its own process.

The tests' fake (tests/fake_telegram.py) checks every message as Telegram would and keeps every
request; that costs CPU the benchmarks would then share with the bot on a 2-core machine. This
one only answers: getUpdates long polling, sendMessage and edits with a plausible Message, the
rest with ``true``. It runs as a separate process (``python -m bench.fake_api``, started by
``bench.common.FakeApi``) so the bot's CPU time never includes the server's.

A control API beside the Bot API lets the benchmark push updates and wait for replies:

- ``POST /control/push`` ``{"chats": [first, count], "text": ..., "per_chat": n}``: queue
  ``count * n`` text messages, from private chats ``first .. first+count-1``.
- ``GET /control/wait?sends=N&timeout=T``: answer once N messages have been sent (or T passed).
- ``GET /control/stats``: counts and times so far (``time.monotonic()`` of this machine, the
  same clock as the benchmark process's).
- ``POST /control/reset``: forget counts and times, keep update ids.

On start it prints ``PORT <n>`` on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import time
from collections import Counter
from typing import Any

from aiohttp import web

BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
# Methods whose answer is a Message (PTB parses it as one).
MESSAGE_METHODS = frozenset(
    {"sendmessage", "editmessagetext", "editmessagereplymarkup", "sendphoto", "senddocument"}
)


class FakeApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.pending: list[dict[str, Any]] = []
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(1)
        self.changed = asyncio.Condition()
        self.reset()

    def reset(self) -> None:
        self.methods: Counter[str] = Counter()
        self.sends = 0
        self.send_times: list[float] = []  # monotonic time of each sendMessage, for rate checks
        self.texts: Counter[str] = Counter()  # the first words of each text sent
        self.last_send: dict[str, Any] | None = None
        self.pushed_at: float | None = None
        self.polls = 0
        self.first_poll_at: float | None = None

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # -- Bot API -------------------------------------------------------------------------------

    async def bot_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401}, status=401)
        method = request.match_info["method"].lower()
        params = await _params(request)
        if method == "getupdates":
            return _ok(await self.get_updates(params))
        self.methods[method] += 1
        if method == "getme":
            return _ok(BOT_USER | {"can_join_groups": True, "can_read_all_group_messages": False})
        if method not in MESSAGE_METHODS:
            return _ok(True)
        chat_id = int(params.get("chat_id", 0))
        message: dict[str, Any] = {
            "message_id": next(self.message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "P"},
            "from": BOT_USER,
            "text": str(params.get("text", "")),
        }
        if method == "sendmessage":
            self.sends += 1
            self.send_times.append(time.monotonic())
            self.texts[" ".join(message["text"].split()[:3])] += 1
            self.last_send = params
            await self.notify()
        return _ok(message)

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.polls += 1
        if self.first_poll_at is None:
            self.first_poll_at = time.monotonic()
            await self.notify()
        offset = int(params.get("offset") or 0)
        if offset:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        limit = min(int(params.get("limit") or 100), 100)
        timeout = float(params.get("timeout") or 0)
        if not self.pending and timeout > 0:
            async with self.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.changed.wait_for(lambda: bool(self.pending)), timeout
                    )
        return self.pending[:limit]

    # -- control -------------------------------------------------------------------------------

    async def push(self, request: web.Request) -> web.Response:
        spec = await request.json()
        first, count = spec["chats"]
        text, per_chat = str(spec["text"]), int(spec.get("per_chat", 1))
        now = int(time.time())
        if self.pushed_at is None:
            self.pushed_at = time.monotonic()
        for _ in range(per_chat):
            for chat_id in range(first, first + count):
                user = {"id": chat_id, "is_bot": False, "first_name": "P"}
                message = {
                    "message_id": next(self.message_ids),
                    "date": now,
                    "chat": {"id": chat_id, "type": "private", "first_name": "P"},
                    "from": user,
                    "text": text,
                }
                self.pending.append({"update_id": next(self.update_ids), "message": message})
        await self.notify()
        return _ok(True)

    async def wait(self, request: web.Request) -> web.Response:
        sends = int(request.query["sends"])
        timeout = float(request.query.get("timeout", "600"))
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait_for(lambda: self.sends >= sends), timeout)
        return self.stats_response()

    async def stats(self, request: web.Request) -> web.Response:
        return self.stats_response()

    async def do_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _ok(True)

    def stats_response(self) -> web.Response:
        return _ok(
            {
                "sends": self.sends,
                "methods": dict(self.methods),
                "texts": dict(self.texts.most_common(5)),
                "pushed_at": self.pushed_at,
                "first_send_at": self.send_times[0] if self.send_times else None,
                "last_send_at": self.send_times[-1] if self.send_times else None,
                "max_sends_in_a_second": _max_in_window(self.send_times, 1.0),
                "polls": self.polls,
                "first_poll_at": self.first_poll_at,
                "last_send": self.last_send,
            }
        )


def _max_in_window(times: list[float], seconds: float) -> int:
    """The most sends that fell within any span of `seconds` (times are in order)."""
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.body_exists:
        params.update(await request.post())
    return params


async def serve(token: str) -> None:
    fake = FakeApi(token)
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", fake.bot_api)
    app.router.add_post("/control/push", fake.push)
    app.router.add_get("/control/wait", fake.wait)
    app.router.add_get("/control/stats", fake.stats)
    app.router.add_post("/control/reset", fake.do_reset)
    # handler_cancellation: a long poll whose client went away must not linger.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()  # until the benchmark terminates this process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", required=True)
    asyncio.run(serve(parser.parse_args().token))


if __name__ == "__main__":
    main()
