"""Prometheus metrics every service exposes at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "closeloop_http_requests_total", "HTTP requests.", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "closeloop_http_request_duration_seconds",
    "HTTP request latency.",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_PENDING = Gauge("closeloop_outbox_pending", "Outbox rows not yet published.", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "closeloop_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row.", ["service"]
)
OUTBOX_PUBLISHED = Counter(
    "closeloop_outbox_published_total", "Outbox rows published.", ["service"]
)
OUTBOX_ERRORS = Counter(
    "closeloop_outbox_publish_errors_total", "Relay passes that failed to publish.", ["service"]
)
CONSUMER_LAG = Gauge(
    "closeloop_consumer_lag",
    "Records behind the fetch high watermark.",
    ["group", "topic", "partition"],
)
EVENTS_HANDLED = Counter(
    "closeloop_events_handled_total", "Events handled by consumers.", ["group", "type"]
)
EVENTS_DUPLICATE = Counter(
    "closeloop_events_duplicate_total", "Events skipped as already handled.", ["group", "type"]
)
EVENTS_FAILED = Counter(
    "closeloop_events_failed_total", "Failed attempts to handle an event.", ["group", "type"]
)
EVENTS_DEAD_LETTERED = Counter(
    "closeloop_events_dead_lettered_total",
    "Events sent to the dead-letter topic.",
    ["group", "type"],
)
