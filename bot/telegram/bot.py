"""The Bot the companion talks to Telegram with: the durable inbox's getUpdates, and a last
resort for a message Telegram refuses.

Every text is rendered from templates with user text escaped and long texts split, so Telegram
should never answer "can't parse entities" or "message is too long". If it does anyway (a
clinic's template with a tag Telegram does not know, a template that grew), the patient gets
the words rather than nothing: as plain text, or in parts. The log says so, without content.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram.error import BadRequest

from bot.render.telegram_html import plain_text, split_html
from bot.telegram.inbox import InboxBot

log = logging.getLogger(__name__)

TEXT_ENDPOINTS = frozenset({"sendMessage", "editMessageText"})


class CompanionBot(InboxBot):
    async def _do_post(self, endpoint: str, data: dict[str, Any], **kwargs: Any) -> Any:
        try:
            return await super()._do_post(endpoint, data, **kwargs)
        except BadRequest as exc:
            text = data.get("text")
            if endpoint not in TEXT_ENDPOINTS or not isinstance(text, str):
                raise
            problem = exc.message.lower()
            if "parse entities" in problem:
                log.error(
                    "Telegram could not parse the HTML of a %s; sent as plain text", endpoint
                )
                plain = {k: v for k, v in data.items() if k not in ("parse_mode", "entities")}
                return await super()._do_post(
                    endpoint, plain | {"text": plain_text(text)}, **kwargs
                )
            if "too long" in problem and endpoint == "sendMessage":
                log.error("a message was too long for Telegram; sent in parts")
                *first, last = split_html(text)
                without_buttons = {k: v for k, v in data.items() if k != "reply_markup"}
                for part in first:
                    await super()._do_post(endpoint, without_buttons | {"text": part}, **kwargs)
                return await super()._do_post(endpoint, data | {"text": last}, **kwargs)
            raise
