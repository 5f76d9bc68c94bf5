from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from bot.render.telegram_html import TELEGRAM_LIMIT, pack_blocks, split_html, visible_length


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# A piece is a sequence of whole tags, whole entities and characters that start neither.
_WHOLE_TOKENS = re.compile(
    r"(?:<[^<>]*>|&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);|[^<>&])*"
)

_EMOJI = '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
# Every Telegram tag, entities everywhere, nesting, a long unbreakable word, blank lines.
_TRICKY = (
    "<b>Bold &amp; <i>nested &lt;italic&gt;</i> still bold</b> plain&#39;s &quot;text&quot;\n"
    '<a href="https://ex.am/p?a=1&amp;b=2">link &amp; more</a> '
    "<tg-spoiler>secret</tg-spoiler> "
    '<span class="tg-spoiler">hidden &#x1F600; text</span>\n\n'
    "<blockquote expandable>Quote line one\nQuote line two &amp; three</blockquote>\n"
    '<pre><code class="language-py">if a &lt; b:\n    print(&quot;hi&quot;)</code></pre>\n'
    "Averyveryverylongwordwithoutanyspaces&amp;entities&#39;inside "
    "<u>u</u><ins>ins</ins><s>s</s><strike>st</strike><del>del</del>"
    "<em>em</em><strong>strong</strong><code>x&amp;y</code>\n"
    f"{_EMOJI} done."
)


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open_tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open_tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open_tags, f"</{tag}> closes nothing"
        assert self.open_tags.pop() == tag, f"</{tag}> closes the wrong tag"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def text_of(html: str) -> str:
    """The text content of well-formed Telegram HTML; fails the test if it is not well-formed."""
    assert _WHOLE_TOKENS.fullmatch(html), f"cut tag or entity in {html!r}"
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert not checker.open_tags, f"unclosed {checker.open_tags} in {html!r}"
    return "".join(checker.text)


def assert_valid_split(original: str, pieces: list[str], limit: int) -> None:
    """Pieces fit, are well-formed, and in order reproduce the text up to whitespace at breaks."""
    assert pieces
    full_text = text_of(original)
    position = 0
    for piece in pieces:
        assert utf16_len(piece) <= limit, (limit, piece)
        piece_text = text_of(piece).strip()
        assert piece_text, f"blank piece {piece!r}"
        found = full_text.find(piece_text, position)
        assert found >= 0, f"{piece_text!r} is not the next text after {position}"
        assert not full_text[position:found].strip(), f"text lost before {piece_text!r}"
        position = found + len(piece_text)
    assert not full_text[position:].strip(), "text lost at the end"


def test_it_packs_small_blocks_together_in_order_with_the_separator() -> None:
    assert pack_blocks(["<b>one</b>", "two", "three"]) == ["<b>one</b>\n\ntwo\n\nthree"]
    assert pack_blocks(["a", "b"], separator=" | ") == ["a | b"]


def test_it_strips_blocks_and_drops_empty_ones() -> None:
    assert pack_blocks(["  \n", " a \n", "", "\tb"]) == ["a\n\nb"]
    assert pack_blocks([]) == []
    assert pack_blocks(["  ", "\n"]) == []


def test_it_starts_a_new_message_instead_of_cutting_a_block() -> None:
    first, second = "x" * 30, "<i>" + "y" * 20 + "</i>"
    # 30 + 2 + 27 = 59 would overflow 50, and the second block fits on its own.
    assert pack_blocks([first, second, "z"], limit=50) == [first, f"{second}\n\nz"]


def test_it_fills_a_message_up_to_exactly_the_limit() -> None:
    assert pack_blocks(["a" * 24, "b" * 24], limit=50) == ["a" * 24 + "\n\n" + "b" * 24]
    assert pack_blocks(["a" * 24, "b" * 25], limit=50) == ["a" * 24, "b" * 25]


def test_it_keeps_every_message_within_the_limit() -> None:
    blocks = [f"<b>Note {i}</b>\n" + "word &amp; " * (i % 25) for i in range(200)]
    messages = pack_blocks(blocks, limit=300)
    assert all(visible_length(message) <= 300 for message in messages)
    assert "\n\n".join(messages) == "\n\n".join(block.strip() for block in blocks)


