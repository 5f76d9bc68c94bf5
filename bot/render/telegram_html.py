"""Pack Telegram-HTML text into messages that respect Telegram's length limit.

Pure string handling, no Telegram imports. Telegram limits a message to 4096 UTF-16 code units
of text after entity parsing: packing measures exactly that (visible_length), and splitting an
oversized block measures the HTML itself in UTF-16 units, which over-counts and so is safe.
"""

from __future__ import annotations

import html as html_lib
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from enum import Enum
from html.parser import HTMLParser
from typing import NamedTuple

TELEGRAM_LIMIT = 4096

# Input comes from autoescaped templates, so "<" and "&" only start tags and entities; a stray
# one falls through to the single-character branch and is kept as text.
_TOKEN = re.compile(
    r"<[^<>]*>|&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);|.",
    re.DOTALL,
)
_TAG = re.compile(r"<(/?)([A-Za-z][\w-]*)")
_TAG_ANYWHERE = re.compile(r"<[^<>]*>")


def _units(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts (an emoji is often two)."""
    return len(text.encode("utf-16-le")) // 2


def visible_length(html: str) -> int:
    """What Telegram counts toward its limit: the text without tags, entities decoded."""
    return sum(
        _units(html_lib.unescape(token)) for token in _TOKEN.findall(html) if not _TAG.match(token)
    )


class _Kind(Enum):
    TEXT = "text"  # one character or one entity
    OPEN = "open"
    CLOSE = "close"
    OTHER_TAG = "other"  # self-closing or unrecognised markup: kept, never stacked


class _Token(NamedTuple):
    text: str
    kind: _Kind
    name: str = ""


def pack_blocks(
    blocks: Iterable[str], limit: int = TELEGRAM_LIMIT, separator: str = "\n\n"
) -> list[str]:
    """Join rendered blocks into as few messages as possible, each at most `limit` characters.

    A block is never split across messages unless it alone is longer than `limit`; then it is
    split with split_html. Empty/whitespace-only blocks are dropped; blocks are stripped.
    """
    _check_limit(limit)
    messages: list[str] = []
    current = ""
    for raw in blocks:
        block = raw.strip()
        if not block:
            continue
        if current and visible_length(current + separator + block) <= limit:
            current += separator + block
            continue
        if current:
            messages.append(current)
        pieces = split_html(block, limit) if visible_length(block) > limit else [block]
        messages.extend(pieces[:-1])
        # The tail of a split block may still share a message with the blocks that follow.
        current = pieces[-1] if pieces else ""
    if current:
        messages.append(current)
    return messages


def split_html(html: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split one Telegram-HTML string into pieces of at most `limit` characters each.

    Never breaks inside a tag or an entity (&amp; &#39; ...): prefers breaking at a newline,
    then at a space, then anywhere between characters. Tags open at a break are closed at the
    end of the piece and reopened (with the same attributes) at the start of the next one, and
    that closing/reopening counts toward the limit. Whitespace at break points may be dropped,
    and pieces without visible text are dropped.

    Raises ValueError if `limit` cannot hold even one character inside the tags open at some
    point (e.g. a 40-character <a href="..."> with limit 30).
    """
    _check_limit(limit)
    tokens = _tokenize(html)
    count = len(tokens)
    stacks = _open_tag_stacks(tokens)
    reopen_len = [sum(len(tag.text) for tag in stack) for stack in stacks]
    close_len = [sum(len(tag.name) + 3 for tag in stack) for stack in stacks]
    consumed = [0]
    for token in tokens:
        consumed.append(consumed[-1] + _units(token.text))
    # Length of a piece from token s up to (not including) token k is
    # reopen_len[s] - consumed[s] + reach[k]. reach never decreases: an opening tag adds its
    # own length and its closer's, a closing tag trades its length for its closer's.
    reach = [done + closing for done, closing in zip(consumed, close_len, strict=True)]

    pieces: list[str] = []
    start = 0
    while start < count:
        budget = limit - reopen_len[start] + consumed[start]
        if reach[count] <= budget:
            end = resume = count
        else:
            last_fit = bisect_right(reach, budget, lo=start) - 1
            if last_fit <= start:
                open_tags = "".join(tag.text for tag in stacks[start])
                raise ValueError(
                    f"limit {limit} cannot fit text inside {open_tags!r} "
                    f"at offset {consumed[start]}"
                )
            end, resume = _choose_break(tokens, start, last_fit)
        if any(_is_visible(token) for token in tokens[start:end]):
            pieces.append(
                "".join(tag.text for tag in stacks[start])
                + "".join(token.text for token in tokens[start:end])
                + "".join(f"</{tag.name}>" for tag in reversed(stacks[end]))
            )
        start = resume
    return pieces


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")


def _tokenize(html: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(html):
        text = match.group()
        tag = _TAG.match(text)
        if tag is None:
            tokens.append(_Token(text, _Kind.TEXT))
        elif tag.group(1):
            tokens.append(_Token(text, _Kind.CLOSE, tag.group(2).lower()))
        elif text.endswith("/>"):
            tokens.append(_Token(text, _Kind.OTHER_TAG))
        else:
            tokens.append(_Token(text, _Kind.OPEN, tag.group(2).lower()))
    return tokens


def _open_tag_stacks(tokens: Sequence[_Token]) -> list[tuple[_Token, ...]]:
    """Opening tags still open before each token index (and after the last one)."""
    stacks: list[tuple[_Token, ...]] = [()]
    for token in tokens:
        stack = stacks[-1]
        if token.kind is _Kind.OPEN:
            stack = (*stack, token)
        elif token.kind is _Kind.CLOSE:
            names = [tag.name for tag in stack]
            if token.name in names:
                stack = stack[: len(names) - 1 - names[::-1].index(token.name)]
        stacks.append(stack)
    return stacks


def _choose_break(tokens: Sequence[_Token], start: int, last_fit: int) -> tuple[int, int]:
    """Return (end, resume): the piece is tokens[start:end], the next one starts at resume.

    Everything in tokens[end:resume] is whitespace or markup, so dropping it loses no text:
    the piece's closers and the next piece's reopened tags stand in for the markup.
    """
    first_visible = next((i for i in range(start, last_fit) if _is_visible(tokens[i])), None)
    if first_visible is None:
        # Only whitespace fits before the next visible character: drop it and retry there.
        return start, last_fit
    # A whitespace token at last_fit itself still qualifies: it is dropped, not sent.
    candidates = range(last_fit, first_visible, -1)
    newline = next((i for i in candidates if tokens[i].text == "\n"), None)
    space = next((i for i in candidates if tokens[i].text.isspace()), None)
    if newline is not None:
        end, resume = newline, newline + 1
    elif space is not None:
        end, resume = space, space + 1
    else:
        end = resume = last_fit
    # Trailing whitespace and dangling opening tags would only make empty or blank endings.
    while end > first_visible + 1 and (
        tokens[end - 1].kind is _Kind.OPEN or tokens[end - 1].text.isspace()
    ):
        end -= 1
    # Leading closing tags would reopen into empty elements; leading newlines are noise.
    # Spaces are kept so that indentation inside <pre> survives.
    while resume < len(tokens) and (
        tokens[resume].kind is not _Kind.TEXT or tokens[resume].text == "\n"
    ):
        resume += 1
    return end, resume


def _is_visible(token: _Token) -> bool:
    return token.kind is _Kind.TEXT and not token.text.isspace()


TELEGRAM_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
        "code", "pre", "blockquote", "tg-emoji",
    }
)  # fmt: skip


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"<{tag}> is not a tag Telegram accepts")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"<{tag}/> is not a tag Telegram accepts")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> does not close the tag before it")
        else:
            self.open.pop()


def telegram_html_problems(html: str) -> list[str]:
    """Why Telegram would refuse this HTML (unknown or unbalanced tags); empty if it is fine."""
    checker = _TagChecker()
    checker.feed(html)
    checker.close()
    return checker.problems + [f"<{tag}> is never closed" for tag in checker.open]


def plain_text(html: str) -> str:
    """The text of Telegram HTML without its tags: the fallback when Telegram refuses the HTML."""
    return html_lib.unescape(_TAG_ANYWHERE.sub("", html))
