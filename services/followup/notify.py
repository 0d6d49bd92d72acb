"""Alert delivery: each fired alert sent over its notification channel, retried with back-off.

The scheduler adds one pending delivery per alert in the transaction that fires it. A dispatcher
claims due deliveries one at a time (FOR UPDATE SKIP LOCKED on PostgreSQL, the single writer
lock on SQLite) by pushing `next_attempt_at` forward by a lease and committing, sends with no
transaction open, then records the attempt and its outcome in a new transaction. Any number of
replicas can run it: a delivery is sent by one of them at a time, and one whose dispatcher died
mid-send is picked up again when its lease runs out. Receivers dedupe the rare repeat (a send
that succeeded but was not recorded) by the delivery id they are given.

Channels: `webhook` POSTs the alert JSON signed like intake's status webhooks
(`Closeloop-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`); `email` sends a plain
text message over SMTP to the address configured for the alert's audience; `chat` POSTs a
Slack-compatible `{"text", "blocks"}` message. The payload carries ids, times and keys of
employees, never a customer's name or contact details.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import httpx
from prometheus_client import Counter, Histogram
from sqlalchemy import select

from services.followup.config import FollowupSettings
from services.followup.models import Alert, ChannelRow, Delivery, DeliveryAttempt, Loop
from services.followup.service import FollowupUnitOfWork
from shared.clock import Clock
from shared.ids import new_id
from shared.logging import correlated
from shared.webhooks import retry_delay, sign_webhook

log = logging.getLogger(__name__)

ALERT_DELIVERIES = Counter(
    "closeloop_alert_deliveries_total",
    "Alert delivery attempts by channel kind and outcome: sent, retry (failed, will be tried "
    "again), failed (given up), lease_lost (another replica took the delivery over meanwhile).",
    ["service", "channel_kind", "outcome"],
)
ALERT_DELIVERY_SECONDS = Histogram(
    "closeloop_alert_delivery_duration_seconds",
    "Time one alert delivery attempt took.",
    ["service", "channel_kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

KINDS = ("webhook", "email", "chat")
_ERROR_MAX = 1000


# --- the payload ---------------------------------------------------------------------------


def build_payload(alert: Alert, journey_name: str, levels: int | None) -> dict[str, Any]:
    """The alert as every channel reports it (the webhook body verbatim); no customer data.

    `levels` is the size of the journey's ladder, when known and consistent with the level.
    """
    of = levels if levels is not None and levels >= alert.level else None
    return {
        "alert_id": str(alert.id),
        "kind": alert.kind,
        "loop_id": str(alert.loop_id),
        "complaint_id": str(alert.complaint_id),
        "journey": alert.journey_key,
        "journey_name": journey_name,
        "owner": alert.owner_key,
        "target": alert.target,
        "promise_id": str(alert.promise_id) if alert.promise_id is not None else None,
        "level": alert.level,
        "levels": of,
        "audience": alert.audience,
        "channel": alert.channel,
        "due_at": _iso(alert.due_at),
        "fired_at": _iso(alert.fired_at),
        "late_by_seconds": alert.late_by_seconds,
        "message": describe(
            kind=alert.kind,
            target=alert.target,
            journey_name=journey_name,
            owner=alert.owner_key,
            level=alert.level,
            levels=of,
            audience=alert.audience,
            due_at=alert.due_at,
            fired_at=alert.fired_at,
        ),
    }


def describe(
    *,
    kind: str,
    target: str,
    journey_name: str,
    owner: str,
    level: int,
    levels: int | None,
    audience: str,
    due_at: datetime,
    fired_at: datetime,
) -> str:
    """One sentence a person reads in a chat line, a mail or a pager."""
    subject = _target_phrase(target)
    past = fired_at - due_at
    if past < timedelta(0):
        when = f"is due in {human_duration(-past)}"
    elif past < timedelta(seconds=1):
        when = "was just missed" if target.startswith("sla:") else "is now overdue"
    elif target.startswith("sla:"):
        when = f"was missed {human_duration(past)} ago"
    else:
        when = f"is {human_duration(past)} overdue"
    of = f"level {level} of {levels}" if levels is not None else f"level {level}"
    due = due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sentence = f"{subject} in {journey_name} (owner {owner}) {when} ({of}, for {audience})"
    prefix = "Reminder: " if kind == "reminder" else ""
    return f"{prefix}{sentence}; due {due}."


def human_duration(delta: timedelta) -> str:
    """ "45 s", "12 min", "2 h 5 min", "3 d 4 h": two units at most, rounded down."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def _target_phrase(target: str) -> str:
    if target.startswith("promise:"):
        return "Promise to the customer"
    name = target.removeprefix("sla:").replace("_", " ")
    return f'SLA target "{name}"'


