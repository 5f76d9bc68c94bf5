"""A fake Telegram Bot API server for tests, served by aiohttp inside the test's event loop.

Point python-telegram-bot at it with ``base_url=fake.base_url``; PTB appends ``{token}/{method}``.

Faults a test can inject, so the bot's handling of a misbehaving Telegram can be tested:

- ``fail``: the next matching calls get an API error (429 with retry_after, 502, 403 for one chat).
- ``enforce_rate_limits``: sends and edits beyond a flood limit get 429 (off by default).
- ``stall``: the answer comes late, so a client with a shorter read timeout gives up.
- ``drop``: the connection is closed without an answer.
- ``hold``: the answer waits until the test sets an event.

Webhooks: after ``setWebhook`` the fake posts each update to the webhook's address (or, if the
test set ``webhook_targets``, to those in turn, as a reverse proxy in front of several instances
would), with the secret header, several at a time like Telegram, and again to the next address
until one answers 200. getUpdates then answers 409, as Telegram does.

``stall`` and ``drop`` take ``delivered``: whether Telegram carried the call out before the answer
was lost, the case where a retry would send a message twice.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import aiohttp
from aiohttp import web

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_CONNECTIONS = 8
JSON_FIELDS = frozenset(
    {
        "allowed_updates",
        "caption_entities",
        "commands",
        "entities",
        "link_preview_options",
        "media",
        "menu_button",
        "message_ids",
        "reaction",
        "reply_markup",
        "reply_parameters",
        "results",
        "scope",
    }
)
NUMBER_FIELDS = frozenset(
    {
        "cache_time",
        "chat_id",
        "date",
        "duration",
        "from_chat_id",
        "height",
        "limit",
        "message_id",
        "message_thread_id",
        "offset",
        "reply_to_message_id",
        "timeout",
        "until_date",
        "update_id",
        "user_id",
        "width",
    }
)
BOOL_FIELDS = frozenset(
    {
        "allow_paid_broadcast",
        "allow_sending_without_reply",
        "disable_content_type_detection",
        "disable_notification",
        "disable_web_page_preview",
        "drop_pending_updates",
        "has_spoiler",
        "protect_content",
        "show_alert",
        "show_caption_above_media",
    }
)
MAX_MESSAGE_LENGTH = 4096
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
BOT_FIRST_NAME = "Companion"
BOT_USERNAME = "companion_test_bot"
# Tags the Bot API accepts with parse_mode=HTML.
HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "blockquote",
        "code",
        "del",
        "em",
        "i",
        "ins",
        "pre",
        "s",
        "span",
        "strike",
        "strong",
        "tg-emoji",
        "tg-spoiler",
        "u",
    }
)
# The only named entities the Bot API decodes; it decodes every numeric one (&#123; &#x1F600;).
HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
# Methods that post or edit a message, which is what Telegram's flood limits count.
RATE_LIMITED_PREFIXES = ("send", "edit", "copy", "forward")
_HTML_SPECIAL_RE = re.compile(r"[&<]")
# Like the Bot API, "&lt" without the ";" is still an entity.
_HTML_ENTITY_RE = re.compile(r"&(?:#([0-9]+)|#x([0-9a-fA-F]+)|([a-zA-Z]+));?")
# Telegram ends a tag name at the first ASCII space or ">".
_HTML_TAG_NAME_RE = re.compile(r"[^\s>]*", re.ASCII)
_HTML_END_TAG_REST_RE = re.compile(r"\s*>", re.ASCII)
# The rest of a start tag: attributes, whose quoted values may contain ">", then the ">".
_HTML_ATTRIBUTES_RE = re.compile(r"""(?:[^>"']|"[^"]*"|'[^']*')*>""")


@dataclass(frozen=True)
class TgUser:
    """A Telegram user talking to the bot in a private chat (chat id == user id)."""

    id: int
    first_name: str
    username: str | None = None
    language_code: str = "en"

    def to_dict(self) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": self.id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": self.language_code,
        }
        if self.username is not None:
            user["username"] = self.username
        return user

    def private_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username is not None:
            chat["username"] = self.username
        return chat


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request (e.g. ``document`` of sendDocument)."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class ApiRequest:
    method: str
    params: dict[str, Any]
    result: Any = None  # what the server answered, once it answered successfully
    received_at: float = field(default_factory=time.monotonic)

    @property
    def message_id(self) -> int:
        """The id of the message this request created or edited."""
        if isinstance(self.result, dict) and "message_id" in self.result:
            return int(self.result["message_id"])
        return int(self.params["message_id"])

    @property
    def chat_id(self) -> int | None:
        chat_id = self.params.get("chat_id")
        return chat_id if isinstance(chat_id, int) else None

    @property
    def text(self) -> str | None:
        text = self.params.get("text")
        return text if isinstance(text, str) else None

    def summary(self) -> str:
        details = [f"chat_id={self.chat_id}"] if self.chat_id is not None else []
        if self.text is not None:
            details.append(f"text={self.text[:40]!r}")
        return f"{self.method}({', '.join(details)})"


class ApiError(Exception):
    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        # PTB reports any non-empty "parameters" without retry_after as "unknown parameters".
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.error_code)


