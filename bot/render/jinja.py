"""Jinja2 environments for everything a person reads, autoescaped for Telegram HTML."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

BOT_TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class Say(Protocol):
    """Short texts from the macros of one template: say("title"), say("mood", value=7)."""

    def __call__(self, name: str, /, **context: Any) -> str: ...


def _escape_unless_plain_text(name: str | None) -> bool:
    return not (name or "").endswith(".txt")


def make_environment(folder: Path) -> Environment:
    """Autoescape on for Telegram HTML; a missing variable is an error.

    Only the bot's own folder (bot/templates) may hold plain .txt templates: words for formats
    that escape on their own (Markdown, PDF). Every other folder, a clinic's prompts above all,
    is escaped whatever its files are named, so a patient's intention or a guide's note can
    never become markup in a prompt.
    """
    own = folder.resolve() == BOT_TEMPLATES_DIR
    return Environment(
        loader=FileSystemLoader(folder),
        autoescape=_escape_unless_plain_text if own else True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


class Renderer:
    """Renders one template file per message."""

    def __init__(self, folder: Path = BOT_TEMPLATES_DIR) -> None:
        self.env = make_environment(folder)
        # A marker no patient can type (it is new for every process), so a page of many entries
        # can be split into messages only between blocks, never inside an entry or a tag.
        self._break = Markup(f"\x1e{secrets.token_hex(8)}\x1e")

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(context).strip()

    def sayer(self, name: str) -> Say:
        """The macros of template `name`, as a function returning each one's text."""
        module = self.env.get_template(name).module

        def say(macro: str, /, **context: Any) -> str:
            return str(getattr(module, macro)(**context)).strip()

        return say

    def render_blocks(self, name: str, **context: Any) -> list[str]:
        """Render a template that separates its blocks with {{ BREAK }}."""
        text = self.env.get_template(name).render(context, BREAK=self._break)
        return [block.strip() for block in text.split(self._break) if block.strip()]
