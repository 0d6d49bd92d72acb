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
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import httpx

from services.intake import domain
from services.intake.config import IntakeSettings
from services.intake.models import Subscription, WebhookAttempt, WebhookDelivery
from services.intake.service import IntakeUnitOfWork
from shared.clock import Clock
from shared.errors import Unprocessable
from shared.ids import new_id
from shared.logging import correlated

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

    def check_destination(self, url: str) -> None:
        """Raise DestinationRefused unless the URL's host is public or allow-listed."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DestinationRefused("only http(s) URLs with a host are allowed")
        host = parts.hostname
        if not domain.host_allowed(host, self._resolve(host), self._settings.webhook_allowed_hosts):
            raise DestinationRefused(
                f"{host} resolves to a private, loopback or unresolvable address"
            )

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
        now = self._clock.now()
        lease = now + timedelta(seconds=self._settings.webhook_timeout_s * 3)
        with self._uow() as uow:
            due = uow.repo.due_deliveries(now, limit)
            claimed = [d.id for d in due if uow.repo.claim_delivery(d.id, d.next_attempt_at, lease)]
            uow.commit()
        for delivery_id in claimed:
            self._attempt(delivery_id)
        return len(claimed)

    def _attempt(self, delivery_id: object) -> None:
        with self._uow() as uow:
            delivery = uow.session.get(WebhookDelivery, delivery_id)
            assert delivery is not None
            sub = uow.session.get(Subscription, delivery.subscription_id)
            assert sub is not None
            with correlated(str(delivery.complaint_id)):
                status_code, error, elapsed_ms = self._send(sub, delivery)
                now = self._clock.now()
                delivery.attempts += 1
                delivery.last_status_code = status_code
                delivery.last_error = error
                uow.repo.add_attempt(
                    WebhookAttempt(
                        id=new_id(),
                        delivery_id=delivery.id,
                        at=now,
                        status_code=status_code,
                        error=error,
                        duration_ms=elapsed_ms,
                    )
                )
                if error is None:
                    delivery.status = "delivered"
                    delivery.delivered_at = now
                elif not sub.active or delivery.attempts >= self._settings.webhook_max_attempts:
                    delivery.status = "failed"
                    log.error("webhook delivery failed for good", extra={"error": error})
                else:
                    delay = domain.retry_delay(delivery.attempts, self._settings.webhook_backoff_s)
                    delivery.next_attempt_at = now + timedelta(seconds=delay)
                    log.warning("webhook delivery failed; retrying", extra={"error": error})
            uow.commit()

    def _send(
        self, sub: Subscription, delivery: WebhookDelivery
    ) -> tuple[int | None, str | None, int]:
        start = time.perf_counter()
        try:
            self.check_destination(sub.url)  # DNS may have changed since subscribing
            body = json.dumps(
                {"id": str(delivery.id), **delivery.payload}, separators=(",", ":")
            ).encode()
            ts = int(self._clock.now().timestamp())
            response = self._client.post(
                sub.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Closeloop-Signature": domain.sign_webhook(sub.secret, ts, body),
                    "Closeloop-Event": delivery.event_type,
                    "Closeloop-Delivery": str(delivery.id),
                },
                timeout=self._settings.webhook_timeout_s,
                follow_redirects=False,
            )
        except DestinationRefused as exc:
            return None, f"destination refused: {exc}", _ms(start)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:1000], _ms(start)
        if 200 <= response.status_code < 300:
            return response.status_code, None, _ms(start)
        reason = "redirects are not followed" if response.is_redirect else "non-2xx response"
        return response.status_code, f"{reason}: HTTP {response.status_code}", _ms(start)


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)