@dataclass
class _Trigger:
    """Which calls a fault strikes (a lowercase method, optionally one chat) and how often more."""

    method: str
    chat_id: int | None
    remaining: int


@dataclass
class _Fault(_Trigger):
    error: ApiError


@dataclass
class _NetworkFault(_Trigger):
    delivered: bool  # carried out before the answer is lost, so the message exists
    stall_seconds: float | None  # None: the connection is dropped instead


_AnyTrigger = TypeVar("_AnyTrigger", bound=_Trigger)


def _take(triggers: list[_AnyTrigger], method: str, chat_id: int | None) -> _AnyTrigger | None:
    """The first trigger matching this call, used up once; removed when it has no uses left."""
    for trigger in triggers:
        if trigger.method == method and trigger.chat_id in (None, chat_id):
            trigger.remaining -= 1
            if trigger.remaining <= 0:
                triggers.remove(trigger)
            return trigger
    return None


@dataclass
class _Window:
    """A sliding window: at most `limit` accepted requests in any span of `seconds`."""

    limit: int
    seconds: float
    accepted: deque[float] = field(default_factory=deque)  # time.monotonic() of each

    def wait(self, now: float) -> float:
        """Seconds until one more request fits; 0 if it fits now."""
        while self.accepted and self.accepted[0] <= now - self.seconds:
            self.accepted.popleft()
        if len(self.accepted) < self.limit:
            return 0.0
        return self.accepted[-self.limit] + self.seconds - now


class _RateLimits:
    """Telegram's flood control: one window over all chats, and one per chat."""

    def __init__(self, overall: tuple[int, float], per_chat: tuple[int, float]) -> None:
        for limit, seconds in (overall, per_chat):
            if limit < 1 or seconds <= 0:
                raise ValueError(
                    f"a rate limit needs limit >= 1 and seconds > 0, not {limit, seconds}"
                )
        self._overall = _Window(*overall)
        self._per_chat = per_chat
        self._chats: dict[int, _Window] = {}

    def retry_after(self, chat_id: int | None, now: float) -> int | None:
        """Whole seconds to wait, as Telegram's retry_after, if this request is over a limit."""
        wait = max(window.wait(now) for window in self._windows(chat_id))
        return max(1, math.ceil(wait)) if wait > 0 else None

    def accept(self, chat_id: int | None, now: float) -> None:
        for window in self._windows(chat_id):
            window.accepted.append(now)

    def _windows(self, chat_id: int | None) -> list[_Window]:
        if chat_id is None:
            return [self._overall]
        if chat_id not in self._chats:
            self._chats[chat_id] = _Window(*self._per_chat)
        return [self._overall, self._chats[chat_id]]


