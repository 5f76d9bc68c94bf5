"""The reflection prompt: a step of a treatment's schedule, due at its time, sent with its
buttons, one at a time per patient and in the schedule's order.

Each prompt is a row of scheduled_prompts. A claim is a conditional UPDATE (status pending ->
claimed, with a lease), so two dispatchers never send the same row; a crash between claim and
"sent" leaves a claim whose lease expires and the row is sent again. A prompt can therefore,
rarely, arrive twice, in two ways: Telegram accepted it just before a crash (the window is the
few milliseconds between Telegram's answer and the UPDATE that records it), or Telegram
accepted it but its answer was lost to a timeout and the send was retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from jinja2 import TemplateError
from sqlalchemy import update
from sqlalchemy.orm import Session
from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, RetryAfter, TelegramError

from bot.companion import Companion
from bot.core.localtime import defer_past_quiet_hours
from bot.core.schedule import Schedule
from bot.db import queries
from bot.db.models import Patient, PromptStatus, ScheduledPrompt, Treatment
from bot.delivery.kind import IN_FLIGHT, Claimed, DispatchReport, unreachable
from bot.domain.guides import notes_of
from bot.domain.patients import mark_unreachable, quiet_hours_of, zone_of
from bot.render.prompt_folder import prompt_context
from bot.render.telegram_html import pack_blocks
from bot.telegram.keyboards import prompt_keyboard

log = logging.getLogger(__name__)

BATCH_SIZE = 200  # due prompts looked at a time
# Prompts claimed a time: no more than go out well within a lease. A claim that runs out
# while its prompt waits its turn passes to another instance, and this one's send, if it had
# begun, may then reach the patient late, after a later step.
CLAIMED_AT_ONCE = 3 * IN_FLIGHT
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
NAME = "reflection prompt"


def claim_due(
    session: Session,
    now: datetime,
    schedule: Schedule,
    default_timezone: str,
    report: DispatchReport,
    lease: timedelta,
) -> list[int]:
    """Claim the prompts to send now: at most one per patient, outside quiet hours, and at least
    `min_gap` after the patient's previous prompt. The others get a later due time."""
    released = queries.release_expired_claims(session, now)
    if released:
        log.warning("claims on prompts %s ran out; they are due again", released)
    candidates = queries.due_prompts(session, now, BATCH_SIZE)
    last_sent = queries.last_sent_times(session, {patient.id for _, patient in candidates})
    chosen: list[int] = []
    settled: set[int] = set()  # patients whose next prompt is chosen or deferred
    for prompt, patient in candidates:
        if patient.id in settled:
            continue  # one at a time: the next one waits for a later tick
        if (
            patient.paused_at is not None
            or patient.unreachable_at is not None
            or patient.consented_at is None
        ):
            prompt.status = PromptStatus.HELD
            continue
        zone = zone_of(patient, default_timezone)
        not_before = defer_past_quiet_hours(now, zone, quiet_hours_of(patient))
        previous = last_sent.get(patient.id)
        if previous is not None:
            not_before = max(not_before, previous + schedule.min_gap)
        step = schedule.step(prompt.step_key)
        if step is not None and step.before_session:
            session_at = session.get_one(Treatment, prompt.treatment_id).occurred_at
            if not_before >= session_at:
                # An invitation to set an intention is no use once the session has begun.
                prompt.status = PromptStatus.SKIPPED
                continue
        if not_before > now:
            # Their later due prompts too, even those past this batch, or they would go first.
            queries.hold_back_prompts(session, patient.id, not_before)
            settled.add(patient.id)
            report.deferred += 1
            continue
        chosen.append(prompt.id)
        settled.add(patient.id)
    claimed = queries.claim_prompts(session, chosen[:CLAIMED_AT_ONCE], now + lease)
    log.debug("claimed prompts %s until %s", claimed, now + lease)
    return claimed


