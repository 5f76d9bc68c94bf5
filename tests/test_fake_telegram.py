from __future__ import annotations

import asyncio
import sys
import textwrap
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
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from tests.fake_telegram import ApiRequest, FakeTelegram, TgUser, UploadedFile

ALICE = TgUser(id=1001, first_name="Alice", username="alice")
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url) as client:
        yield client


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


async def test_it_raises_retry_after_for_an_injected_429(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without PTB_TIMEDELTA, building RetryAfter emits a PTBDeprecationWarning (an error here).
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
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