class _Signal:
    """Wakes all waiters whenever state changes; notify() is sync so push_update() can use it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> bool:
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    await self._event.wait()
        except TimeoutError:
            return predicate()
        return True


class Gate:
    """Holds every call of a method until opened (see FakeTelegram.gate)."""

    def __init__(self, changed: _Signal) -> None:
        self._changed = changed
        self._opened = asyncio.Event()
        self.held = 0  # calls waiting at the gate now

    async def pass_through(self) -> None:
        self.held += 1
        self._changed.notify()
        try:
            await self._opened.wait()
        finally:
            self.held -= 1

    def open(self) -> None:
        self._opened.set()

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> bool:
        return await self._changed.wait_until(predicate, within)


class FakeTelegram:
    def __init__(self, token: str = "123456:TEST-TOKEN") -> None:
        self.token = token
        self.requests: list[ApiRequest] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._changed = _Signal()
        self._stopping = False
        self._pending_updates: list[dict[str, Any]] = []
        self.pushed: dict[int, dict[str, Any]] = {}  # every update ever pushed, by update_id
        self._last_update_id = 0
        self._polls_waiting = 0
        self.poll_count = 0  # getUpdates calls so far
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._last_message_id: dict[int, int] = {}
        self._users: dict[int, TgUser] = {}
        self._callback_query_ids: set[str] = set()
        self._ids = itertools.count(1)
        self._commands: dict[tuple[str, str], list[Any]] = {}
        self._faults: list[_Fault] = []
        self._network_faults: list[_NetworkFault] = []
        self._rate_limits: _RateLimits | None = None
        self.rate_limited: list[ApiRequest] = []  # answered 429 by enforce_rate_limits()
        self._holds: dict[str, asyncio.Event] = {}
        self._gates: dict[str, Gate] = {}
        # Called with each request as it arrives (getUpdates aside), before it is carried out.
        self.on_request: list[Callable[[ApiRequest], None]] = []
        self.webhook: dict[str, Any] | None = None  # the last setWebhook's parameters
        self.webhook_targets: list[str] | None = None
        self.webhook_refused: list[int] = []  # statuses of failed deliveries
        self.delivered: dict[int, float] = {}  # update_id: when an instance answered 200
        self._delivery: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        # handler_cancellation: a poll abandoned by its client must not linger as "waiting".
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]
        self._stopping = False

    async def stop(self) -> None:
        self._stopping = True
        self._changed.notify()
        if self._delivery is not None:
            self._delivery.cancel()
            await asyncio.gather(self._delivery, return_exceptions=True)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return f"http://127.0.0.1:{self._port}/bot"

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    # -- updates -----------------------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        update = copy.deepcopy(update)
        update_id = update.setdefault("update_id", self._last_update_id + 1)
        self._last_update_id = max(self._last_update_id, update_id)
        self._pending_updates.append(update)
        self.pushed[int(update_id)] = update
        self._changed.notify()
        return int(update_id)

    def withdraw(self, update_id: int) -> dict[str, Any]:
        """Take a pushed update out before it is delivered (its receiver died with it)."""
        [update] = [u for u in self._pending_updates if u["update_id"] == update_id]
        self._pending_updates.remove(update)
        return update

    def redeliver(self, update_id: int) -> int:
        """Push an earlier update again under a new update_id, as after a lost confirmation."""
        again = copy.deepcopy(self.pushed[update_id])
        del again["update_id"]
        return self.push_update(again)

    def text_update(self, user: TgUser, text: str, *, reply_to: int | None = None) -> int:
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            fields["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_length(command)}
            ]
        return self.message_update(user, reply_to=reply_to, **fields)

    def message_update(self, user: TgUser, *, reply_to: int | None = None, **fields: Any) -> int:
        self._users[user.id] = user
        message = {
            "message_id": self._next_message_id(user.id),
            "date": int(time.time()),
            "chat": user.private_chat(),
            "from": user.to_dict(),
            **fields,
        }
        if reply_to is not None:
            message["reply_to_message"] = _as_reply(self.bot_message(user.id, reply_to))
        self._messages[user.id, message["message_id"]] = message
        return self.push_update({"message": message})

    def callback_update(
        self, user: TgUser, message_id: int, data: str, *, chat_id: int | None = None
    ) -> int:
        self._users[user.id] = user
        chat_id = user.id if chat_id is None else chat_id
        query_id = str(next(self._ids))
        self._callback_query_ids.add(query_id)
        query = {
            "id": query_id,
            "from": user.to_dict(),
            "message": self.bot_message(chat_id, message_id),
            "chat_instance": f"instance-{chat_id}",
            "data": data,
        }
        return self.push_update({"callback_query": query})

    # -- what the bot did --------------------------------------------------------------------

    def sent(
        self, chat_id: int | None = None, method: str | None = "sendMessage"
    ) -> list[ApiRequest]:
        return [
            request
            for request in self.requests
            if (method is None or request.method == method)
            and (chat_id is None or request.chat_id == chat_id)
        ]

    def bot_message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        message = self._messages.get((chat_id, message_id))
        if message is None or message["from"]["id"] != self.bot_id:
            raise KeyError(f"the bot sent no message {message_id} to chat {chat_id}")
        return copy.deepcopy(message)

    async def wait_for(
        self,
        predicate: Callable[[ApiRequest], bool],
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a plain deadline reads better in tests
    ) -> list[ApiRequest]:
        def matches() -> list[ApiRequest]:
            return [request for request in self.requests if predicate(request)]

        if await self._changed.wait_until(lambda: len(matches()) >= count, timeout):
            return matches()
        raise TimeoutError(
            f"waited {timeout}s for {count} matching request(s), found {len(matches())}; "
            f"recent requests: {self._recent_requests()}"
        )

    async def wait_until_polled(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        if not await self._changed.wait_until(lambda: self._polls_waiting > 0, timeout):
            raise TimeoutError(
                f"no getUpdates long poll within {timeout}s; "
                f"recent requests: {self._recent_requests()}"
            )

    def hold(self, method: str) -> asyncio.Event:
        """The next call of `method` is carried out but not answered until the event is set."""
        event = self._holds[method.lower()] = asyncio.Event()
        return event

    def gate(self, method: str) -> Gate:
        """Every call of `method` from now on is carried out but not answered until the gate
        opens; the gate counts the calls it holds."""
        gate = self._gates[method.lower()] = Gate(self._changed)
        return gate

    async def wait_polled_after(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Until a getUpdates call beyond the first `count` arrives (a new process is polling)."""
        if not await self._changed.wait_until(lambda: self.poll_count > count, timeout):
            raise TimeoutError(f"no new getUpdates call within {timeout}s")

    # -- faults ------------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        error = ApiError(error_code, description, retry_after)
        self._faults.append(
            _Fault(method=method.lower(), chat_id=chat_id, remaining=times, error=error)
        )

    def enforce_rate_limits(
        self, overall: tuple[int, float] = (30, 1.0), per_chat: tuple[int, float] = (1, 1.0)
    ) -> None:
        """From now on, answer 429 to sends and edits beyond (max messages, window seconds).

        Telegram's documented flood limits are about 30 messages a second overall and one a
        second per chat; beyond them it answers 429 with retry_after instead of sending. Each
        limit is a sliding window over the requests it accepted (a rejected request does not
        count). A rejected request is not carried out, and is recorded both in `requests`
        (result None) and in `rate_limited`. Calling this again replaces the limits and forgets
        what was counted.
        """
        self._rate_limits = _RateLimits(overall, per_chat)

    def stall(
        self,
        method: str,
        *,
        seconds: float,
        chat_id: int | None = None,
        times: int = 1,
        delivered: bool = False,
    ) -> None:
        """Answer the next `times` matching calls only after `seconds`, as an overloaded Telegram.

        A client whose read timeout is shorter gives up first (PTB raises TimedOut). With
        delivered=False the call never reached Telegram: nothing is carried out, and a client
        still waiting gets 504 Gateway Timeout, as from Telegram's front end when the server
        behind it does not answer. With delivered=True the call is carried out at once (the
        message is stored, with its result in `requests`) and the true answer comes late: the
        case where a client that retries after its timeout sends the message twice. Stopping
        the server ends a stall early.
        """
        self._network_faults.append(
            _NetworkFault(
                method=method.lower(),
                chat_id=chat_id,
                remaining=times,
                delivered=delivered,
                stall_seconds=seconds,
            )
        )

    def drop(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        times: int = 1,
        delivered: bool = False,
    ) -> None:
        """Close the connection of the next `times` matching calls without answering.

        PTB raises NetworkError (not TimedOut, and at once). `delivered` means what it means for
        `stall`: whether the call was carried out before the connection went away.
        """
        self._network_faults.append(
            _NetworkFault(
                method=method.lower(),
                chat_id=chat_id,
                remaining=times,
                delivered=delivered,
                stall_seconds=None,
            )
        )

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, http_request: web.Request) -> web.Response:
        if http_request.match_info["token"] != self.token:
            return ApiError(401, "Unauthorized").response()
        request = ApiRequest(http_request.match_info["method"], await _read_params(http_request))
        method = request.method.lower()
        if method != "getupdates":
            self.requests.append(request)
            self._changed.notify()
            for observer in self.on_request:
                observer(request)
        lost = _take(self._network_faults, method, request.chat_id)
        if lost is None or lost.delivered:
            response = await self._carry_out(method, request)
        else:
            response = ApiError(504, "Gateway Timeout").response()
        if lost is None:
            return response
        if lost.stall_seconds is None:
            await self._drop_connection(http_request)
        else:
            await self._changed.wait_until(lambda: self._stopping, lost.stall_seconds)
        return response

    async def _carry_out(self, method: str, request: ApiRequest) -> web.Response:
        limits = self._rate_limits if method.startswith(RATE_LIMITED_PREFIXES) else None
        if limits is not None:
            retry_after = limits.retry_after(request.chat_id, time.monotonic())
            if retry_after is not None:
                self.rate_limited.append(request)
                self._changed.notify()
                description = f"Too Many Requests: retry after {retry_after}"
                return ApiError(429, description, retry_after).response()
        try:
            fault = _take(self._faults, method, request.chat_id)
            if fault is not None:
                raise fault.error
            if method == "getupdates":
                result: Any = await self._get_updates(request.params)
            else:
                result = self._dispatch(method, request.params)
        except ApiError as error:
            return error.response()
        if limits is not None:
            limits.accept(request.chat_id, time.monotonic())
        request.result = result
        self._changed.notify()
        hold = self._holds.pop(method, None)
        if hold is not None:
            await hold.wait()
        gate = self._gates.get(method)
        if gate is not None:
            await gate.pass_through()
        return web.json_response({"ok": True, "result": result})

    async def _drop_connection(self, http_request: web.Request) -> None:
        """Close the TCP connection under a request without answering it.

        Raising here would make aiohttp answer 500 and log an error. Instead, closing the
        transport makes aiohttp cancel this handler (handler_cancellation=True), which it logs at
        debug level only; until then the handler waits, and a response it returns on stop is
        never written.
        """
        transport = http_request.transport
        if transport is not None:
            transport.abort()
        await self._changed.wait_until(lambda: self._stopping, 60.0)

    def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        match method:
            case "getme":
                return self._bot_user() | {
                    "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False,
                    "can_connect_to_business": False,
                    "has_main_web_app": False,
                }
            case "setwebhook":
                self.webhook = dict(params)
                if self._delivery is None:
                    self._delivery = asyncio.get_running_loop().create_task(self._deliver())
                self._changed.notify()
                return True
            case "deletewebhook":
                self.webhook = None
                if params.get("drop_pending_updates") is True:
                    self._pending_updates.clear()
                return True
            case "getwebhookinfo":
                return {
                    "url": "",
                    "has_custom_certificate": False,
                    "pending_update_count": len(self._pending_updates),
                }
            case "setmycommands":
                self._commands[_commands_key(params)] = list(params.get("commands", []))
                return True
            case "getmycommands":
                return self._commands.get(_commands_key(params), [])
            case "deletemycommands":
                self._commands.pop(_commands_key(params), None)
                return True
            case "sendmessage":
                text = params.get("text")
                _check_text(text, params.get("parse_mode"))
                return self._store_bot_message(params, text=text)
            case "editmessagetext":
                return self._edit_message(params, new_text=True)
            case "editmessagereplymarkup":
                return self._edit_message(params, new_text=False)
            case "senddocument":
                return self._store_bot_message(
                    params, document=self._file_stub(params.get("document")), **_caption(params)
                )
            case "sendvoice" | "sendaudio" | "sendvideo" | "sendvideonote":
                field = {
                    "sendvoice": "voice",
                    "sendaudio": "audio",
                    "sendvideo": "video",
                    "sendvideonote": "video_note",
                }[method]
                media = self._file_stub(params.get(field)) | {"duration": 1}
                if field in ("video", "video_note"):
                    media |= {"width": 240, "height": 240, "length": 240}
                return self._store_bot_message(params, **{field: media}, **_caption(params))
            case "sendphoto":
                photo = self._file_stub(params.get("photo"))
                sizes = [photo | {"width": side, "height": side} for side in (90, 800)]
                return self._store_bot_message(params, photo=sizes, **_caption(params))
            case "answercallbackquery":
                if params.get("callback_query_id") not in self._callback_query_ids:
                    raise ApiError(
                        400,
                        "Bad Request: query is too old and response timeout expired "
                        "or query ID is invalid",
                    )
                return True
            case _:
                return True

    async def _deliver(self) -> None:
        """Post pending updates to the webhook, WEBHOOK_CONNECTIONS at a time, in order of
        update_id as each connection frees up; one an instance fails goes to the next one."""
        connections = asyncio.Semaphore(WEBHOOK_CONNECTIONS)
        turn = itertools.count()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:

            async def post(update: dict[str, Any]) -> None:
                try:
                    while not self._stopping and self.webhook is not None:
                        targets = self.webhook_targets or [self.webhook["url"]]
                        target = targets[next(turn) % len(targets)]
                        headers = {}
                        if "secret_token" in self.webhook:
                            headers[SECRET_HEADER] = self.webhook["secret_token"]
                        try:
                            async with client.post(target, json=update, headers=headers) as r:
                                if r.status == 200:
                                    self.delivered[update["update_id"]] = time.monotonic()
                                    self._changed.notify()
                                    return
                                self.webhook_refused.append(r.status)
                        except (aiohttp.ClientError, TimeoutError):
                            self.webhook_refused.append(0)
                        self._changed.notify()
                        await asyncio.sleep(0.05)
                finally:
                    connections.release()

            tasks: set[asyncio.Task[None]] = set()
            while not self._stopping:
                await self._changed.wait_until(
                    lambda: bool(self._pending_updates and self.webhook) or self._stopping, 60
                )
                while self._pending_updates and self.webhook is not None:
                    await connections.acquire()
                    task = asyncio.create_task(post(self._pending_updates.pop(0)))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:  # noqa: ASYNC109
        """Until `predicate` holds of the fake's state (checked whenever it changes)."""
        return await self._changed.wait_until(predicate, timeout)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        self.poll_count += 1
        self._changed.notify()
        offset = params.get("offset")
        if isinstance(offset, int) and offset < 0:
            self._pending_updates = self._pending_updates[offset:]
        elif isinstance(offset, int):
            self._pending_updates = [
                update for update in self._pending_updates if update["update_id"] >= offset
            ]
        limit = params.get("limit", 100)
        limit = min(max(limit, 1), 100) if isinstance(limit, int) else 100
        timeout = params.get("timeout", 0)
        if isinstance(timeout, int | float) and timeout > 0 and not self._pending_updates:
            self._polls_waiting += 1
            self._changed.notify()
            try:
                await self._changed.wait_until(
                    lambda: bool(self._pending_updates) or self._stopping, timeout
                )
            finally:
                self._polls_waiting -= 1
        return copy.deepcopy(self._pending_updates[:limit])

    # -- messages ----------------------------------------------------------------------------

    def _store_bot_message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": self._private_chat(chat_id),
            "from": self._bot_user(),
            **content,
        }
        if _is_inline_keyboard(params.get("reply_markup")):
            message["reply_markup"] = params["reply_markup"]
        reply_to = _reply_to_message_id(params)
        if reply_to is not None and (chat_id, reply_to) in self._messages:
            message["reply_to_message"] = _as_reply(self._messages[chat_id, reply_to])
        self._messages[chat_id, message["message_id"]] = message
        return copy.deepcopy(message)

    def _edit_message(self, params: dict[str, Any], *, new_text: bool) -> dict[str, Any]:
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        if not isinstance(chat_id, int) or not isinstance(message_id, int):
            raise ApiError(400, "Bad Request: message to edit not found")
        key = (chat_id, message_id)
        message = self._messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message["from"]["id"] != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        edited = dict(message)
        if new_text:
            if "text" not in message:
                raise ApiError(400, "Bad Request: there is no text in the message to edit")
            _check_text(params.get("text"), params.get("parse_mode"))
            edited["text"] = params["text"]
        # Like the real API, an edit without reply_markup removes the inline keyboard.
        edited.pop("reply_markup", None)
        if _is_inline_keyboard(params.get("reply_markup")):
            edited["reply_markup"] = params["reply_markup"]
        if edited == message:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        edited["edit_date"] = int(time.time())
        self._messages[key] = edited
        return copy.deepcopy(edited)

    def _file_stub(self, file: object) -> dict[str, Any]:
        file_number = next(self._ids)
        stub: dict[str, Any] = {
            "file_id": f"file-{file_number}",
            "file_unique_id": f"unique-{file_number}",
        }
        if isinstance(file, UploadedFile):
            stub |= {"mime_type": file.content_type, "file_size": len(file.data)}
            if file.filename:
                stub["file_name"] = file.filename
        elif isinstance(file, str):
            stub["file_id"] = file
        return stub

    def _next_message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
        return self._last_message_id[chat_id]

    def _private_chat(self, chat_id: int) -> dict[str, Any]:
        user = self._users.get(chat_id)
        if user is not None:
            return user.private_chat()
        return {"id": chat_id, "type": "private", "first_name": "User"}

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        }

    def _recent_requests(self) -> str:
        return ", ".join(request.summary() for request in self.requests[-10:]) or "none"