def test_it_splits_an_oversized_block_at_newlines_and_keeps_it_well_formed() -> None:
    block = (
        "<b>Daily check-in</b>\nHow did you sleep last night?\n"
        "Any dreams, <i>images or\nfeelings</i> worth noting?\nTake your time."
    )
    assert split_html(block, 50) == [
        "<b>Daily check-in</b>",
        "How did you sleep last night?",
        "Any dreams, <i>images or</i>",
        "<i>feelings</i> worth noting?\nTake your time.",
    ]
    assert pack_blocks(["Hi", block, "Bye"], limit=50) == [
        "Hi",
        "<b>Daily check-in</b>",
        "How did you sleep last night?",
        "Any dreams, <i>images or</i>",
        "<i>feelings</i> worth noting?\nTake your time.\n\nBye",
    ]


def test_it_splits_a_real_oversized_block_with_entities_and_bold_tags() -> None:
    lines = [
        f"<b>Line {i}:</b> salt &amp; pepper, fish &amp; chips, <b>bold &amp; brave</b>."
        for i in range(150)
    ]
    block = "<i>" + "\n".join(lines) + "</i>"
    assert len(block) > 10_000

    pieces = split_html(block)

    assert len(pieces) == 3
    assert_valid_split(block, pieces, TELEGRAM_LIMIT)
    for piece in pieces:
        # Broken at newlines only, with the spanning <i> closed and reopened.
        assert piece.startswith("<i><b>Line ")
        assert piece.endswith("</b>.</i>")
    assert pack_blocks([block]) == pieces


def test_it_prefers_a_space_then_any_character_when_a_line_is_too_long() -> None:
    assert split_html("alpha beta gamma delta", 12) == ["alpha beta", "gamma delta"]
    assert split_html("abcdefghij", 4) == ["abcd", "efgh", "ij"]


def test_it_reopens_tags_with_their_attributes() -> None:
    html = '<blockquote expandable><a href="https://x.io/?a=1&amp;b=2">one two</a></blockquote>'
    assert split_html(html, 79) == [
        '<blockquote expandable><a href="https://x.io/?a=1&amp;b=2">one</a></blockquote>',
        '<blockquote expandable><a href="https://x.io/?a=1&amp;b=2">two</a></blockquote>',
    ]
    pre = '<pre><code class="language-py">x = 1\ny = 2</code></pre>'
    assert split_html(pre, 49) == [
        '<pre><code class="language-py">x = 1</code></pre>',
        '<pre><code class="language-py">y = 2</code></pre>',
    ]


def test_it_never_cuts_inside_an_entity_or_tag() -> None:
    # Below this, the emoji cannot be sent inside its own tag at all.
    smallest_limit = utf16_len(_EMOJI)
    for limit in range(20, 201):
        if limit < smallest_limit:
            with pytest.raises(ValueError, match="cannot fit"):
                split_html(_TRICKY, limit)
        else:
            assert_valid_split(_TRICKY, split_html(_TRICKY, limit), limit)


def test_it_never_cuts_inside_entities_even_with_tiny_limits() -> None:
    text = "&amp;&lt;&#39;&#x1F600;&quot; <b>&amp;&amp;</b>&gt;\n&nbsp;x"
    for limit in range(12, 40):
        assert_valid_split(text, split_html(text, limit), limit)


def test_it_preserves_text_content() -> None:
    pieces = split_html(_TRICKY, 120)
    assert len(pieces) > 3
    joined = "".join(text_of(piece) for piece in pieces)
    assert re.sub(r"\s", "", joined) == re.sub(r"\s", "", text_of(_TRICKY))
    assert split_html(_TRICKY, utf16_len(_TRICKY)) == [_TRICKY]


def test_it_rejects_limits_that_cannot_hold_anything() -> None:
    with pytest.raises(ValueError, match="positive"):
        split_html("text", 0)
    with pytest.raises(ValueError, match="positive"):
        pack_blocks(["text"], limit=-1)
    with pytest.raises(ValueError, match="cannot fit"):
        split_html('<a href="https://example.com">link</a>', 30)


def test_it_counts_what_telegram_counts():
    assert visible_length("<b>a &amp; b</b>") == 5
    assert visible_length("😀") == 2  # two UTF-16 code units


def test_it_packs_by_visible_length_so_escaped_text_fits_one_message():
    block = "<i>" + "&amp;" * 4000 + "</i>"  # 20,007 characters of HTML, 4,000 visible
    assert pack_blocks([block]) == [block]