def _finish(session: Session, prompt_id: int, claim: datetime, **values: object) -> bool:
    """End our claim (`claim` is its lease, which names it) with `values`; False if the claim
    had run out and passed to another dispatcher."""
    result = session.execute(
        update(ScheduledPrompt)
        .where(
            ScheduledPrompt.id == prompt_id,
            ScheduledPrompt.status == PromptStatus.CLAIMED,
            ScheduledPrompt.claimed_until == claim,
        )
        .values(claimed_until=None, **values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _retry_or_fail(
    session: Session,
    prompt: ScheduledPrompt,
    claim: datetime,
    now: datetime,
    reason: str,
    report: DispatchReport,
) -> None:
    if prompt.attempts >= MAX_ATTEMPTS:
        _finish(session, prompt.id, claim, status=PromptStatus.FAILED, last_error=reason)
        report.failed += 1
        log.error("prompt %s failed after %s attempts: %s", prompt.id, prompt.attempts, reason)
        return
    delay = RETRY_BASE * 2 ** (prompt.attempts - 1)
    _finish(
        session,
        prompt.id,
        claim,
        status=PromptStatus.PENDING,
        due_at=now + delay,
        last_error=reason,
    )
    queries.hold_back_prompts(session, prompt.patient_id, now + delay)
    report.retrying += 1
    log.warning("prompt %s will be retried in %s: %s", prompt.id, delay, reason)


@dataclass(frozen=True)
class Outgoing:
    prompt_id: int
    claim: datetime  # the lease that names our claim
    patient_id: int
    step_key: str
    chat_id: int
    text: str
    keyboard: InlineKeyboardMarkup | None


def prepare(
    companion: Companion, prompt_id: int, claim: datetime, report: DispatchReport
) -> Outgoing | None:
    """Render a claimed prompt; a step gone from the schedule or a broken template fails it.

    First the claim is renewed for a full lease and the attempt counted, unless the claim ran
    out and another dispatcher took the prompt over: then it is theirs to send, not ours."""
    renewed = companion.clock() + timedelta(seconds=companion.settings.claim_lease_seconds)
    with companion.sessions.begin() as session:
        if not queries.begin_attempt(session, prompt_id, claim, renewed):
            log.warning(
                "prompt %s: the claim ran out before it was sent; left to others", prompt_id
            )
            return None
        log.debug("prompt %s: claim renewed until %s", prompt_id, renewed)
        claim = renewed
        prompt, patient, treatment = queries.prompt_with_patient(session, prompt_id)
        step = companion.schedule.step(prompt.step_key)
        try:
            if step is None:
                raise LookupError("step not in schedule")
            text = companion.prompts.render(
                step.template,
                **prompt_context(
                    first_name=patient.first_name or "",
                    treatment_number=treatment.number,
                    treatment_at=treatment.occurred_at,
                    intention=treatment.intention or "",
                    step=step,
                    now=companion.clock(),
                    zone=zone_of(patient, companion.settings.default_timezone),
                    guide_notes=[
                        note.text
                        for note in notes_of(session, [treatment.id])[treatment.id]
                        if note.author == "guide"
                    ],
                ),
            )
        except (LookupError, TemplateError, OSError) as exc:
            reason = f"cannot render step {prompt.step_key}: {type(exc).__name__}"
            _finish(session, prompt.id, claim, status=PromptStatus.FAILED, last_error=reason)
            report.failed += 1
            log.error("prompt %s: %s", prompt.id, reason)
            return None
        return Outgoing(
            prompt_id=prompt.id,
            claim=claim,
            patient_id=patient.id,
            step_key=prompt.step_key,
            chat_id=patient.chat_id,
            text=text,
            keyboard=prompt_keyboard(companion, step, prompt.id),
        )


async def send_prompt(
    companion: Companion,
    bot: Bot,
    prompt_id: int,
    chat_id: int,
    claim: datetime,
    report: DispatchReport,
) -> None:
    """Send one claimed prompt and record what happened.

    The chat's lock is held from before the claim is renewed until the prompt is recorded: a
    reply to it is handled only once it is known as sent, and however long another instance
    held the chat, the claim is checked after that wait.
    """
    async with companion.chat_lock(chat_id):
        outgoing = prepare(companion, prompt_id, claim, report)
        if outgoing is None:
            return
        # A clinic's template may outgrow Telegram's limit: split it, buttons on the last part.
        *first_parts, last_part = pack_blocks([outgoing.text])
        try:
            for part in first_parts:
                await bot.send_message(outgoing.chat_id, part)
            message = await bot.send_message(
                outgoing.chat_id, last_part, reply_markup=outgoing.keyboard
            )
        except TelegramError as exc:
            _record_failure(companion, outgoing, exc, report)
            return
        with companion.sessions.begin() as session:
            recorded = _finish(
                session,
                prompt_id,
                outgoing.claim,
                status=PromptStatus.SENT,
                sent_at=companion.clock(),
                telegram_message_id=message.message_id,
                last_error=None,
            )
    if not recorded:
        # It took longer than a lease to send: another dispatcher may send it too.
        log.error("prompt %s was sent after its claim ran out", prompt_id)
    report.sent.append(prompt_id)
    report.delivered[NAME] += 1
    log.info(
        "sent prompt %s (step %s) to patient %s", prompt_id, outgoing.step_key, outgoing.patient_id
    )


def _record_failure(
    companion: Companion, outgoing: Outgoing, error: TelegramError, report: DispatchReport
) -> None:
    now = companion.clock()
    with companion.sessions.begin() as session:
        if isinstance(error, RetryAfter):
            wait = error.retry_after
            delay = wait if isinstance(wait, timedelta) else timedelta(seconds=wait)
            _finish(
                session,
                outgoing.prompt_id,
                outgoing.claim,
                status=PromptStatus.PENDING,
                due_at=now + delay,
            )
            queries.hold_back_prompts(session, outgoing.patient_id, now + delay)
            report.retrying += 1
            log.warning("prompt %s: Telegram asks to wait %s", outgoing.prompt_id, delay)
        elif unreachable(error):
            # Blocked, or the account is gone: keep everything and stop sending (their rows are
            # held, so not scanned again) until /start brings them back.
            _finish(session, outgoing.prompt_id, outgoing.claim, status=PromptStatus.PENDING)
            patient = session.get_one(Patient, outgoing.patient_id)
            mark_unreachable(session, patient, now)
            log.warning("patient %s cannot be reached; their prompts are held", patient.id)
        elif isinstance(error, BadRequest):
            reason = f"rejected by Telegram: {error.message[:150]}"
            _finish(
                session,
                outgoing.prompt_id,
                outgoing.claim,
                status=PromptStatus.FAILED,
                last_error=reason,
            )
            report.failed += 1
            log.error("prompt %s was rejected by Telegram", outgoing.prompt_id)
        else:
            prompt = session.get_one(ScheduledPrompt, outgoing.prompt_id)
            _retry_or_fail(session, prompt, outgoing.claim, now, type(error).__name__, report)


def _release(companion: Companion, prompt_id: int, claim: datetime) -> None:
    """Give a claimed prompt back unsent, due as it was: the next tick, here or elsewhere."""
    with companion.sessions.begin() as session:
        _finish(session, prompt_id, claim, status=PromptStatus.PENDING)


class ReflectionPromptKind:
    name = NAME
    order = 0

    def claim(
        self, companion: Companion, session: Session, now: datetime, report: DispatchReport
    ) -> list[Claimed]:
        lease = timedelta(seconds=companion.settings.claim_lease_seconds)
        default_timezone = companion.settings.default_timezone
        claimed = claim_due(session, now, companion.schedule, default_timezone, report, lease)
        chats = queries.chats_of_prompts(session, claimed)
        return [Claimed(prompt_id, chats[prompt_id], now + lease) for prompt_id in claimed]

    async def deliver(
        self, companion: Companion, bot: Bot, claimed: Claimed, report: DispatchReport
    ) -> None:
        await send_prompt(companion, bot, claimed.row_id, claimed.chat_id, claimed.lease, report)

    def release(self, companion: Companion, claimed: Claimed) -> None:
        _release(companion, claimed.row_id, claimed.lease)


KIND = ReflectionPromptKind()