async def _read_params(request: web.Request) -> dict[str, Any]:
    raw: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            raw.update(body)
    elif request.body_exists:
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                with value.file:
                    raw[name] = UploadedFile(value.filename, value.content_type, value.file.read())
            else:
                raw[name] = value
    return {name: _decode(name, value) for name, value in raw.items()}


def _decode(name: str, value: Any) -> Any:
    """Undo PTB's encoding: every non-string parameter arrives as a JSON string."""
    if not isinstance(value, str):
        return value
    try:
        if name in JSON_FIELDS:
            return json.loads(value)
        if name in NUMBER_FIELDS:
            return _number(value)
        if name in BOOL_FIELDS and value in ("true", "false"):
            return value == "true"
    except ValueError:
        pass  # e.g. chat_id="@channel"
    return value


def _number(value: str) -> int | float:
    try:
        return int(value)
    except ValueError:
        return float(value)


def _check_text(text: object, parse_mode: object) -> None:
    if not isinstance(text, str):
        raise ApiError(400, "Bad Request: message text is empty")
    if isinstance(parse_mode, str) and parse_mode.upper() == "HTML":
        text = _check_html(text)
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if _utf16_length(text) > MAX_MESSAGE_LENGTH:
        raise ApiError(400, "Bad Request: message is too long")


