"""`python -m bot` (or `companion`): run the bot, migrate, check and preview the prompts."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import Settings, SettingsError, ToolSettings, load_settings
from bot.db.crypto import DataKeyError


def configure_logging(level: str) -> None:
    """Our own modules log at `level`; libraries never below INFO, because their debug logs
    carry what patients write (python-telegram-bot's updates, SQLAlchemy's parameters) and
    httpx's request lines carry the bot token."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level, stream=sys.stderr
    )
    floor = max(logging.getLevelName(level), logging.INFO)
    logging.getLogger("telegram").setLevel(floor)
    for noisy in ("httpx", "httpcore", "sqlalchemy", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run() -> int:
    settings = load_settings(Settings)
    configure_logging(settings.log_level)
    from bot.app import build_application, build_companion

    app = build_application(build_companion(settings))
    logging.getLogger(__name__).info("starting the companion with long polling")
    app.run_polling(allowed_updates=["message", "edited_message", "callback_query"])
    return 0


def webhook() -> int:
    settings = load_settings(Settings)
    settings.require_webhook()
    configure_logging(settings.log_level)
    from bot.app import build_application, build_companion
    from bot.telegram.webhook import run_webhook

    app = build_application(build_companion(settings), mode="webhook")
    logging.getLogger(__name__).info("starting the companion in webhook mode")
    run_webhook(app)
    return 0


def migrate() -> int:
    settings = load_settings(ToolSettings)
    configure_logging(settings.log_level)
    from bot.db.crypto import use_cipher
    from bot.db.keys import open_cipher
    from bot.db.migrate import upgrade_to_head
    from bot.db.session import create_db_engine

    engine = create_db_engine(settings.database_url)
    try:
        use_cipher(open_cipher(settings, engine))
        upgrade_to_head(engine)
    finally:
        engine.dispose()
    print("The database schema is up to date.")
    return 0


def status() -> int:
    settings = load_settings(ToolSettings)
    configure_logging("WARNING")
    from bot.db.session import create_db_engine, create_session_factory
    from bot.status import format_status, read_status

    # Counts only: no key is needed, and nothing encrypted is read.
    engine = create_db_engine(settings.database_url)
    try:
        with create_session_factory(engine)() as session:
            print(format_status(read_status(session, datetime.now(UTC))))
    finally:
        engine.dispose()
    return 0


def keys(action: str) -> int:
    from bot.db.crypto import new_key

    if action == "new":
        print(new_key())
        return 0
    settings = load_settings(ToolSettings)
    configure_logging(settings.log_level)
    from bot.db.crypto import use_cipher
    from bot.db.keys import open_cipher, rotate_keys
    from bot.db.migrate import upgrade_to_head
    from bot.db.session import create_db_engine

    engine = create_db_engine(settings.database_url)
    try:
        cipher = open_cipher(settings, engine)
        use_cipher(cipher)
        upgrade_to_head(engine)
        changed = rotate_keys(
            engine,
            cipher,
            progress=lambda table, rows: print(f"{table}: {rows} row(s)", flush=True),
        )
    finally:
        engine.dispose()
    print(f"Re-encrypted {changed} row(s) under the newest key.")
    return 0


def crisis_train() -> int:
    from bot.crisis.model import MODEL_PATH
    from bot.crisis.training import (
        DEV_SET,
        ORDINARY_DEV_SET,
        read_examples,
        train,
        training_sets,
        write_model,
    )

    sets = training_sets()
    model = train(read_examples(sets), read_examples([DEV_SET]), read_examples([ORDINARY_DEV_SET]))
    write_model(model, MODEL_PATH)
    print(f"Trained on {', '.join(path.name for path in sets)}; wrote {MODEL_PATH}.")
    return 0


def crisis_measure(paths: list[Path]) -> int:
    from bot.crisis import is_crisis
    from bot.crisis.training import read_examples

    examples = read_examples(paths)
    alarmed = [(example.crisis, is_crisis(example.text)) for example in examples]
    hits = sum(crisis and alarm for crisis, alarm in alarmed)
    alarms = sum(alarm for _, alarm in alarmed)
    crises = sum(crisis for crisis, _ in alarmed)
    print(
        f"{len(examples)} messages, {crises} crisis: precision {hits / max(alarms, 1):.3f}, "
        f"recall {hits / max(crises, 1):.3f}"
    )
    return 0


def prompts_check(folder: Path) -> int:
    from bot.render.prompt_folder import check_folder

    problems = check_folder(folder)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {folder}", file=sys.stderr)
        return 1
    print(f"{folder}: the schedule and its templates are fine.")
    return 0


def prompts_preview(folder: Path, timezone: str, at: str | None) -> int:
    from bot.core.schedule import load_schedule
    from bot.render.prompt_folder import check_folder, preview_folder

    problems = check_folder(folder)
    if problems:
        print("\n".join(problems))
        return 1
    zone = ZoneInfo(timezone)
    start = (
        datetime.fromisoformat(at).replace(tzinfo=zone)
        if at
        else datetime.now(zone).replace(hour=11, minute=0, second=0, microsecond=0)
    ).astimezone(UTC)
    schedule = load_schedule(folder)
    print(f"Sample treatment 1 at {start.astimezone(zone):%a %d %b %Y %H:%M} ({zone.key}),")
    print("quiet hours 22:00-08:00, intention: 'To meet my grief with kindness'\n")
    for item in preview_folder(schedule, start, zone, "To meet my grief with kindness"):
        local = item.sends_at.astimezone(zone)
        print(
            f"=== {item.step.key} · {item.step.title} · after {item.step.after.text} · "
            f"{local:%a %d %b %H:%M} · reply: {item.step.reply}"
        )
        print(item.text, end="\n\n")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="companion", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the bot (long polling)")
    commands.add_parser(
        "webhook", help="start one instance in webhook mode (several may share PostgreSQL)"
    )
    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser("status", help="prompts by state, failures and the inbox backlog")
    keys_parser = commands.add_parser("keys", help="encryption keys: new, rotate")
    keys_parser.add_argument(
        "action",
        choices=["new", "rotate"],
        help="new: print a new key; rotate: re-encrypt every row under the first key",
    )
    crisis = commands.add_parser("crisis", help="the crisis model: train, measure")
    crisis_actions = crisis.add_subparsers(dest="action", required=True)
    crisis_actions.add_parser("train", help="rebuild bot/crisis/model.json from the labelled sets")
    measure = crisis_actions.add_parser("measure", help="precision and recall on labelled sets")
    measure.add_argument("sets", nargs="+", type=Path, help="label<TAB>category<TAB>text files")
    prompts = commands.add_parser("prompts", help="check or preview a prompts folder")
    actions = prompts.add_subparsers(dest="action", required=True)
    for name, text in (("check", "validate a prompts folder"), ("preview", "render every step")):
        action = actions.add_parser(name, help=text)
        action.add_argument("folder", nargs="?", type=Path, help="default: PROMPTS_DIR")
        if name == "preview":
            action.add_argument("--timezone", default=None, help="IANA zone for the sample")
            action.add_argument(
                "--at", default=None, help="sample treatment time, YYYY-MM-DDTHH:MM"
            )
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "run":
            return run()
        if args.command == "webhook":
            return webhook()
        if args.command == "migrate":
            return migrate()
        if args.command == "status":
            return status()
        if args.command == "keys":
            return keys(args.action)
        if args.command == "crisis":
            return crisis_train() if args.action == "train" else crisis_measure(args.sets)
        tools = load_settings(ToolSettings) if args.folder is None else None
        folder: Path = args.folder or (tools.prompts_dir if tools else Path("prompts"))
        if args.action == "check":
            return prompts_check(folder)
        zone = args.timezone or (tools or load_settings(ToolSettings)).default_timezone
        return prompts_preview(folder, zone, args.at)
    except (SettingsError, DataKeyError) as exc:
        print(f"Configuration problem:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
