"""What the benchmarks share: the Result row, the machine's description, process CPU and memory,
the fake Bot API in its own process, settings for a bot on a temporary SQLite file, and fast
bulk rows generated inside SQLite."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import httpx
import psutil  # type: ignore[import-untyped]
import sqlalchemy
import telegram
from sqlalchemy import Connection

from bot.config import Settings
from bot.db.crypto import new_key

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "prompts"
TOKEN = "123456:BENCH-TOKEN"
# Patients' Telegram ids start here, so chat ids never clash with small row ids.
FIRST_CHAT_ID = 10_000


@dataclass(frozen=True)
class Result:
    """One row of the results table. `ratio` is ours / baseline, both measured in the same run
    (or the large case over the small one, for growth)."""

    number: int  # the benchmark's number
    benchmark: str
    measured: str  # what was measured, in words
    ours: float
    baseline: float
    unit: str  # of `ours` and `baseline`: "s", "ms", "µs", "MiB", "/s"
    goal: str  # the goal in words, "" when the row is for information
    met: bool | None  # None: no goal
    ratio: float = float("nan")

    @classmethod
    def of(
        cls,
        number: int,
        benchmark: str,
        measured: str,
        ours: float,
        baseline: float,
        unit: str,
        goal: str = "",
        met: Callable[[float], bool] | None = None,
    ) -> Self:
        """A row whose ratio is computed here, and whose goal is judged on that ratio."""
        ratio = ours / baseline if baseline else float("inf")
        return cls(
            number,
            benchmark,
            measured,
            ours,
            baseline,
            unit,
            goal,
            met(ratio) if met else None,
            ratio,
        )


def format_value(value: float, unit: str) -> str:
    if unit == "s" and value < 0.1:
        value, unit = value * 1000, "ms"
    if unit == "ms" and value < 0.1:
        value, unit = value * 1000, "µs"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f} {unit}"


def verdict(met: bool | None) -> str:
    return "—" if met is None else "met" if met else "**missed**"


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| # | benchmark | measured | ours | baseline | ratio | goal | result |",
        "| ---: | --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.number} | {r.benchmark} | {r.measured} | {format_value(r.ours, r.unit)} "
            f"| {format_value(r.baseline, r.unit)} | {r.ratio:.2f} | {r.goal or '—'} "
            f"| {verdict(r.met)} |"
        )
    return "\n".join(lines)


def print_results(results: list[Result]) -> None:
    print(markdown_table(results))


def cpu_model() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown"
    first_cpu = info.split("\n\n")[0].splitlines()
    fields = {
        key.strip(): value.strip() for key, _, value in (line.partition(":") for line in first_cpu)
    }
    model = fields.get("model name", platform.processor() or "unknown")
    if "cpu family" in fields:  # a bare "AMD EPYC" says little; family and model say which
        model += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    if "cpu MHz" in fields:
        model += f", {float(fields['cpu MHz']):.0f} MHz"
    return model


def describe_machine() -> list[tuple[str, str]]:
    memory = psutil.virtual_memory().total / 2**30
    return [
        ("CPU", cpu_model()),
        ("Cores", f"{psutil.cpu_count(logical=False)} physical, {os.cpu_count()} logical"),
        ("RAM", f"{memory:.1f} GiB"),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("SQLite", sqlite3.sqlite_version),
        ("python-telegram-bot", telegram.__version__),
        ("SQLAlchemy", sqlalchemy.__version__),
        ("Date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]


def rss_mib(pid: int | None = None) -> float:
    """Resident memory of a process (this one by default), in MiB."""
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def cpu_seconds(pid: int | None = None) -> float:
    """User and system CPU time a process (this one by default) has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user) + float(times.system)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def bench_settings(folder: Path, base_url: str, **overrides: Any) -> Settings:
    """A bot on a SQLite file in `folder`, talking to the fake, with a DATA_KEYS key, no
    repeating dispatch (benchmarks call it), and limits far above any rate reached here."""
    values: dict[str, Any] = {
        "telegram_bot_token": TOKEN,
        "telegram_api_base_url": base_url,
        "database_url": f"sqlite:///{folder / 'companion.sqlite3'}",
        "data_keys": new_key(),
        "prompts_dir": PROMPTS,
        "dispatch_interval_seconds": 3600,
        "default_timezone": "UTC",
        "rate_limit_overall": 10000,
        "rate_limit_per_chat": 10000,
        "rate_limit_chat_burst": 100,
        "telegram_timeout_seconds": 30,
    }
    return Settings(_env_file=None, **(values | overrides))


# -- the fake Bot API in its own process -----------------------------------------------------


