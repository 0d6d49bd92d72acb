"""Status-change webhooks: HMAC-signed, retried with back-off, every attempt recorded.

A subscription URL must resolve to public addresses only (unless allow-listed for local use);
the check runs when subscribing and again before every send, and redirects are never followed,
so a receiver cannot bounce the request into the internal network.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from services.intake import domain
from services.intake.config import IntakeSettings
from services.intake.models import Subscription, WebhookAttempt, WebhookDelivery
from services.intake.service import IntakeUnitOfWork
from shared.clock import Clock
from shared.errors import Unprocessable
from shared.ids import new_id
from shared.logging import correlated
from shared.webhooks import retry_delay, sign_webhook

log = logging.getLogger(__name__)

Resolver = Callable[[str], list[domain.IPAddress]]


def resolve(host: str) -> list[domain.IPAddress]:
    """Every address a host name resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return []
    return list({ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos})


class DestinationRefused(Exception):
    pass


class WebhookDispatcher:
    def __init__(
        self,
        uow_factory: Callable[[], IntakeUnitOfWork],
        clock: Clock,
        settings: IntakeSettings,
        client: httpx.Client,
        resolver: Resolver = resolve,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._settings = settings
        self._client = client
        self._resolve = resolver

    def check_destination(self, url: str) -> domain.IPAddress:
        """The address to connect to; DestinationRefused unless the host is public or allowed."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DestinationRefused("only http(s) URLs with a host are allowed")
        host = parts.hostname
        addresses = self._resolve(host)
        if not domain.host_allowed(host, addresses, self._settings.webhook_allowed_hosts):
            raise DestinationRefused(
                f"{host} resolves to a private, loopback or unresolvable address"
            )
        return addresses[0]

    def screen(self, url: str) -> None:
        """Subscription-time check rendered as a 422 naming the field."""
        try:
            self.check_destination(url)
        except DestinationRefused as exc:
            raise Unprocessable(
                str(exc), errors=[{"field": "url", "message": str(exc), "type": "destination"}]
            ) from exc

    def run_once(self, limit: int = 50) -> int:
        """Send the deliveries that are due; return how many were attempted."""
        with self._uow() as uow:
            due = [
                (d.id, d.next_attempt_at) for d in uow.repo.due_deliveries(self._clock.now(), limit)
            ]
        return sum(self._attempt(delivery_id, due_at) for delivery_id, due_at in due)

    def _attempt(self, delivery_id: uuid.UUID, due_at: datetime) -> int:
        """Claim one delivery, send it outside any transaction, record the outcome."""
        # Claimed one at a time right before sending, so the lease covers just this send.
        lease = self._clock.now() + timedelta(seconds=self._settings.webhook_timeout_s * 3)
        with self._uow() as uow:
            if not uow.repo.claim_delivery(delivery_id, due_at, lease):
                return 0  # another replica has it
            delivery = uow.session.get(WebhookDelivery, delivery_id)
            assert delivery is not None
            sub = uow.session.get(Subscription, delivery.subscription_id)
            assert sub is not None
            job = _Job(
                sub.url,
                sub.secret,
                sub.active,
                delivery.event_type,
                delivery.complaint_id,
                {"id": str(delivery.id), **delivery.payload},
            )
            uow.commit()
        with correlated(str(job.complaint_id)):
            if job.active:
                status_code, error, elapsed_ms = self._send(delivery_id, job)
            else:
                status_code, error, elapsed_ms = None, "subscription deleted", 0
            self._record(delivery_id, lease, job, status_code, error, elapsed_ms)
        return 1

    def _record(
        self,
        delivery_id: uuid.UUID,
        lease: datetime,
        job: _Job,
        status_code: int | None,
        error: str | None,
        elapsed_ms: int,
    ) -> None:
        now = self._clock.now()
        with self._uow() as uow:
            uow.repo.add_attempt(
                WebhookAttempt(
                    id=new_id(),
                    delivery_id=delivery_id,
                    at=now,
                    status_code=status_code,
                    error=error,
                    duration_ms=elapsed_ms,
                )
            )
            delivery = uow.session.get(WebhookDelivery, delivery_id)
            assert delivery is not None
            if delivery.status != "pending" or delivery.next_attempt_at != lease:
                # Our lease ran out and another replica took over: keep the attempt on record,
                # leave the delivery's state to the current holder.
                uow.commit()
                return
            delivery.attempts += 1
            delivery.last_status_code = status_code
            delivery.last_error = error
            if error is None:
                delivery.status = "delivered"
                delivery.delivered_at = now
            elif not job.active or delivery.attempts >= self._settings.webhook_max_attempts:
                delivery.status = "failed"
                log.error("webhook delivery failed for good", extra={"error": error})
            else:
                delay = retry_delay(delivery.attempts, self._settings.webhook_backoff_s)
                delivery.next_attempt_at = now + timedelta(seconds=delay)
                log.warning("webhook delivery failed; retrying", extra={"error": error})
            uow.commit()

    def _send(self, delivery_id: uuid.UUID, job: _Job) -> tuple[int | None, str | None, int]:
        start = time.perf_counter()
        try:
            # DNS may have changed since subscribing: check again, then connect to exactly the
            # address that passed, so a rebinding name cannot swap in an internal one.
            address = self.check_destination(job.url)
            body = json.dumps(job.payload, separators=(",", ":")).encode()
            ts = int(self._clock.now().timestamp())
            parts = urlsplit(job.url)
            pinned = f"[{address}]" if address.version == 6 else str(address)
            if parts.port:
                pinned += f":{parts.port}"
            extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
            response = self._client.post(
                urlunsplit(parts._replace(netloc=pinned)),
                content=body,
                headers={
                    "Host": parts.netloc.rsplit("@", 1)[-1],
                    "Content-Type": "application/json",
                    "Closeloop-Signature": sign_webhook(job.secret, ts, body),
                    "Closeloop-Event": job.event_type,
                    "Closeloop-Delivery": str(delivery_id),
                },
                timeout=self._settings.webhook_timeout_s,
                follow_redirects=False,
                extensions=extensions,
            )
        except DestinationRefused as exc:
            return None, f"destination refused: {exc}", _ms(start)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:1000], _ms(start)
        if 200 <= response.status_code < 300:
            return response.status_code, None, _ms(start)
        reason = "redirects are not followed" if response.is_redirect else "non-2xx response"
        return response.status_code, f"{reason}: HTTP {response.status_code}", _ms(start)


@dataclass(frozen=True)
class _Job:
    """What a send needs, read in a short transaction so none is open during the request."""

    url: str
    secret: str
    active: bool
    event_type: str
    complaint_id: uuid.UUID
    payload: dict[str, Any]


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)