def _check_html(text: str) -> str:
    """Parse Telegram HTML as the Bot API does and return the visible text, entities decoded.

    Rejects what the real API rejects: a "<" that opens no supported tag ("a < b", "<3"), and
    unknown, unclosed or unbalanced tags; the messages follow Telegram's. One deliberate
    difference: the real API shows a "&" that starts no entity ("Tom & Jerry") as it is, but its
    documentation requires escaping it, and a bare "&" here means the bot skipped html.escape
    where a "<" would have broken the message, so the fake rejects it. A lone ">" is text.
    """
    visible: list[str] = []
    open_tags: list[str] = []
    position = 0
    while (special := _HTML_SPECIAL_RE.search(text, position)) is not None:
        visible.append(text[position : special.start()])
        if special.group() == "&":
            decoded, position = _html_entity(text, special.start())
            visible.append(decoded)
        else:
            position = _html_tag(text, special.start(), open_tags)
    visible.append(text[position:])
    if open_tags:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(visible)


def _html_entity(text: str, start: int) -> tuple[str, int]:
    """The character an entity at `start` stands for, and where the text after it starts."""
    match = _HTML_ENTITY_RE.match(text, start)
    if match is None:
        raise _entities_error(f'Unescaped "&" at byte offset {_byte_offset(text, start)}')
    decimal, hexadecimal, name = match.groups()
    decoded: str | None
    if name is not None:
        decoded = HTML_ENTITIES.get(name)
    else:
        digits, base = (decimal, 10) if decimal is not None else (hexadecimal, 16)
        code = int(digits, base) if len(digits) <= 8 else 0
        valid = 0 < code < 0x10FFFF and not 0xD800 <= code <= 0xDFFF
        decoded = chr(code) if valid else None
    if decoded is None:
        raise _entities_error(
            f'Unsupported entity "{match.group()}" at byte offset {_byte_offset(text, start)}'
        )
    return decoded, match.end()


