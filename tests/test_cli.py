"""The command line: prompts check and preview, migrate, and clear configuration errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from bot.config import Settings, SettingsError, load_settings
from tests.conftest import REPO_PROMPTS


def companion(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_PROMPTS.parent), **(env or {})},
        cwd=cwd,
        check=False,
    )


def test_it_passes_the_default_prompts():
    result = companion("prompts", "check", str(REPO_PROMPTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the schedule and its templates are fine" in result.stdout


def test_it_reports_each_problem_in_a_broken_folder(tmp_path: Path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "schedule.toml").write_text(
        """
[[step]]
key = "checkin"
after = "3h"
template = "checkin.html"

[[step]]
key = "reflection"
after = "14h"
template = "reflection.html"

[[step]]
key = "gone"
after = "2d"
template = "missing.html"
""",
        encoding="utf-8",
    )
    (folder / "checkin.html").write_text("Hello {{ first_name }} {% if %}", encoding="utf-8")
    (folder / "reflection.html").write_text("{{ patient_name }} at {{ hours_since }}h")
    (folder / "old.html").write_text("unused")
    result = companion("prompts", "check", str(folder))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "checkin.html line 1: Expected an expression, got 'end of statement block'",
        "reflection.html: unknown variable 'patient_name'",
        "step gone: template missing.html is missing",
        "old.html: not used by any step",
    ]


def test_it_reports_what_telegram_would_refuse(tmp_path: Path):
    folder = tmp_path / "refused"
    folder.mkdir()
    steps = "".join(
        f'[[step]]\nkey = "{key}"\nafter = "{n}h"\ntemplate = "{key}.html"\n\n'
        for n, key in enumerate(["tags", "long", "math", "empty"], start=1)
    )
    (folder / "schedule.toml").write_text(steps, encoding="utf-8")
    (folder / "tags.html").write_text("<p>Hello</p><b>open", encoding="utf-8")
    (folder / "long.html").write_text("{{ intention }}\n" + "Breathe. " * 400, encoding="utf-8")
    (folder / "math.html").write_text("{{ hours_since + first_name }}", encoding="utf-8")
    (folder / "empty.html").write_text("{% if false %}x{% endif %}", encoding="utf-8")
    result = companion("prompts", "check", str(folder))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "tags.html: <p> is not a tag Telegram accepts",
        "tags.html: <b> is never closed",
        "long.html: 4600 characters with the longest name and intention; Telegram allows 4096",
        "math.html: cannot render: unsupported operand type(s) for +: 'int' and 'str'",
        "empty.html: renders to an empty message",
    ]


def test_it_reports_a_bad_duration_on_one_line(tmp_path: Path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "schedule.toml").write_text(
        '[[step]]\nkey = "a"\nafter = "soon"\ntemplate = "a.html"\n', encoding="utf-8"
    )
    (folder / "a.html").write_text("Hi")
    result = companion("prompts", "check", str(folder))
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "schedule.toml step 1 (a): after: 'soon' is not a duration "
        "(use numbers with w, d, h, m, s, e.g. 3h, 1d12h or -1d)"
    )


def test_it_previews_every_step_with_its_local_send_time():
    result = companion(
        "prompts",
        "preview",
        str(REPO_PROMPTS),
        "--timezone",
        "Europe/Berlin",
        "--at",
        "2026-10-24T18:00",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (
        "=== intention_invite · An intention · after -1d · Fri 23 Oct 19:00 · reply: intention"
        in out
    )
    assert "=== intention_morning · Your session today · after -0d · Sat 24 Oct 08:00" in out
    assert "=== checkin · Check-in · after 3h · Sat 24 Oct 21:00 · reply: text" in out
    # 13 h after 18:00 is 06:00 (the clocks went back): quiet hours hold it until 08:00,
    # and the reflection keeps an hour's distance from it.
    assert "=== mood_first · How you feel · after 13h · Sun 25 Oct 08:00 · reply: scale" in out
    assert "=== reflection · Reflection · after 14h · Sun 25 Oct 09:00 · reply: text" in out
    assert "=== day2 · One small step · after 2d · Mon 26 Oct 18:00" in out
    assert "<blockquote>To meet my grief with kindness</blockquote>" in out
    assert out.count("=== ") == 12


def test_it_migrates_a_fresh_database(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    result = companion("migrate", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"patients", "treatments", "scheduled_prompts", "entries", "alembic_version"} <= tables


def test_it_shows_the_status_of_a_database(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'status.sqlite3'}"
    assert companion("migrate", env={"DATABASE_URL": url}, cwd=tmp_path).returncode == 0
    result = companion("status", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["patients: 0", "prompts pending: 0"]
    assert "inbox backlog: 0" in result.stdout


def test_it_says_how_to_get_a_token_when_it_is_missing(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
        env={**env, "PYTHONPATH": str(REPO_PROMPTS.parent)},
    )
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN is not set" in result.stderr
    assert "@BotFather" in result.stderr
    assert ".env" in result.stderr


def test_webhook_mode_says_what_is_missing_before_it_starts(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_")}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "webhook"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
        env={**env, "PYTHONPATH": str(REPO_PROMPTS.parent), "TELEGRAM_BOT_TOKEN": "1:a"},
    )
    assert result.returncode == 2
    assert "Webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"default_timezone": "Mars/Base"}, "DEFAULT_TIMEZONE 'Mars/Base'"),
        ({"dispatch_interval_seconds": 0}, "DISPATCH_INTERVAL_SECONDS: Input should be greater"),
        ({"prompts_dir": "/nonexistent"}, "PROMPTS_DIR '/nonexistent' has no"),
        ({"log_level": "LOUD"}, "LOG_LEVEL must be"),
        ({"telegram_bot_token": "nocolon"}, "TELEGRAM_BOT_TOKEN looks wrong"),
    ],
)
def test_it_fails_loudly_on_bad_settings(overrides: dict[str, object], message: str):
    values: dict[str, object] = {"telegram_bot_token": "1:A", "_env_file": None} | overrides
    with pytest.raises(SettingsError) as caught:
        load_settings(Settings, **values)
    assert str(caught.value).startswith(message)


def test_every_setting_is_documented_in_env_example_and_the_readme():
    root = Path(__file__).resolve().parent.parent
    example = (root / ".env.example").read_text()
    readme = (root / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"# {name.upper()}=" in example or f"\n{name.upper()}=" in example, name
        assert f"`{name.upper()}`" in readme, name
