"""A clinic's templates are escaped whatever their file names; only ours may be plain .txt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.render.jinja import Renderer
from bot.render.prompt_folder import check_folder
from tests.auxil.harness import Harness
from tests.conftest import REPO_PROMPTS
from tests.fake_telegram import TgUser

INTENTION = "<b>hi</b> & <a href='x'>"
ESCAPED = "&lt;b&gt;hi&lt;/b&gt; &amp; &lt;a href=&#39;x&#39;&gt;"


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    """The default prompts, with the main reflection's template named reflection.txt."""
    folder = tmp_path / "prompts"
    shutil.copytree(REPO_PROMPTS, folder)
    (folder / "reflection.html").rename(folder / "reflection.txt")
    schedule = folder / "schedule.toml"
    schedule.write_text(
        schedule.read_text(encoding="utf-8").replace(
            'template = "reflection.html"', 'template = "reflection.txt"'
        ),
        encoding="utf-8",
    )
    return folder


async def test_it_escapes_a_patients_intention_in_a_prompt_template_named_txt(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, f"/intention {INTENTION}")
    await bot.send(alice, "/treatment")
    prompt = await bot.next_prompt(alice)
    while "Reflection" not in (prompt.text or ""):
        prompt = await bot.next_prompt(alice)
    assert f"You came in with this intention:\n<blockquote>{ESCAPED}</blockquote>" in (
        prompt.text or ""
    )
    assert prompt.params["parse_mode"] == "HTML"
    assert "<b>Reflection</b>" in (prompt.text or "")  # the clinic's own markup stays markup


async def test_it_escapes_a_guides_note_in_a_prompt_template_named_txt(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    [reply] = await bot.send(alice, "/guide invite")
    code = reply.split("<code>")[1].split("</code>")[0]
    await bot.send(bob, f"/guide join {code}")
    await bot.send(alice, "/treatment")
    await bot.send(bob, f"/notes {INTENTION}")
    prompt = await bot.next_prompt(alice)
    while "Reflection" not in (prompt.text or ""):
        prompt = await bot.next_prompt(alice)
    assert f"Your guide noted:\n<blockquote>{ESCAPED}</blockquote>" in (prompt.text or "")


def test_it_escapes_every_file_of_a_prompts_folder_but_keeps_our_txt_templates_plain(
    prompts_dir: Path,
):
    (prompts_dir / "note.txt").write_text("{{ intention }}", encoding="utf-8")
    assert Renderer(prompts_dir).render("note.txt", intention=INTENTION) == ESCAPED
    # The bot's own .txt templates are plain words for formats that escape on their own.
    say = Renderer().sayer("journal_words.txt")
    assert say("range", start="<a & b>", end="c") == "From <a & b> to c"


def test_it_reports_a_step_template_not_named_html(prompts_dir: Path):
    assert check_folder(prompts_dir) == [
        "step reflection: template reflection.txt is not named .html; prompts are Telegram "
        "HTML, so name it reflection.html"
    ]
