"""Replay real CFPB consumer complaints into the intake API (`closeloop replay-cfpb`).

The rows come from the CFPB Consumer Complaint Database slice in
`shared/data/cfpb_complaints.csv` (see that directory's README). Each row is mapped to the body
of `POST /v1/complaints` and posted with `Idempotency-Key: cfpb-{Complaint ID}`, so re-running
the command does not create duplicates.
"""

from __future__ import annotations

import csv
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

DEFAULT_URL = "http://127.0.0.1:8001"
DATA_RELATIVE = Path("shared/data/cfpb_complaints.csv")

SUMMARY_MAX = 200
DESCRIPTION_MAX = 20_000
METADATA_VALUE_MAX = 200
BATCH_MAX = 500
MAX_429_RETRIES = 5
MAX_CONNECT_RETRIES = 3
RETRY_AFTER_CAP_S = 60.0

CHANNELS: dict[str, str] = {
    "web": "web",
    "web referral": "web",
    "phone": "phone",
    "postal mail": "letter",
    "fax": "letter",
    "email": "email",
    "referral": "other",
}
ALLOWED_CHANNELS = frozenset(
    {"phone", "email", "chat", "social", "web", "survey", "store", "letter", "other"}
)
HIGH_SEVERITY_TAGS = ("servicemember", "older american")
CRITICAL_ISSUE_WORDS = ("fraud", "identity theft")


def default_csv_path() -> Path:
    """`../shared/data/cfpb_complaints.csv` from the current directory, else from the repo root."""
    here = Path.cwd().parent / DATA_RELATIVE
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[1].parent / DATA_RELATIVE


# --------------------------------------------------------------------------------------- mapping


def _get(row: dict[str, str], key: str) -> str:
    value = row.get(key)
    return value.strip() if value else ""


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def customer_ref(row: dict[str, str]) -> str:
    """A stable pseudonymous customer ref: same ZIP code + company means the same customer.

    The CFPB data has no customer id. A fully masked ZIP (`XXXXX`) or an empty one says nothing
    about the consumer, so such rows fall back to the Complaint ID (a one-off customer).
    """
    zip_code = _get(row, "ZIP code")
    if zip_code and zip_code.upper() != "XXXXX":
        seed = f"cfpb-{zip_code}-{_get(row, 'Company')}"
    else:
        seed = f"cfpb-id-{_get(row, 'Complaint ID')}"
    return "cfpb-" + hashlib.sha1(seed.encode("utf-8")).hexdigest()[:16]


def _severity(issue: str, tags: str) -> str:
    lowered = issue.lower()
    if any(word in lowered for word in CRITICAL_ISSUE_WORDS):
        return "critical"
    tags_lowered = tags.lower()
    if any(tag in tags_lowered for tag in HIGH_SEVERITY_TAGS):
        return "high"
    return "medium"


def _occurred_at(received: str) -> str | None:
    try:
        day = date.fromisoformat(received)
    except ValueError:
        return None
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def map_row(row: dict[str, str]) -> dict[str, Any]:
    """Map one CFPB CSV row (original headers) to a `POST /v1/complaints` body.

    Empty values are omitted rather than sent as empty strings or nulls.
    """
    complaint_id = _get(row, "Complaint ID")
    if not complaint_id:
        raise ValueError("row has no Complaint ID")
    issue = _get(row, "Issue")
    sub_issue = _get(row, "Sub-issue")
    summary = f"{issue}: {sub_issue}" if issue and sub_issue else issue or sub_issue
    summary = _truncate(summary or _get(row, "Product") or "CFPB complaint", SUMMARY_MAX)

    body: dict[str, Any] = {
        "channel": CHANNELS.get(_get(row, "Submitted via").lower(), "other"),
        "customer": {"ref": customer_ref(row), "tier": "standard"},
        "external_ref": f"cfpb-{complaint_id}",
        "summary": summary,
    }
    narrative = _get(row, "Consumer complaint narrative")
    if narrative:
        body["description"] = _truncate(narrative, DESCRIPTION_MAX)
    for key, column in (
        ("product", "Product"),
        ("category", "Issue"),
        ("touchpoint", "Sub-product"),
    ):
        value = _get(row, column)
        if value:
            body[key] = _truncate(value, SUMMARY_MAX)
    body["severity"] = _severity(issue, _get(row, "Tags"))
    body["language"] = "en"
    occurred_at = _occurred_at(_get(row, "Date received"))
    if occurred_at:
        body["occurred_at"] = occurred_at

    metadata: dict[str, str] = {"source": "cfpb"}
    for key, column in (
        ("company", "Company"),
        ("state", "State"),
        ("complaint_id", "Complaint ID"),
        ("company_response", "Company response to consumer"),
        ("submitted_via", "Submitted via"),
        ("tags", "Tags"),
    ):
        value = _get(row, column)
        if value:
            metadata[key] = _truncate(value, METADATA_VALUE_MAX)
    body["metadata"] = metadata
    return body