class FakeApi:
    """bench/fake_api.py in a subprocess; `with FakeApi() as fake:` starts and stops it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> Self:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_api", "--token", TOKEN],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"the fake Bot API did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.port}/control"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    # Synchronous control, for benchmarks whose bot runs in another process.

    def reset(self) -> None:
        httpx.post(f"{self.control}/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        return _result(httpx.get(f"{self.control}/stats"))

    def wait_sends(self, sends: int, timeout: float) -> dict[str, Any]:
        return _result(
            httpx.get(
                f"{self.control}/wait",
                params={"sends": sends, "timeout": timeout},
                timeout=timeout + 10,
            )
        )

    # Asynchronous control, for a bot running in this process's event loop.

    async def push(self, first_chat: int, chats: int, text: str, per_chat: int = 1) -> None:
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{self.control}/push",
                json={"chats": [first_chat, chats], "text": text, "per_chat": per_chat},
            )
            answer.raise_for_status()

    async def wait_sends_async(self, sends: int, within: float) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=within + 10) as client:
            return _result(
                await client.get(
                    f"{self.control}/wait", params={"sends": sends, "timeout": within}
                )
            )

    async def stats_async(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            return _result(await client.get(f"{self.control}/stats"))

    async def reset_async(self) -> None:
        async with httpx.AsyncClient() as client:
            (await client.post(f"{self.control}/reset")).raise_for_status()


def _result(answer: httpx.Response) -> dict[str, Any]:
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()["result"]
    return result


# -- bulk rows generated inside SQLite -------------------------------------------------------
#
# A million rows through SQLAlchemy take minutes of Python; generated by a recursive CTE they
# take seconds. Datetimes are written exactly as SQLAlchemy writes them on SQLite (UTC, no zone,
# six fractional digits), so the bot reads them back as it reads its own.


def sqlite_time(moment: datetime, seconds: str = "0") -> str:
    """An SQL expression for `moment` plus `seconds` (an SQL expression, e.g. "n * 60")."""
    if moment.tzinfo is None or moment.microsecond:
        raise ValueError("use an aware datetime with whole seconds")
    base = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"strftime('%Y-%m-%d %H:%M:%S', '{base}', ({seconds}) || ' seconds') || '.000000'"


def generate_rows(connection: Connection, table: str, count: int, columns: dict[str, str]) -> None:
    """Insert `count` rows; each column's value is an SQL expression of n = 0 .. count-1."""
    if count <= 0:
        return
    connection.exec_driver_sql(
        "WITH RECURSIVE seq(n) AS "
        f"(SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < {count}) "
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns.values())} FROM seq"
    )


@contextmanager
def indexes_dropped(connection: Connection, table: str) -> Iterator[None]:
    """Drop the table's indexes for a bulk insert and build them again after (much faster than
    updating them row by row). Reads them from the schema, so new migrations are followed."""
    indexes = connection.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL",
        (table,),
    ).all()
    for name, _ in indexes:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, sql in indexes:
        connection.exec_driver_sql(sql)


def add_patients(
    connection: Connection,
    count: int,
    now: datetime,
    *,
    first_id: int = 1,
    first_name_token: str | None = None,
    treated_seconds_ago: int = 3 * 3600,
) -> None:
    """`count` consented patients (ids first_id..), each with treatment 1 whose id is the
    patient's id. `first_name_token`: one encrypted first name, shared by all."""
    name = f"'{first_name_token}'" if first_name_token else "NULL"
    generate_rows(
        connection,
        "patients",
        count,
        {
            "id": f"{first_id} + n",
            "telegram_user_id": f"{FIRST_CHAT_ID + first_id} + n",
            "chat_id": f"{FIRST_CHAT_ID + first_id} + n",
            "first_name": name,
            "consented_at": sqlite_time(now, "-86400"),
            "created_at": sqlite_time(now, "-86400"),
        },
    )
    generate_rows(
        connection,
        "treatments",
        count,
        {
            "id": f"{first_id} + n",
            "patient_id": f"{first_id} + n",
            "number": "1",
            "occurred_at": sqlite_time(now, f"-{treated_seconds_ago}"),
            "timezone": "'UTC'",
            "created_at": sqlite_time(now, f"-{treated_seconds_ago}"),
        },
    )


def add_prompts(
    connection: Connection,
    count: int,
    *,
    patients: int,
    first_patient: int = 1,
    status: str,
    due: str,
    step_key: str = "'s' || n",
    sent: bool = False,
    message_id: str = "NULL",
    created: datetime,
) -> None:
    """`count` prompts spread over `patients` patients (round robin) of add_patients(); `due`
    is an SQL expression of n (see sqlite_time); sent rows get sent_at = due_at."""
    patient = f"{first_patient} + n % {patients}"
    generate_rows(
        connection,
        "scheduled_prompts",
        count,
        {
            "patient_id": patient,
            "treatment_id": patient,
            "step_key": step_key,
            "due_at": due,
            "status": f"'{status}'",
            "attempts": "0",
            "sent_at": due if sent else "NULL",
            "telegram_message_id": message_id,
            "created_at": sqlite_time(created),
        },
    )


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start
