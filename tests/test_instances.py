"""Three real `python -m bot webhook` processes share one PostgreSQL database and the fake Bot
API, which posts updates to them in turn as a reverse proxy would. Thousands of prompts fall
due and patients reply while one process is killed: everything is delivered, nothing twice
(but for the sends the kill cut between Telegram's answer and the database), in order per
patient, and within Telegram's limits for all three together."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.db.crypto import Cipher, use_cipher
from bot.db.migrate import upgrade_to_head
from bot.db.models import Entry, Patient, PromptStatus, ScheduledPrompt, Treatment
from tests.fake_telegram import ApiRequest, FakeTelegram, TgUser

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
        reason="several instances need PostgreSQL (set TEST_DATABASE_URL)",
    ),
]

ROOT = Path(__file__).resolve().parent.parent
SHORT_PROMPTS = ROOT / "tests" / "data" / "short_prompts"
SECRET = "instances-test-secret-0123456789"
INSTANCES = 3
PATIENTS = 250
TREATMENTS = 2  # each with the short schedule's four steps: 2,000 prompts
REPLIES = 4  # per patient: 1,000 updates
RATE = 100  # messages a second, overall, for the bots and the fake alike
TIMEOUT = 150.0
# Longer than a send can wait for a dead instance's lanes (twice the Telegram timeout, and a
# chat period), so a claim never runs out while its send waits its turn.
CLAIM_LEASE = 20.0
# A message already on its way when its instance was killed may reach Telegram just after.
IN_TRANSIT = 0.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Instance:
    def __init__(self, number: int, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.env = env | {"WEBHOOK_PORT": str(self.port)}
        self.log = workdir / f"instance-{number}.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "webhook",
                env=self.env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )

    async def healthy(self, client: aiohttp.ClientSession) -> bool:
        try:
            async with client.get(f"{self.url}/healthz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    def stop(self, signum: int) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signum)


@pytest.fixture
async def instances(
    settings: Settings, fake: FakeTelegram, tmp_path: Path
) -> AsyncIterator[list[Instance]]:
    assert settings.data_keys is not None
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "DATABASE_URL": settings.database_url,
        "DATA_KEYS": settings.data_keys.get_secret_value(),
        "PROMPTS_DIR": str(prompts_folder(tmp_path)),
        "DISPATCH_INTERVAL_SECONDS": "1",
        "CLAIM_LEASE_SECONDS": str(CLAIM_LEASE),
        # A dead instance's shared send lanes come free after twice this.
        "TELEGRAM_TIMEOUT_SECONDS": "5",
        "RATE_LIMIT_OVERALL": str(RATE),
        "WEBHOOK_URL": "https://companion.example.org/telegram",
        "WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": "DEBUG",
    }
    running = [Instance(n, env, tmp_path) for n in range(INSTANCES)]
    try:
        yield running
    finally:
        for instance in running:
            instance.stop(signal.SIGKILL)
            if instance.process is not None:
                await instance.process.wait()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(settings.database_url)
    try:
        yield engine
    finally:
        engine.dispose()  # also when the test fails: an open connection warns in a later test


def prompts_folder(tmp_path: Path) -> Path:
    """The short schedule, with texts that say which treatment and step each prompt is."""
    folder = tmp_path / "prompts"
    shutil.copytree(SHORT_PROMPTS, folder)
    for name in ("checkin", "feeling", "reflection", "rest"):
        (folder / f"{name}.html").write_text(
            f"Prompt {name} of treatment {{{{ treatment_number }}}}\n"
        )
    return folder


def seed(session: Session, now: datetime) -> list[TgUser]:
    steps = ("checkin", "feeling", "reflection", "rest")
    users = []
    for n in range(PATIENTS):
        user = TgUser(id=70_000 + n, first_name=f"P{n}")
        patient = Patient(
            telegram_user_id=user.id,
            chat_id=user.id,
            first_name=user.first_name,
            consented_at=now - timedelta(days=1),
            created_at=now - timedelta(days=1),
        )
        session.add(patient)
        session.flush()
        for number in range(1, TREATMENTS + 1):
            treatment = Treatment(
                patient_id=patient.id,
                number=number,
                occurred_at=now - timedelta(hours=TREATMENTS + 1 - number),
                timezone="UTC",
                created_at=now,
            )
            session.add(treatment)
            session.flush()
            for k, step in enumerate(steps):
                session.add(
                    ScheduledPrompt(
                        patient_id=patient.id,
                        treatment_id=treatment.id,
                        step_key=step,
                        due_at=now - timedelta(minutes=10 * (TREATMENTS - number + 1) - k),
                        status=PromptStatus.PENDING,
                        attempts=0,
                        created_at=now,
                    )
                )
        users.append(user)
    return users


def story_of(
    engine: Engine,
    instances: list[Instance],
    fake: FakeTelegram,
    chats: dict[int, list[str]],
    killed_at: float,
) -> str:
    """What the instances logged about these chats' prompts, and what the fake received."""
    lines = []
    with Session(engine) as session:
        for chat_id in chats:
            rows = session.execute(
                select(ScheduledPrompt.id, ScheduledPrompt.step_key, Treatment.number)
                .join(Patient, Patient.id == ScheduledPrompt.patient_id)
                .join(Treatment, Treatment.id == ScheduledPrompt.treatment_id)
                .where(Patient.chat_id == chat_id)
            ).all()
            names = {str(prompt_id): f"{step}/{number}" for prompt_id, step, number in rows}
            mention = re.compile(r"\b(" + "|".join(names) + r")\b")
            lines.append(f"chat {chat_id}: prompts {names}")
            for n, instance in enumerate(instances):
                for line in instance.log.read_text(errors="replace").splitlines():
                    # The message, without its timestamps (whose digits could look like ids).
                    ids = mention.findall(line.split(": ", 1)[-1].split(" until ")[0])
                    if ids:
                        lines.append(f"  [{n}] {line[:80]} ... {[names[i] for i in ids]}")
            for r in fake.sent(chat_id):
                lines.append(
                    f"  fake +{r.received_at - killed_at:.2f}: {r.text!r} "
                    f"{'delivered' if r.result is not None else 'refused'}"
                )
    return "\n".join(lines)


