from __future__ import annotations

import asyncio
import datetime as dtm
import html
import itertools
import logging
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from tests.fake_telegram import (
    ApiError,
    ApiRequest,
    FakeTelegram,
    TgUser,
    UploadedFile,
    _check_text,
)

ALICE = TgUser(id=1001, first_name="Alice", username="alice")
BOB = TgUser(id=1002, first_name="Bob")
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url) as client:
        yield client


@pytest.fixture
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without PTB_TIMEDELTA, building RetryAfter emits a PTBDeprecationWarning (an error here).
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


async def test_it_answers_get_me(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()

    assert me.id == fake.bot_id
    assert me.is_bot
    assert me.username == "companion_test_bot"
    assert [request.method for request in fake.requests] == ["getMe", "getMe"]


async def test_it_records_send_message_with_decoded_params(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_message(
        ALICE.id, "123", reply_markup=KEYBOARD, parse_mode=ParseMode.HTML
    )

    [request] = fake.sent(ALICE.id)
    assert request.text == "123"
    assert request.chat_id == ALICE.id
    assert request.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]
    }
    assert message.text == "123"
    assert message.reply_markup == KEYBOARD
    assert fake.bot_message(ALICE.id, message.message_id)["text"] == "123"


async def test_it_uploads_documents_as_multipart(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_document(
        ALICE.id, document=b"my journal", filename="journal.txt", caption="42"
    )

    [request] = fake.sent(method="sendDocument")
    assert request.params["caption"] == "42"
    assert request.params["document"] == UploadedFile("journal.txt", "text/plain", b"my journal")
    assert message.document is not None
    assert message.document.file_name == "journal.txt"


@pytest.mark.usefixtures("ptb_timedelta")
async def test_it_raises_retry_after_for_an_injected_429(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail("sendMessage", error_code=429, description="Too Many Requests", retry_after=3)

    with pytest.raises(RetryAfter):
        await bot.send_message(ALICE.id, "hello")
    await bot.send_message(ALICE.id, "hello")

    assert len(fake.sent(ALICE.id)) == 2


async def test_it_raises_forbidden_only_for_the_failing_chat(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail(
        "sendMessage",
        error_code=403,
        description="Forbidden: bot was blocked by the user",
        chat_id=7,
    )

    await bot.send_message(8, "hello")
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(7, "hello")

    assert [request.chat_id for request in fake.sent()] == [8, 7]


async def test_it_rejects_invalid_edits_and_markup(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_message(ALICE.id, "Pick", reply_markup=KEYBOARD)

    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("Nope", chat_id=ALICE.id, message_id=999)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "Pick", chat_id=ALICE.id, message_id=message.message_id, reply_markup=KEYBOARD
        )
    with pytest.raises(BadRequest, match='unsupported start tag "br"'):
        await bot.send_message(ALICE.id, "a<br>b", parse_mode=ParseMode.HTML)


async def test_it_long_polls_until_an_update_is_pushed(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await fake.wait_until_polled()
    update_id = fake.text_update(ALICE, "/start now")

    [update] = await asyncio.wait_for(poll, timeout=2)

    assert update.update_id == update_id
    assert update.message is not None
    assert update.message.text == "/start now"
    assert list(update.message.parse_entities([MessageEntity.BOT_COMMAND]).values()) == ["/start"]
    assert update.effective_user is not None
    assert update.effective_user.id == ALICE.id
    assert await bot.get_updates(offset=update_id + 1) == ()


async def test_it_releases_waiting_pollers_on_stop(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await fake.wait_until_polled()

    async with asyncio.timeout(2):
        await fake.stop()
        assert await poll == ()


async def test_it_embeds_the_stored_message_in_callback_queries(
    fake: FakeTelegram, bot: Bot
) -> None:
    sent = await bot.send_message(ALICE.id, "Pick", reply_markup=KEYBOARD)
    edited_keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Done", callback_data="done")]])
    await bot.edit_message_reply_markup(ALICE.id, sent.message_id, reply_markup=edited_keyboard)
    fake.callback_update(ALICE, sent.message_id, "done")

    [update] = await bot.get_updates()
    query = update.callback_query
    assert query is not None
    assert query.data == "done"
    assert query.from_user.id == ALICE.id
    assert isinstance(query.message, Message)
    assert query.message.message_id == sent.message_id
    assert query.message.reply_markup == edited_keyboard
    await query.answer("Saved")
    assert fake.sent(method="answerCallbackQuery")[0].params["text"] == "Saved"


async def test_it_serves_an_in_process_application(fake: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome")

    app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=5)
        fake.text_update(ALICE, "/start")
        [reply] = await fake.wait_for(lambda request: request.text == "Welcome")
        await app.updater.stop()
        await app.stop()

    assert reply.chat_id == ALICE.id


async def test_it_serves_a_bot_in_another_process(fake: FakeTelegram) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        from telegram import Bot

        async def main():
            async with Bot({fake.token!r}, base_url={fake.base_url!r}) as bot:
                await bot.send_message({ALICE.id}, "from afar")

        asyncio.run(main())
        """
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script)

    [request] = await fake.wait_for(lambda request: request.text == "from afar", timeout=20)
    assert await process.wait() == 0
    assert request.chat_id == ALICE.id


async def test_it_times_out_with_the_recent_requests(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(ALICE.id, "something else")

    def never(request: ApiRequest) -> bool:
        return request.text == "never sent"

    with pytest.raises(TimeoutError, match=r"sendMessage\(chat_id=1001"):
        await fake.wait_for(never, timeout=0.1)


async def test_it_raises_network_error_for_an_injected_502(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail("sendMessage", error_code=502, description="Bad Gateway")

    with pytest.raises(NetworkError, match="Bad Gateway") as caught:
        await bot.send_message(ALICE.id, "hello")
    await bot.send_message(ALICE.id, "hello")

    assert type(caught.value) is NetworkError
    assert [request.result is None for request in fake.sent(ALICE.id)] == [True, False]


# -- HTML ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a < b", 'unsupported start tag "" at byte offset 2'),
        ("I <3 you", 'unsupported start tag "3" at byte offset 2'),
        ("<3", "unclosed start tag at byte offset 0"),
        ("<unknown>x</unknown>", 'unsupported start tag "unknown"'),
        ("<b>bold</i>", 'unmatched end tag at byte offset 7, expected "</b>", found "</i>"'),
        ("plain</b>", "unexpected end tag at byte offset 5"),
        ("<b>bold", 'can\'t find end tag corresponding to start tag "b"'),
        ("Tom & Jerry", 'unescaped "&" at byte offset 4'),
        ("AT&T", 'unsupported entity "&t"'),
        ("a&nbsp;b", 'unsupported entity "&nbsp;"'),
        ("it&apos;s", 'unsupported entity "&apos;"'),
    ],
)
async def test_it_rejects_html_telegram_cannot_parse(
    bot: Bot, fake: FakeTelegram, text: str, problem: str
) -> None:
    with pytest.raises(BadRequest, match=r"^Can't parse entities: ") as caught:
        await bot.send_message(ALICE.id, text, parse_mode=ParseMode.HTML)

    # PTB capitalizes the description and lowercases the rest.
    assert problem in caught.value.message
    assert fake.sent(ALICE.id)[0].result is None


@pytest.mark.parametrize(
    "text",
    [
        html.escape("a < b & c > d, \"quoted\" and 'single' <3 &amp; &lt;"),
        "x > y",
        "&lt;b&gt; is bold: <b>bold</b>",
        "&#123; &#x1F600; &#39; &quot;",
        '<a href="https://example.com/?a=1&amp;b=2">a > b</a>',
        '<pre><code class="language-python">1 &lt; 2</code></pre>',
        "<blockquote expandable>quote</blockquote> <tg-spoiler>hidden</tg-spoiler>",
    ],
)
async def test_it_accepts_escaped_html(fake: FakeTelegram, bot: Bot, text: str) -> None:
    await bot.send_message(ALICE.id, text, parse_mode=ParseMode.HTML)

    assert fake.sent(ALICE.id)[0].result is not None


def test_it_accepts_any_text_escaped_with_html_escape() -> None:
    # Every string of up to four of these characters: markup, entity pieces and a wide emoji.
    # (Hypothesis would do, but importing it writes a .hypothesis/ folder into the repository.)
    alphabet = "<>&;#x1/b'\"a 😀"
    for size in range(1, 5):
        for characters in itertools.product(alphabet, repeat=size):
            text = "".join(characters)
            if text.strip():
                _check_text(html.escape(text), "HTML")
                _check_text(html.escape(text, quote=False), "HTML")


async def test_it_counts_the_visible_length_after_decoding_entities(bot: Bot) -> None:
    await bot.send_message(ALICE.id, "<b>" + "&lt;" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    # An emoji is two UTF-16 code units, as Telegram counts.
    await bot.send_message(ALICE.id, "&#x1F600;" * 2048, parse_mode=ParseMode.HTML)

    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ALICE.id, "&#x1F600;" * 2048 + "!", parse_mode=ParseMode.HTML)
    with pytest.raises(ApiError, match="message is too long"):
        _check_text("&amp;" * 4097, "HTML")


# -- rate limits -----------------------------------------------------------------------------


@pytest.mark.usefixtures("ptb_timedelta")
async def test_it_rate_limits_each_chat_once_enforced(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(ALICE.id, "one")
    await bot.send_message(ALICE.id, "two")
    fake.enforce_rate_limits()

    await bot.send_message(ALICE.id, "three")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ALICE.id, "four")
    await bot.send_message(BOB.id, "to Bob")

    assert caught.value.retry_after == dtm.timedelta(seconds=1)
    [limited] = fake.rate_limited
    assert limited.text == "four"
    assert limited.result is None
    assert [request.text for request in fake.sent(ALICE.id)] == ["one", "two", "three", "four"]
    with pytest.raises(KeyError):
        fake.bot_message(ALICE.id, 4)


@pytest.mark.usefixtures("ptb_timedelta")
async def test_it_rate_limits_sends_and_edits_across_chats(fake: FakeTelegram, bot: Bot) -> None:
    fake.enforce_rate_limits(overall=(3, 60.0), per_chat=(10, 60.0))

    first = await bot.send_message(ALICE.id, "one")
    await bot.edit_message_text("one, edited", chat_id=ALICE.id, message_id=first.message_id)
    with pytest.raises(BadRequest):  # not accepted, so not counted
        await bot.send_message(BOB.id, "a < b", parse_mode=ParseMode.HTML)
    await bot.get_me()  # neither sends nor edits
    await bot.send_message(BOB.id, "two")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(7, "three")

    assert caught.value.retry_after == dtm.timedelta(seconds=60)
    assert [request.summary() for request in fake.rate_limited] == [
        "sendMessage(chat_id=7, text='three')"
    ]


@pytest.mark.usefixtures("ptb_timedelta")
async def test_it_frees_the_window_as_it_slides_and_ignores_rejections(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.enforce_rate_limits(per_chat=(1, 0.4))
    await bot.send_message(ALICE.id, "one")
    accepted_by = time.monotonic()

    await asyncio.sleep(0.1)
    with pytest.raises(RetryAfter):
        await bot.send_message(ALICE.id, "too soon")
    # "one" leaves the window 0.4 s after it was accepted; "too soon", had it counted, would
    # stay in it until 0.5 s.
    await asyncio.sleep(accepted_by + 0.42 - time.monotonic())
    await bot.send_message(ALICE.id, "two")

    assert [request.text for request in fake.rate_limited] == ["too soon"]


# -- timeouts and dropped connections --------------------------------------------------------


async def test_it_stalls_past_the_client_read_timeout(fake: FakeTelegram, bot: Bot) -> None:
    fake.stall("sendMessage", seconds=30)

    with pytest.raises(TimedOut):
        await bot.send_message(ALICE.id, "lost", read_timeout=0.1)
    message = await bot.send_message(ALICE.id, "next")

    assert fake.sent(ALICE.id)[0].result is None
    assert message.message_id == 1  # the stalled message was never stored


async def test_it_carries_out_a_stalled_call_when_delivered(fake: FakeTelegram, bot: Bot) -> None:
    fake.stall("sendMessage", seconds=30, delivered=True)

    with pytest.raises(TimedOut):
        await bot.send_message(ALICE.id, "sent after all", read_timeout=0.1)

    [request] = fake.sent(ALICE.id)
    assert fake.bot_message(ALICE.id, request.message_id)["text"] == "sent after all"


async def test_it_answers_a_stalled_call_late(fake: FakeTelegram, bot: Bot) -> None:
    fake.stall("sendMessage", seconds=0.2)
    fake.stall("sendMessage", seconds=0.2, delivered=True)
    started = time.monotonic()

    with pytest.raises(NetworkError, match="Gateway Timeout") as caught:
        await bot.send_message(ALICE.id, "not delivered")
    message = await bot.send_message(ALICE.id, "delivered")

    assert type(caught.value) is NetworkError
    assert message.text == "delivered"
    assert time.monotonic() - started >= 0.4


async def test_it_ends_stalls_when_stopped(fake: FakeTelegram, bot: Bot) -> None:
    fake.stall("sendMessage", seconds=30)
    send = asyncio.create_task(bot.send_message(ALICE.id, "waiting"))
    await fake.wait_for(lambda request: request.text == "waiting")

    async with asyncio.timeout(0.5):
        await fake.stop()
        with pytest.raises(NetworkError, match="Gateway Timeout"):
            await send


async def test_it_drops_the_connection_without_an_answer(
    fake: FakeTelegram, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    fake.drop("sendMessage", chat_id=ALICE.id)

    await bot.send_message(BOB.id, "not dropped")
    with pytest.raises(NetworkError) as caught:
        await bot.send_message(ALICE.id, "dropped")
    message = await bot.send_message(ALICE.id, "next")

    # httpx reports "RemoteProtocolError: Server disconnected without sending a response".
    assert type(caught.value) is NetworkError
    assert fake.sent(ALICE.id)[0].result is None
    assert message.message_id == 1  # the dropped message was never stored
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


async def test_it_carries_out_a_dropped_call_when_delivered(fake: FakeTelegram, bot: Bot) -> None:
    fake.drop("sendMessage", delivered=True)

    with pytest.raises(NetworkError):
        await bot.send_message(ALICE.id, "twice")
    retry = await bot.send_message(ALICE.id, "twice")

    assert retry.message_id == 2
    assert fake.bot_message(ALICE.id, 1)["text"] == "twice"