def _html_tag(text: str, start: int, open_tags: list[str]) -> int:
    """Check the tag at `start` against `open_tags`, update them; where the text after it starts.

    Like the Bot API, the tag name runs from "<" to the first space or ">", so "a < b" has an
    empty tag name and "<3" never ends.
    """
    closing = text.startswith("</", start)
    name_start = start + 2 if closing else start + 1
    name_end = _html_tag_name_end(text, name_start)
    name = text[name_start:name_end].lower()
    offset = _byte_offset(text, start)
    if closing:
        if not open_tags:
            raise _entities_error(f"Unexpected end tag at byte offset {offset}")
        rest = _HTML_END_TAG_REST_RE.match(text, name_end)
        if rest is None:
            raise _entities_error(f"Unclosed end tag at byte offset {offset}")
        expected = open_tags.pop()
        if name and name != expected:
            raise _entities_error(
                f'Unmatched end tag at byte offset {offset}, expected "</{expected}>", '
                f'found "</{name}>"'
            )
        return rest.end()
    if name_end >= len(text):
        raise _entities_error(f"Unclosed start tag at byte offset {offset}")
    if name not in HTML_TAGS:
        raise _entities_error(f'Unsupported start tag "{name}" at byte offset {offset}')
    attributes = _HTML_ATTRIBUTES_RE.match(text, name_end)
    if attributes is None:
        raise _entities_error(f'Unclosed start tag "{name}" at byte offset {offset}')
    open_tags.append(name)
    return attributes.end()