def prompts_in(requests: list[ApiRequest]) -> set[tuple[int | None, str | None]]:
    """Each prompt delivered: its chat and text (which names its treatment and step)."""
    return {
        (r.chat_id, r.text)
        for r in requests
        if (r.text or "").startswith("Prompt ") and r.result is not None
    }


def acknowledgement(request: ApiRequest) -> bool:
    return "Saved" in (request.text or "") and request.result is not None


async def test_three_instances_share_the_work_through_a_kill(
    settings: Settings, fake: FakeTelegram, instances: list[Instance], engine: Engine
):
    fake.enforce_rate_limits(overall=(RATE, 1.0), per_chat=(3, 3.0))
    assert settings.data_keys is not None
    use_cipher(Cipher([settings.data_keys.get_secret_value().encode()]))
    upgrade_to_head(engine)
    with Session(engine) as session, session.begin():
        users = seed(session, datetime.now(UTC))
    fake.webhook_targets = [f"{instance.url}/telegram" for instance in instances]

    async with aiohttp.ClientSession() as client:
        for instance in instances:
            await instance.start()
        deadline = time.monotonic() + 60
        while not all([await i.healthy(client) for i in instances]):
            assert time.monotonic() < deadline, "the instances did not come up"
            await asyncio.sleep(0.2)

    # Replies arrive while the prompts go out: half before the kill, half after it, when the
    # proxy still sends every third update to the dead instance and must try the next one.
    async def reply_round(k: int) -> None:
        for user in users:
            fake.text_update(user, f"reply {k} from {user.id}")
        await asyncio.sleep(1.0)

    for k in range(REPLIES // 2):
        await reply_round(k)
    prompts_total = PATIENTS * TREATMENTS * 4
    assert await fake.wait_until(lambda: len(prompts_in(fake.sent())) >= prompts_total // 3, 60)
    killed_at = time.monotonic()
    instances[1].stop(signal.SIGKILL)
    for k in range(REPLIES // 2, REPLIES):
        await reply_round(k)

    def done() -> bool:
        sent = fake.sent()
        acknowledged = sum(1 for r in sent if acknowledgement(r))
        return len(prompts_in(sent)) >= prompts_total and acknowledged >= PATIENTS * REPLIES

    finished = await fake.wait_until(done, TIMEOUT)
    elapsed = time.monotonic() - killed_at
    for instance in (instances[0], instances[2]):
        instance.stop(signal.SIGTERM)
        assert instance.process is not None
        assert await asyncio.wait_for(instance.process.wait(), 30) == 0
    logs = "".join(i.log.read_text(errors="replace") for i in instances)
    delivered = [r for r in fake.sent() if r.result is not None]
    prompts_delivered = prompts_in(delivered)
    acks = sum(1 for r in delivered if acknowledgement(r))
    assert finished, (
        f"{len(prompts_delivered)} of {prompts_total} prompts and {acks} acknowledgements "
        f"delivered; the logs' end:\n{logs[-3000:]}"
    )

    # Everything delivered, each once, but for sends the kill cut short.
    copies = Counter(
        (r.chat_id, r.text) for r in delivered if (r.text or "").startswith("Prompt ")
    )
    assert len(copies) == prompts_total
    # A repeat is the killed instance's: Telegram accepted the first copy before the kill, and
    # the second went only once that instance's claim (renewed just before its send, which
    # then waited its turn for at most a few seconds) had run out.
    copy_times: dict[tuple[int | None, str | None], list[float]] = defaultdict(list)
    for r in delivered:
        copy_times[(r.chat_id, r.text)].append(r.received_at)
    twice = [key for key, count in copies.items() if count > 1]
    unexplained = [
        (key, [round(t - killed_at, 2) for t in copy_times[key]])
        for key in twice
        if copy_times[key][0] > killed_at + IN_TRANSIT
        or copy_times[key][1] - copy_times[key][0] < CLAIM_LEASE / 2
    ]
    assert unexplained == []
    assert all(count <= 2 for count in copies.values())

    # Per patient, in order: the prompts as scheduled, the replies as written.
    expected = [
        f"Prompt {step} of treatment {n}"
        for n in range(1, TREATMENTS + 1)
        for step in ("checkin", "feeling", "reflection", "rest")
    ]
    by_chat: dict[int | None, list[str]] = defaultdict(list)
    for r in delivered:
        text = (r.text or "").strip()
        if text.startswith("Prompt ") and text not in by_chat[r.chat_id]:
            by_chat[r.chat_id].append(text)
    out_of_order = {user.id: by_chat[user.id] for user in users if by_chat[user.id] != expected}
    assert out_of_order == {}, story_of(engine, instances, fake, out_of_order, killed_at)
    with Session(engine) as session:
        entries = session.execute(
            select(Patient.chat_id, Entry.text).join(Patient).order_by(Entry.id)
        ).all()
    written: dict[int, list[str | None]] = defaultdict(list)
    for chat_id, entry_text in entries:
        written[chat_id].append(entry_text)
    misfiled = {
        user.id: written[user.id]
        for user in users
        if written[user.id] != [f"reply {k} from {user.id}" for k in range(REPLIES)]
    }
    assert misfiled == {}
    acknowledgements = Counter(r.chat_id for r in delivered if acknowledgement(r))
    unacknowledged = {
        user.id: acknowledgements[user.id]
        for user in users
        if acknowledgements[user.id] not in (REPLIES, REPLIES + 1)
    }
    assert unacknowledged == {}

    print(
        f"\n{INSTANCES} instances, {prompts_total} prompts and {PATIENTS * REPLIES} replies; "
        f"one killed after {prompts_total // 3} prompts; finished {elapsed:.1f} s after the "
        f"kill; prompts sent twice: {len(twice)}; acknowledgements twice: "
        f"{sum(1 for c in acknowledgements.values() if c > REPLIES)}; "
        f"429s: {len(fake.rate_limited)}; webhook deliveries refused: "
        f"{len(fake.webhook_refused)}"
    )
    # The shared lanes keep all three within the limits, however late each message arrives.
    assert [(r.method, r.chat_id) for r in fake.rate_limited] == []
    assert fake.webhook_refused  # the dead instance was tried, and the next one took over