def _subject(payload: dict[str, Any]) -> str:
    label = {"reminder": "Reminder", "overdue": "Overdue promise", "sla_breach": "SLA breach"}
    of = f" of {payload['levels']}" if payload["levels"] is not None else ""
    return (
        f"[closeloop] {label.get(payload['kind'], payload['kind'])}, level {payload['level']}{of}"
        f": {payload['journey_name']} (owner {payload['owner']})"
    )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- channel messages ----------------------------------------------------------------------


def chat_message(payload: dict[str, Any]) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook message: `text` as the fallback, Block Kit blocks."""
    context = (
        f"{_mrkdwn(payload['audience'])} · alert `{payload['alert_id']}` · "
        f"loop `{payload['loop_id']}` · complaint `{payload['complaint_id']}`"
    )
    return {
        "text": payload["message"],
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _subject(payload)[:150]},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _mrkdwn(payload["message"])[:3000]},
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def email_message(
    payload: dict[str, Any], sender: str, recipient: str, delivery_id: uuid.UUID, now: datetime
) -> EmailMessage:
    """A plain-text mail; its Message-ID is the delivery's, so a resent mail is the same mail."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = _subject(payload)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{delivery_id}@closeloop.alerts>"
    msg["X-Closeloop-Alert"] = payload["alert_id"]
    of = f" of {payload['levels']}" if payload["levels"] is not None else ""
    rows = [
        ("Kind", payload["kind"]),
        ("Level", f"{payload['level']}{of}"),
        ("For", payload["audience"]),
        ("Journey", f"{payload['journey_name']} ({payload['journey']})"),
        ("Owner", payload["owner"]),
        ("Target", payload["target"]),
        ("Due", payload["due_at"]),
        ("Fired", payload["fired_at"]),
        ("Loop", payload["loop_id"]),
        ("Complaint", payload["complaint_id"]),
        ("Alert", payload["alert_id"]),
    ]
    body = "\n".join(f"{name + ':':<11}{value}" for name, value in rows)
    msg.set_content(f"{payload['message']}\n\n{body}\n")
    return msg


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- the dispatcher ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What one send needs, read in the claiming transaction so none is open while sending."""

    delivery_id: uuid.UUID
    lease: datetime
    complaint_id: uuid.UUID
    channel_key: str
    kind: str | None  # None: the channel does not exist (any more)
    enabled: bool
    config: dict[str, Any]
    payload: dict[str, Any]

    @property
    def label(self) -> str:
        return self.kind if self.kind in KINDS else "unknown"


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    permanent: bool = False  # retrying cannot help: fail the delivery now


class AlertDispatcher:
    """Sends due alert deliveries; `run_once` is one pass of the worker loop."""

    def __init__(
        self,
        uow_factory: Callable[[], FollowupUnitOfWork],
        clock: Clock,
        client: httpx.Client,
        *,
        max_attempts: int = 8,
        backoff_s: float = 5.0,
        backoff_cap_s: float = 3600.0,
        timeout_s: float = 5.0,
        lease_s: float = 60.0,
        budget_s: float = 10.0,
        service_name: str = "followup",
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._uow = uow_factory
        self._clock = clock
        self._client = client
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._backoff_cap_s = backoff_cap_s
        self._timeout_s = timeout_s
        # An SMTP exchange is several round trips, each with its own timeout: the lease must
        # outlast the slowest send, or a second replica would send while the first still is.
        self._lease = timedelta(seconds=max(lease_s, timeout_s * 6))
        self._budget_s = budget_s
        self._name = service_name

    @classmethod
    def from_settings(
        cls,
        uow_factory: Callable[[], FollowupUnitOfWork],
        clock: Clock,
        client: httpx.Client,
        settings: FollowupSettings,
    ) -> AlertDispatcher:
        return cls(
            uow_factory,
            clock,
            client,
            max_attempts=settings.alert_max_attempts,
            backoff_s=settings.alert_backoff_s,
            timeout_s=settings.alert_timeout_s,
            service_name=settings.service_name,
        )

    def retry_delay(self, attempts: int) -> timedelta:
        """Exponential back-off after the `attempts`-th failure (1-based), capped."""
        return timedelta(seconds=retry_delay(attempts, self._backoff_s, self._backoff_cap_s))

    def run_once(self, limit: int = 50) -> int:
        """Send up to `limit` due deliveries; return how many were attempted.

        Stops early when nothing more is due or after `budget_s` of wall time, so a slow channel
        cannot hold up the rest of the worker loop; a channel that failed in this pass is not
        tried again in it.
        """
        started = time.monotonic()
        failing: set[str] = set()
        attempted = 0
        while attempted < limit and time.monotonic() - started <= self._budget_s:
            job = self._claim(failing)
            if job is None:
                break
            attempted += 1
            with correlated(str(job.complaint_id)):
                outcome = self._send(job)
                self._record(job, outcome)
            if not outcome.ok and not outcome.permanent:
                failing.add(job.channel_key)  # down or refusing: the rest can wait a pass
        return attempted

    # --- claim / record --------------------------------------------------------------------
    def _claim(self, skip_channels: set[str]) -> _Job | None:
        """Take the earliest due delivery: lease it and read what sending it needs."""
        now = self._clock.now()
        lease = now + self._lease
        query = (
            select(Delivery)
            .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if skip_channels:
            query = query.where(Delivery.channel_key.not_in(sorted(skip_channels)))
        with self._uow() as uow:
            delivery = uow.session.scalars(query).first()
            if delivery is None:
                return None
            delivery.next_attempt_at = lease
            alert = uow.session.get(Alert, delivery.alert_id)
            assert alert is not None  # a foreign key guarantees it
            loop = uow.session.get(Loop, alert.loop_id)
            assert loop is not None
            channel = uow.session.get(ChannelRow, delivery.channel_key)
            levels = len(uow.targets.lookup.ladder_for(alert.journey_key)) or None
            job = _Job(
                delivery_id=delivery.id,
                lease=lease,
                complaint_id=alert.complaint_id,
                channel_key=delivery.channel_key,
                kind=channel.kind if channel is not None else None,
                enabled=channel is not None and channel.enabled,
                config=dict(channel.config) if channel is not None else {},
                payload=build_payload(alert, loop.journey_name, levels),
            )
            uow.commit()
        return job

    def _record(self, job: _Job, outcome: _Outcome) -> None:
        now = self._clock.now()
        extra: dict[str, Any] = {
            "delivery_id": str(job.delivery_id),
            "alert_id": job.payload["alert_id"],
            "channel": job.channel_key,
            "channel_kind": job.label,
            "status_code": outcome.status_code,
            "error": outcome.error,
            "duration_ms": outcome.duration_ms,
        }
        with self._uow() as uow:
            # Locked before the attempt row goes in (its foreign key share-locks the delivery),
            # so two replicas recording the same delivery queue instead of deadlocking.
            delivery = uow.session.get(Delivery, job.delivery_id, with_for_update=True)
            assert delivery is not None
            uow.session.add(
                DeliveryAttempt(
                    id=new_id(),
                    delivery_id=job.delivery_id,
                    at=now,
                    ok=outcome.ok,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            if delivery.status != "pending" or delivery.next_attempt_at != job.lease:
                # Our lease ran out and another replica took over: keep the attempt on record,
                # leave the delivery's state to the current holder.
                uow.commit()
                self._count(job, "lease_lost", outcome)
                log.warning("alert delivery lease lost", extra=extra)
                return
            delivery.attempts += 1
            delivery.last_error = outcome.error
            extra["attempt"] = delivery.attempts
            if outcome.ok:
                delivery.status = "sent"
                delivery.sent_at = now
                delivery.next_attempt_at = None
                result = "sent"
            elif outcome.permanent or delivery.attempts >= self._max_attempts:
                delivery.status = "failed"
                delivery.next_attempt_at = None
                result = "failed"
            else:
                delivery.next_attempt_at = now + self.retry_delay(delivery.attempts)
                extra["next_attempt_at"] = _iso(delivery.next_attempt_at)
                result = "retry"
            uow.commit()
        self._count(job, result, outcome)
        if result == "sent":
            log.info("alert delivered", extra=extra)
        elif result == "failed":
            log.error("alert delivery failed for good", extra=extra)
        else:
            log.warning("alert delivery failed; retrying", extra=extra)

    def _count(self, job: _Job, result: str, outcome: _Outcome) -> None:
        ALERT_DELIVERIES.labels(self._name, job.label, result).inc()
        ALERT_DELIVERY_SECONDS.labels(self._name, job.label).observe(outcome.duration_ms / 1000)

    # --- senders ---------------------------------------------------------------------------
    def _send(self, job: _Job) -> _Outcome:
        if job.kind is None:
            return _Outcome(
                ok=False,
                error=f"notification channel {job.channel_key!r} does not exist",
                permanent=True,
            )
        if not job.enabled:
            return _Outcome(
                ok=False,
                error=f"notification channel {job.channel_key!r} is disabled",
                permanent=True,
            )
        senders: dict[str, Callable[[_Job], _Outcome]] = {
            "webhook": self._webhook,
            "email": self._email,
            "chat": self._chat,
        }
        sender = senders.get(job.kind)
        if sender is None:
            return _Outcome(ok=False, error=f"unknown channel kind {job.kind!r}", permanent=True)
        try:
            return sender(job)
        except (KeyError, TypeError, ValueError) as exc:
            # Configurations are validated when written; this is one edited behind the API's back.
            log.exception("alert channel misconfigured", extra={"channel": job.channel_key})
            return _Outcome(
                ok=False, error=_error(f"channel misconfigured: {exc!r}"), permanent=True
            )

    def _webhook(self, job: _Job) -> _Outcome:
        body = json.dumps(job.payload, separators=(",", ":")).encode()
        ts = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "Closeloop-Signature": sign_webhook(str(job.config["secret"]), ts, body),
            "Closeloop-Event": "alert",
            "Closeloop-Delivery": str(job.delivery_id),
            "Idempotency-Key": str(job.delivery_id),
        }
        return self._post(str(job.config["url"]), body, headers)

    def _chat(self, job: _Job) -> _Outcome:
        body = json.dumps(chat_message(job.payload), separators=(",", ":")).encode()
        return self._post(
            str(job.config["url"]),
            body,
            {"Content-Type": "application/json", "Idempotency-Key": str(job.delivery_id)},
        )

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> _Outcome:
        start = time.perf_counter()
        try:
            response = self._client.post(
                url,
                content=body,
                headers=headers,
                timeout=self._timeout_s,
                follow_redirects=False,  # a receiver must not bounce us somewhere else
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return _Outcome(
                ok=False, error=_error(f"{type(exc).__name__}: {exc}"), duration_ms=_ms(start)
            )
        code = response.status_code
        if 200 <= code < 300:
            return _Outcome(ok=True, status_code=code, duration_ms=_ms(start))
        reason = "redirects are not followed" if response.is_redirect else "non-2xx response"
        return _Outcome(
            ok=False, status_code=code, error=f"{reason}: HTTP {code}", duration_ms=_ms(start)
        )

    def _email(self, job: _Job) -> _Outcome:
        config = job.config
        audience = job.payload["audience"]
        recipient = config.get("addresses", {}).get(audience) or config.get("default_address")
        if not recipient:
            return _Outcome(ok=False, error=f"no address for audience {audience}", permanent=True)
        msg = email_message(
            job.payload, str(config["sender"]), str(recipient), job.delivery_id, self._clock.now()
        )
        start = time.perf_counter()
        try:
            with smtplib.SMTP(
                str(config["host"]), int(config["port"]), timeout=self._timeout_s
            ) as smtp:
                if config.get("starttls", False):
                    smtp.starttls(context=ssl.create_default_context())
                if config.get("username"):
                    smtp.login(str(config["username"]), str(config.get("password") or ""))
                smtp.send_message(msg, from_addr=str(config["sender"]), to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (None, b""))
            text = _text(reply)
            return _Outcome(
                ok=False,
                status_code=code,
                error=_error(f"recipient refused: SMTP {code} {text}"),
                duration_ms=_ms(start),
            )
        except smtplib.SMTPResponseException as exc:
            text = _text(exc.smtp_error)
            return _Outcome(
                ok=False,
                status_code=exc.smtp_code,
                error=_error(f"{type(exc).__name__}: SMTP {exc.smtp_code} {text}"),
                duration_ms=_ms(start),
            )
        except (smtplib.SMTPException, OSError) as exc:
            return _Outcome(
                ok=False, error=_error(f"{type(exc).__name__}: {exc}"), duration_ms=_ms(start)
            )
        return _Outcome(ok=True, duration_ms=_ms(start))


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _error(text: str) -> str:
    return text[:_ERROR_MAX]


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)