def read_rows(path: Path, limit: int | None) -> Iterator[dict[str, str]]:
    """Yield up to `limit` rows (all when None) of a CFPB CSV with a real CSV parser."""
    if limit is not None and limit <= 0:
        return
    with path.open(newline="", encoding="utf-8") as handle:
        for count, row in enumerate(csv.DictReader(handle), start=1):
            yield row
            if limit is not None and count >= limit:
                return


# --------------------------------------------------------------------------------------- summary


@dataclass
class ReplaySummary:
    """What happened to the replayed complaints."""

    accepted: int = 0
    replayed: int = 0
    rejected: int = 0
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        """Accepted complaints per second."""
        return self.accepted / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def total(self) -> int:
        return self.accepted + self.replayed + self.rejected

    def render(self) -> str:
        lines = [
            f"CFPB replay: {self.total} complaints in {self.elapsed_s:.1f}s",
            f"  accepted: {self.accepted} ({self.rate:.1f}/s)",
            f"  replayed: {self.replayed} (already posted, Idempotency-Key replay)",
            f"  rejected: {self.rejected}",
        ]
        lines.extend(
            f"    {count:>6}  {reason}" for reason, count in self.rejected_reasons.most_common()
        )
        return "\n".join(lines)


class _Tally:
    """A thread-safe accumulator behind a ReplaySummary."""

    def __init__(self) -> None:
        self.summary = ReplaySummary()
        self._lock = threading.Lock()

    def accepted(self, n: int = 1) -> None:
        with self._lock:
            self.summary.accepted += n

    def replayed(self, n: int = 1) -> None:
        with self._lock:
            self.summary.replayed += n

    def rejected(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.summary.rejected += n
            self.summary.rejected_reasons[reason] += n


# --------------------------------------------------------------------------------------- posting


def problem_reason(status: int, problem: Any, fallback: str = "") -> str:
    """`"<status> <title or detail>"` (409 is "duplicate"), with the first offending field."""
    if status == 409:
        return "duplicate"
    text = fallback
    first_field = ""
    if isinstance(problem, dict):
        text = str(problem.get("title") or problem.get("detail") or fallback)
        errors = problem.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first_field = str(errors[0].get("field") or "")
    reason = f"{status} {text}".strip()
    return f"{reason} ({first_field})" if first_field else reason


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after_s(response: httpx.Response, attempt: int) -> float:
    raw = response.headers.get("Retry-After", "").strip()
    delay: float | None = None
    if raw:
        try:
            delay = float(raw)
        except ValueError:
            try:
                delay = (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                delay = None
    if delay is None:
        delay = min(2.0**attempt, RETRY_AFTER_CAP_S)
    return max(0.0, min(delay, RETRY_AFTER_CAP_S))


def _post(
    client: httpx.Client, path: str, body: dict[str, Any], idempotency_key: str
) -> httpx.Response | None:
    """POST with retries: 429 honours Retry-After (≤5 times); transport errors back off.

    Returns the final response, or None when the connection kept failing.
    """
    throttled = 0
    failures = 0
    while True:
        try:
            response = client.post(path, json=body, headers={"Idempotency-Key": idempotency_key})
        except httpx.TransportError:
            failures += 1
            if failures > MAX_CONNECT_RETRIES:
                return None
            time.sleep(0.5 * 2 ** (failures - 1))
            continue
        if response.status_code == 429 and throttled < MAX_429_RETRIES:
            throttled += 1
            time.sleep(_retry_after_s(response, throttled))
            continue
        return response


def _is_replay(response: httpx.Response) -> bool:
    value: str = response.headers.get("Idempotent-Replayed", "")
    return value.strip().lower() == "true"


def _send_one(client: httpx.Client, body: dict[str, Any], tally: _Tally) -> int:
    try:
        response = _post(client, "/v1/complaints", body, str(body["external_ref"]))
    except httpx.HTTPError as exc:
        tally.rejected(f"http error: {type(exc).__name__}")
        return 1
    if response is None:
        tally.rejected("connection error")
    elif response.status_code in (200, 201):
        if _is_replay(response):
            tally.replayed()
        else:
            tally.accepted()
    else:
        problem = _json_or_none(response)
        tally.rejected(problem_reason(response.status_code, problem, response.reason_phrase))
    return 1


def _batch_key(bodies: Sequence[dict[str, Any]]) -> str:
    refs = "\n".join(str(b["external_ref"]) for b in bodies)
    return "cfpb-batch-" + hashlib.sha1(refs.encode("utf-8")).hexdigest()[:24]


def _send_batch(client: httpx.Client, bodies: Sequence[dict[str, Any]], tally: _Tally) -> int:
    try:
        response = _post(
            client, "/v1/complaints:batch", {"items": list(bodies)}, _batch_key(bodies)
        )
    except httpx.HTTPError as exc:
        tally.rejected(f"http error: {type(exc).__name__}", len(bodies))
        return len(bodies)
    if response is None:
        tally.rejected("connection error", len(bodies))
        return len(bodies)
    payload = _json_or_none(response)
    if response.status_code not in (200, 201, 207) or not isinstance(payload, dict):
        reason = problem_reason(response.status_code, payload, response.reason_phrase)
        tally.rejected(reason, len(bodies))
        return len(bodies)
    whole_replay = _is_replay(response)
    results = payload.get("results")
    items = (
        [item for item in results if isinstance(item, dict)] if isinstance(results, list) else []
    )
    for item in items:
        status = item.get("status")
        if not isinstance(status, int):
            tally.rejected("malformed batch result")
        elif status in (200, 201):
            if whole_replay or item.get("replayed") is True:
                tally.replayed()
            else:
                tally.accepted()
        else:
            tally.rejected(problem_reason(status, item.get("problem"), "error"))
    if len(items) < len(bodies):
        tally.rejected("missing from batch result", len(bodies) - len(items))
    return len(bodies)


def replay(
    url: str,
    token: str,
    path: Path,
    limit: int,
    concurrency: int = 8,
    batch: bool = False,
    progress: bool = True,
) -> ReplaySummary:
    """Post up to `limit` CFPB complaints from `path` to the intake API at `url`."""
    tally = _Tally()
    concurrency = max(1, concurrency)
    bodies: list[dict[str, Any]] = []
    for row in read_rows(path, limit):
        try:
            bodies.append(map_row(row))
        except (ValueError, KeyError) as exc:
            tally.rejected(f"mapping error: {exc}")

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with (
        httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, connect=5.0),
            limits=limits,
        ) as client,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cfpb") as pool,
        tqdm(total=len(bodies), unit="complaint", disable=not progress) as bar,
    ):
        if batch:
            chunks = [bodies[i : i + BATCH_MAX] for i in range(0, len(bodies), BATCH_MAX)]
            futures = [pool.submit(_send_batch, client, chunk, tally) for chunk in chunks]
        else:
            futures = [pool.submit(_send_one, client, body, tally) for body in bodies]
        for future in as_completed(futures):
            bar.update(future.result())
    tally.summary.elapsed_s = time.perf_counter() - started
    return tally.summary


def metadata_size(body: dict[str, Any]) -> int:
    """The JSON size in bytes of a mapped body's metadata (the API caps it at 4 KB)."""
    return len(json.dumps(body.get("metadata", {}), ensure_ascii=False).encode("utf-8"))