def _html_tag_name_end(text: str, start: int) -> int:
    match = _HTML_TAG_NAME_RE.match(text, start)
    return match.end() if match is not None else start


def _entities_error(problem: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {problem}")


def _byte_offset(text: str, index: int) -> int:
    """Telegram reports positions in bytes of UTF-8."""
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _caption(params: dict[str, Any]) -> dict[str, Any]:
    caption = params.get("caption")
    return {"caption": caption} if isinstance(caption, str) else {}


def _is_inline_keyboard(markup: object) -> bool:
    # Only inline keyboards appear in Message.reply_markup; PTB cannot parse other markups there.
    return isinstance(markup, dict) and "inline_keyboard" in markup


def _reply_to_message_id(params: dict[str, Any]) -> int | None:
    reply_parameters = params.get("reply_parameters")
    if isinstance(reply_parameters, dict):
        message_id = reply_parameters.get("message_id")
        return message_id if isinstance(message_id, int) else None
    reply_to = params.get("reply_to_message_id")
    return reply_to if isinstance(reply_to, int) else None


def _as_reply(message: dict[str, Any]) -> dict[str, Any]:
    # Telegram does not nest replies: a reply_to_message carries no reply_to_message itself.
    reply = copy.deepcopy(message)
    reply.pop("reply_to_message", None)
    return reply


def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(params.get("language_code", ""))


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
