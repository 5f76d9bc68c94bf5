"""The reflection prompt: a step of a treatment's schedule, due at its time, sent with its
buttons, one at a time per patient and in the schedule's order.

Each prompt is a row of scheduled_prompts. A claim is a conditional UPDATE (status pending ->
claimed, with a lease), so two dispatchers never send the same row; a crash between claim and
"sent" leaves a claim whose lease expires and the row is sent again. A prompt can therefore,
rarely, arrive twice, in two ways: Telegram accepted it just before a crash (the window runs
from Telegram's answer to the transaction that records its batch, once the batch's slowest
message is answered; a batch is at most IN_FLIGHT prompts), or Telegram accepted it but its
answer was lost to a timeout and the send was retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from jinja2 import TemplateError
from sqlalchemy import update
from sqlalchemy.orm import Session
from telegram import Bot, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, RetryAfter, TelegramError

from bot.companion import Companion
from bot.core.localtime import defer_past_quiet_hours
from bot.core.schedule import Schedule
from bot.db import queries
from bot.db.models import Patient, PromptStatus, ScheduledPrompt, Treatment
from bot.delivery.kind import IN_FLIGHT, Claimed, Delivery, DispatchReport, unreachable
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


def compose_prompts(
    companion: Companion, session: Session, batch: list[Claimed], report: DispatchReport
) -> list[Delivery]:
    """Render a batch of claimed prompts; a step gone from the schedule or a broken template
    fails its prompt.

    First each claim is renewed for a full lease and the attempt counted, unless the claim ran
    out and another dispatcher took the prompt over: then it is theirs to send, not ours. The
    chats' locks are held by now: however long another instance held one, the claim is checked
    after that wait."""
    renewed = companion.clock() + timedelta(seconds=companion.settings.claim_lease_seconds)
    ours = queries.begin_attempts(
        session, [(claimed.row_id, claimed.lease) for claimed in batch], renewed
    )
    for claimed in batch:
        if claimed.row_id not in ours:
            log.warning(
                "prompt %s: the claim ran out before it was sent; left to others", claimed.row_id
            )
    claimed_by_id = {claimed.row_id: claimed for claimed in batch}
    loaded = queries.prompts_with_patients(session, [c.row_id for c in batch if c.row_id in ours])
    notes = notes_of(session, sorted({treatment.id for _, _, treatment in loaded}))
    deliveries = []
    for prompt, patient, treatment in loaded:
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
                        note.text for note in notes[treatment.id] if note.author == "guide"
                    ],
                ),
            )
        except (LookupError, TemplateError, OSError) as exc:
            reason = f"cannot render step {prompt.step_key}: {type(exc).__name__}"
            _finish(session, prompt.id, renewed, status=PromptStatus.FAILED, last_error=reason)
            report.failed += 1
            log.error("prompt %s: %s", prompt.id, reason)
            continue
        outgoing = Outgoing(
            prompt_id=prompt.id,
            claim=renewed,
            patient_id=patient.id,
            step_key=prompt.step_key,
            chat_id=patient.chat_id,
            text=text,
            keyboard=prompt_keyboard(companion, step, prompt.id),
        )
        deliveries.append(Delivery(claimed_by_id[prompt.id], outgoing))
    return deliveries


async def send_prompt(bot: Bot, outgoing: Outgoing) -> Message:
    """The prompt, in parts if it is long; its buttons on the last."""
    *first_parts, last_part = pack_blocks([outgoing.text])
    for part in first_parts:
        await bot.send_message(outgoing.chat_id, part)
    return await bot.send_message(outgoing.chat_id, last_part, reply_markup=outgoing.keyboard)


def record_prompts(
    companion: Companion, session: Session, deliveries: list[Delivery], report: DispatchReport
) -> None:
    """What became of each prompt of a batch: sent, refused, or given back unsent."""
    now = companion.clock()
    for delivery in deliveries:
        outgoing: Outgoing = delivery.message
        if delivery.crashed:
            continue  # the claim runs out and the prompt is taken again
        if not delivery.begun:
            # Given back unsent, due as it was: the next tick, here or elsewhere. It was no
            # attempt.
            _finish(
                session,
                outgoing.prompt_id,
                outgoing.claim,
                status=PromptStatus.PENDING,
                attempts=ScheduledPrompt.attempts - 1,
            )
            continue
        if delivery.error is not None:
            _record_failure(session, outgoing, delivery.error, now, report)
            continue
        message: Message = delivery.receipt
        recorded = _finish(
            session,
            outgoing.prompt_id,
            outgoing.claim,
            status=PromptStatus.SENT,
            sent_at=now,
            telegram_message_id=message.message_id,
            last_error=None,
        )
        if not recorded:
            log.error("prompt %s was sent after its claim ran out", outgoing.prompt_id)
        report.sent.append(outgoing.prompt_id)
        report.delivered[NAME] += 1
        log.info(
            "sent prompt %s (step %s) to patient %s",
            outgoing.prompt_id,
            outgoing.step_key,
            outgoing.patient_id,
        )


def _record_failure(
    session: Session,
    outgoing: Outgoing,
    error: TelegramError,
    now: datetime,
    report: DispatchReport,
) -> None:
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

    def compose(
        self,
        companion: Companion,
        session: Session,
        batch: list[Claimed],
        report: DispatchReport,
    ) -> list[Delivery]:
        return compose_prompts(companion, session, batch, report)

    async def send(self, companion: Companion, bot: Bot, delivery: Delivery) -> Message:
        return await send_prompt(bot, delivery.message)

    def record(
        self,
        companion: Companion,
        session: Session,
        deliveries: list[Delivery],
        report: DispatchReport,
    ) -> None:
        record_prompts(companion, session, deliveries, report)


KIND = ReflectionPromptKind()
