"""Followup scheduler: due -> alert lag and cost per tick with 1,000,000 open promises.

    python -m bench.scheduler [--promises N] [--reuse] [--duration S] [--rate R] [--burst N]
                              [--replicas N] [--interval S] [--batch N] [--small N]
                              [--churn N] [--drop]

Database: `--db-name` (`closeloop_bench_scheduler`) on the PostgreSQL of `--pg-admin-url`, built by
the followup migrations and seeded with set-based SQL (`INSERT ... SELECT generate_series`):
`--promises` open loops, each with one complaint, one pending promise and its due target
(`promise:<id>`, ladder not started, `next_fire_at` = the due time), due times spread over the
next 30 days. One default ladder ("*": owner and journey manager at the due time, `person:x` an
hour later) on a webhook channel that is disabled (nothing is sent; no delivery process runs).
Then VACUUM ANALYZE. `--reuse` keeps a database that already holds exactly `--promises`
promises and only re-arms the targets earlier runs used; otherwise the database is dropped and
seeded again. Nothing is dropped at the end unless `--drop` is given.

(a) Lag, with the real `SystemClock`: `--replicas` scheduler replicas, each a process with its
own container (`bootstrap`), run `Scheduler.run_once()` every `--interval` seconds (start to
start, as `shared.worker.Periodic` does). Once all are ready, `--rate` x `--duration` open
promises are moved to fall due at evenly spaced instants of the next `--duration` seconds (due
time and `next_fire_at`, as a promise made earlier for that time would be). The lag of an
alert is the moment its claiming transaction committed (the alert, its delivery and the outbox
events are then visible; taken right after `tick()` returns) minus the promise's due time,
split into the wait for a tick (`fired_at`, the tick's clock reading, minus the due time) and the
tick's own work. The run checks that every promise fired, and that no ladder level fired twice.
(a') The same with `--burst` (500) promises due at one instant (promises made "by 9:00").

(b) Cost per tick, one scheduler in this process: idle ticks (nothing due), ticks that claim
k = 1, 100, 500 due targets, and EXPLAIN (ANALYZE, BUFFERS) of the very SELECT the scheduler ran
(captured from the engine), which should read `ix_due_targets_next_fire_at` and few buffers.

Baseline, in the same run: the naive query whose cost follows what is open - every open promise
past due, without an index on `promises.due_at` (index use is switched off in its transaction:
migration 0003 added `ix_promises_due_at` for the metrics; the plan the planner picks with it is
printed as well) - timed and EXPLAINed against the indexed claim, and (b) repeated on a second
database of `--small` (10,000) open promises to show that the tick's cost does not grow with
what is open while the scan does.

(c) What it does grow with: idle ticks after `--churn` (50,000) targets have fired since the last
vacuum (set-based updates that leave what firing leaves: one index entry in the past per target),
then after `VACUUM due_targets`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import multiprocessing as mp
import os
import platform
import queue
import re
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, event

from services.followup.bootstrap import FollowupContainer, bootstrap
from services.followup.config import FollowupSettings
from services.followup.scheduler import Scheduler, TickResult
from shared.clock import SystemClock
from shared.db.migrate import upgrade
from shared.logging import configure_logging

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "services" / "followup" / "migrations"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_NAME = "closeloop_bench_scheduler"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SPREAD = timedelta(days=30)  # seeded due times: between 1 hour and 30 days from now
PRISTINE_AFTER = timedelta(days=1)  # targets due later than this are untouched by any run
CHANNEL = "hook"
LADDER = [
    {"offset_minutes": 0, "audience": "owner", "channel": CHANNEL},
    {"offset_minutes": 0, "audience": "journey_manager", "channel": CHANNEL},
    {"offset_minutes": 60, "audience": "person:x", "channel": CHANNEL},
]
LEVELS_AT_DUE = 2  # levels with offset 0: what one promise falling due fires at once
JOURNEYS = 20
OWNERS = 500
# Deterministic ids: a prefix per table and the row number in the last 12 hex digits.
PREFIX = {
    "loop": "a0000000-0000-4000-8000-",
    "complaint": "c0000000-0000-4000-8000-",
    "customer": "d0000000-0000-4000-8000-",
    "promise": "e0000000-0000-4000-8000-",
    "target": "f0000000-0000-4000-8000-",
}
# The baseline as it runs without an index on promises.due_at (followup migration 0003 added
# ix_promises_due_at for the metrics; it changes that query's plan, not the scheduler's).
NO_INDEX = (
    "SET LOCAL enable_indexscan = off",
    "SET LOCAL enable_bitmapscan = off",
    "SET LOCAL enable_indexonlyscan = off",
)
NAIVE_SQL = (
    "SELECT id, loop_id, due_at FROM promises "
    "WHERE status IN ('pending', 'renegotiated') AND due_at <= %(now)s"
)


# ------------------------------------------------------------------------------------ helpers


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of non-empty values."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def dist_line(label: str, values: Sequence[float]) -> str:
    if not values:
        return f"  {label:<40} (no samples)"
    return (
        f"  {label:<40} p50 {ms(percentile(values, 50))}  p90 {ms(percentile(values, 90))}  "
        f"p99 {ms(percentile(values, 99))}  max {ms(max(values))}  ms  (n={len(values)})"
    )


def machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / CLK_TCK


def postgres_cpu_s() -> float:
    """CPU seconds of the running `postgres` processes (backends that exited are not counted)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1 :].split(")", 1)
        if name.startswith("postgres"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def key_lines(plan: Sequence[str]) -> list[str]:
    """The lines of a plan that say how rows are found and what it cost."""
    wanted = ("Scan", "Buffers", "Execution Time", "Sort Method", "Workers")
    return [line.strip() for line in plan if any(w in line for w in wanted)]


def scan_of(plan: Sequence[str], table: str) -> str:
    """How the plan reads `table`, e.g. "Index Scan using ix_due_targets_next_fire_at"."""
    for k, line in enumerate(plan):
        found = re.search(rf"([A-Z][\w ]*Scan)(?: Backward)?(?: using (\w+))? on {table}\b", line)
        if not found:
            continue
        if found.group(2):
            return f"{found.group(1)} using {found.group(2)}"
        if found.group(1) == "Bitmap Heap Scan":
            for below in plan[k + 1 :]:
                index = re.search(r"Bitmap Index Scan on (\w+)", below)
                if index:
                    return f"Bitmap Heap Scan ({index.group(1)})"
        return found.group(1)
    return "?"


def first_buffers(plan: Sequence[str]) -> str:
    """The top node's buffer counts (the whole query's)."""
    for line in plan:
        if "Buffers:" in line:
            return line.split("Buffers:", 1)[1].strip()
    return "?"


# ---------------------------------------------------------------------------------- databases


def database_url(admin_url: str, name: str) -> str:
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def database_exists(admin_url: str, name: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def drop_database(admin_url: str, name: str) -> None:
    """Drop one of this bench's databases (never any other)."""
    assert name.startswith("closeloop_bench_"), name
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def create_database(admin_url: str, name: str) -> str:
    """A fresh database built by the followup migrations (the old one of that name dropped)."""
    drop_database(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(admin_url, name)
    upgrade(MIGRATIONS, url)
    return url


def promise_count(url: str) -> int | None:
    """How many promises the database holds; None when it is not a migrated followup database."""
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('promises') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT count(*) FROM promises").fetchone()
    return int(row[0]) if row else 0


# ------------------------------------------------------------------------------------ seeding


def _uuid(kind: str, expr: str = "i") -> str:
    return f"('{PREFIX[kind]}' || lpad(to_hex({expr}), 12, '0'))::uuid"


# Due time of row i: a permutation of 0..n-1 (7919 is prime) spread over SPREAD, so the rows'
# order in every table and the index on next_fire_at disagree, as they would in real life.
_DUE = (
    "%(base)s + make_interval(secs => ((i::bigint * 7919) %% %(n)s)::float8 * %(spread)s / %(n)s)"
)

SEED_STEPS: list[tuple[str, str]] = [
    (
        "loops",
        f"""INSERT INTO loops (id, complaint_id, customer_id, journey_key, journey_name, stage,
            owner_key, owner_name, journey_manager, status, severity, contacts, opened_at,
            next_due_at, sla_started_at, pauses, updated_at)
        SELECT {_uuid("loop")}, {_uuid("complaint")}, {_uuid("customer", "i %% %(customers)s")},
            'journey-' || (i %% {JOURNEYS}), 'Journey ' || (i %% {JOURNEYS}), 'investigate',
            'owner-' || (i %% {OWNERS}), 'Owner ' || (i %% {OWNERS}), 'mgr-' || (i %% {JOURNEYS}),
            'promised', (ARRAY['low', 'medium', 'high', 'critical'])[1 + i %% 4], 1, %(now)s,
            {_DUE}, %(now)s, '[]'::jsonb, %(now)s
        FROM generate_series(1, %(n)s) AS i""",
    ),
    (
        "loop_complaints",
        f"""INSERT INTO loop_complaints (complaint_id, loop_id, joined_at)
        SELECT {_uuid("complaint")}, {_uuid("loop")}, %(now)s
        FROM generate_series(1, %(n)s) AS i""",
    ),
    (
        "promises",
        f"""INSERT INTO promises (id, loop_id, text, due_at, status, made_by, created_at)
        SELECT {_uuid("promise")}, {_uuid("loop")}, 'Call back with the decision', {_DUE},
            'pending', 'owner-' || (i %% {OWNERS}), %(now)s
        FROM generate_series(1, %(n)s) AS i""",
    ),
    (
        "due_targets",
        f"""INSERT INTO due_targets (id, loop_id, target, promise_id, due_at, breached,
            next_level, next_fire_at, settled_at, updated_at)
        SELECT {_uuid("target")}, {_uuid("loop")}, 'promise:' || {_uuid("promise")},
            {_uuid("promise")}, {_DUE}, false, 0, {_DUE}, NULL, %(now)s
        FROM generate_series(1, %(n)s) AS i""",
    ),
]


def seed(url: str, n: int) -> float:
    """Seed `n` open loops with a pending promise each; returns the seconds it took."""
    now = datetime.now(UTC)
    params = {
        "n": n,
        "now": now,
        "base": now + timedelta(hours=1),
        "spread": (SPREAD - timedelta(hours=1)).total_seconds(),
        "customers": max(1, n // 2),
    }
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            "INSERT INTO notification_channels (key, kind, config, enabled, version, updated_at)"
            " VALUES (%s, 'webhook', %s, false, 1, %s)",
            (
                CHANNEL,
                psycopg.types.json.Jsonb(
                    {"url": "http://127.0.0.1:9/hook", "secret": "bench-secret-0123456789"}
                ),
                now,
            ),
        )
        conn.execute(
            "INSERT INTO escalation_ladders (journey_key, levels, version, updated_at)"
            " VALUES ('*', %s, 1, %s)",
            (psycopg.types.json.Jsonb(LADDER), now),
        )
        for table, statement in SEED_STEPS:
            t0 = time.perf_counter()
            with conn.transaction():
                conn.execute(statement, params)
            dt = time.perf_counter() - t0
            print(
                f"    {table:<16} {n:>10,} rows  {dt:7.1f} s  ({n / dt:>9,.0f} rows/s)", flush=True
            )
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        print(f"    VACUUM ANALYZE   {time.perf_counter() - t0:7.1f} s", flush=True)
    return time.perf_counter() - started


def rearm(url: str) -> int:
    """Targets earlier runs used go back to open, due again 1 hour to 30 days from now."""
    now = datetime.now(UTC)
    params = {
        "now": now,
        "soon": now + PRISTINE_AFTER,
        "base": now + timedelta(hours=1),
        "spread": (SPREAD - timedelta(hours=1)).total_seconds(),
    }
    with psycopg.connect(url) as conn:
        conn.execute(
            """CREATE TEMP TABLE rearm ON COMMIT DROP AS
            SELECT id, promise_id, loop_id,
                %(base)s + random() * make_interval(secs => %(spread)s) AS due
            FROM due_targets
            WHERE breached OR next_level > 0 OR next_fire_at IS NULL OR next_fire_at < %(soon)s""",
            params,
        )
        row = conn.execute("SELECT count(*) FROM rearm").fetchone()
        count = int(row[0]) if row else 0
        conn.execute(
            """UPDATE due_targets t SET due_at = r.due, next_fire_at = r.due, breached = false,
                next_level = 0, settled_at = NULL, updated_at = %(now)s
            FROM rearm r WHERE t.id = r.id""",
            params,
        )
        conn.execute(
            "UPDATE promises p SET due_at = r.due, status = 'pending' "
            "FROM rearm r WHERE p.id = r.promise_id"
        )
        conn.execute(
            "UPDATE loops l SET next_due_at = r.due, updated_at = %(now)s "
            "FROM rearm r WHERE l.id = r.loop_id",
            params,
        )
    if count:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) due_targets, promises, loops")
    return count


def prepare(admin_url: str, name: str, n: int, reuse: bool) -> str:
    """The bench database `name` with `n` open promises: reused (re-armed) or seeded afresh."""
    url = database_url(admin_url, name)
    if reuse and database_exists(admin_url, name) and promise_count(url) == n:
        t0 = time.perf_counter()
        upgrade(MIGRATIONS, url)  # migrations added since it was seeded
        count = rearm(url)
        print(
            f"  {name}: reusing {n:,} promises; re-armed {count:,} targets used before "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        return url
    print(f"  {name}: creating and seeding {n:,} open promises", flush=True)
    url = create_database(admin_url, name)
    took = seed(url, n)
    print(f"  {name}: seeded in {took:.1f} s", flush=True)
    return url


# --------------------------------------------------------------------------- making things due


@dataclass(frozen=True)
class Picked:
    target: uuid.UUID
    promise: uuid.UUID
    loop: uuid.UUID


def pick_open(conn: psycopg.Connection[Any], n: int) -> list[Picked]:
    """`n` untouched open targets, the latest due first (through the next_fire_at index)."""
    rows = conn.execute(
        "SELECT id, promise_id, loop_id FROM due_targets WHERE next_fire_at > %s "
        "ORDER BY next_fire_at DESC LIMIT %s",
        (datetime.now(UTC) + PRISTINE_AFTER, n),
    ).fetchall()
    if len(rows) < n:
        raise SystemExit(f"only {len(rows)} untouched open targets left; seed again")
    return [Picked(t, p, lp) for t, p, lp in rows]


def make_due(
    conn: psycopg.Connection[Any], picked: Sequence[Picked], dues: Sequence[datetime]
) -> None:
    """Move the promises (and their targets and loops) to fall due at `dues`, in one commit."""
    params = {
        "targets": [p.target for p in picked],
        "promises": [p.promise for p in picked],
        "loops": [p.loop for p in picked],
        "dues": list(dues),
        "now": datetime.now(UTC),
    }
    with conn.transaction():
        conn.execute(
            """UPDATE due_targets t SET due_at = s.due, next_fire_at = s.due, updated_at = %(now)s
            FROM unnest(%(targets)s::uuid[], %(dues)s::timestamptz[]) AS s(id, due)
            WHERE t.id = s.id""",
            params,
        )
        conn.execute(
            """UPDATE promises p SET due_at = s.due
            FROM unnest(%(promises)s::uuid[], %(dues)s::timestamptz[]) AS s(id, due)
            WHERE p.id = s.id""",
            params,
        )
        conn.execute(
            """UPDATE loops l SET next_due_at = s.due, updated_at = %(now)s
            FROM unnest(%(loops)s::uuid[], %(dues)s::timestamptz[]) AS s(id, due)
            WHERE l.id = s.id""",
            params,
        )


# -------------------------------------------------------------------------- a timed scheduler


class RecordingClock(SystemClock):
    """The system clock, remembering its last reading (the tick's `now`, the alerts' fired_at)."""

    last: datetime | None = None

    def now(self) -> datetime:
        self.last = super().now()
        return self.last


@dataclass(frozen=True)
class TickRecord:
    replica: int
    started: datetime  # the tick's clock reading: fired_at of its alerts
    committed: float  # time.time() right after the claiming transaction committed
    duration_s: float
    targets: int
    alerts: int


class TimedScheduler(Scheduler):
    """The real scheduler, built as `FollowupContainer.scheduler()` builds it, its ticks timed."""

    def __init__(self, container: FollowupContainer, replica: int) -> None:
        self.recording = RecordingClock()
        super().__init__(
            container.uow,
            self.recording,
            container.service,
            batch_size=container.settings.scheduler_batch_size,
            service_name=container.settings.service_name,
        )
        self.replica = replica
        self.ticks: list[TickRecord] = []

    def tick(self) -> TickResult:
        t0 = time.perf_counter()
        result = super().tick()
        committed = time.time()
        assert self.recording.last is not None
        self.ticks.append(
            TickRecord(
                self.replica,
                self.recording.last,
                committed,
                time.perf_counter() - t0,
                result.targets,
                result.alerts,
            )
        )
        return result


def container_for(url: str, batch: int) -> FollowupContainer:
    settings = FollowupSettings(database_url=url, db_pool_size=2, scheduler_batch_size=batch)
    return bootstrap(settings, SystemClock())


# ---------------------------------------------------------------------------- (a) the replicas


@dataclass
class ReplicaResult:
    replica: int
    ticks: list[TickRecord]
    passes: int
    cpu_s: float
    wall_s: float
    error: str | None = None


def replica_main(
    url: str, replica: int, interval: float, batch: int, stop: Any, ready: Any, out: Any
) -> None:
    """One scheduler replica: `run_once()` every `interval` s (start to start) until `stop`."""
    # Production logs every alert as JSON; keep that cost, not the noise.
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    configure_logging("followup", "INFO", stream=devnull)
    container = container_for(url, batch)
    scheduler = TimedScheduler(container, replica)
    passes = 0
    try:
        scheduler.run_once()  # connect and warm up before the window
        scheduler.ticks.clear()
        ready.put(replica)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while not stop.is_set():
            started = time.monotonic()
            scheduler.run_once()
            passes += 1
            stop.wait(max(0.0, started + interval - time.monotonic()))
        result = ReplicaResult(
            replica,
            scheduler.ticks,
            passes,
            time.process_time() - cpu0,
            time.perf_counter() - wall0,
        )
    except Exception as exc:  # reported by the parent
        ready.put(replica)
        result = ReplicaResult(replica, scheduler.ticks, passes, 0.0, 0.0, repr(exc))
    finally:
        container.close()
    out.put(result)


@dataclass
class LagResult:
    lags: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    works: list[float] = field(default_factory=list)
    alerts: int = 0
    promises: int = 0
    fired_promises: int = 0
    overdue: int = 0
    duplicates: int = 0
    unmatched: int = 0
    ticks: int = 0
    busy_ticks: list[TickRecord] = field(default_factory=list)
    idle_ticks: list[float] = field(default_factory=list)
    machine_cores: float = 0.0
    replica_cores: float = 0.0
    postgres_cores: float = 0.0
    events: dict[str, int] = field(default_factory=dict)


def run_lag(url: str, opts: Options, title: str, offsets: Sequence[float]) -> LagResult:
    """Promises fall due `offsets` seconds after a start `--lead` s ahead; replicas fire them."""
    n = len(offsets)
    print(
        f"\n{title}; {opts.replicas} replicas (processes), run_once() every {opts.interval:g} s, "
        f"batch {opts.batch}",
        flush=True,
    )
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    ready: Any = ctx.Queue()
    out: Any = ctx.Queue()
    procs = [
        ctx.Process(
            target=replica_main,
            args=(url, r, opts.interval, opts.batch, stop, ready, out),
            name=f"scheduler-{r}",
        )
        for r in range(opts.replicas)
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        picked = pick_open(conn, n)
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=120)
        t0 = time.time() + opts.lead
        dues = [at(t0 + offset) for offset in offsets]
        since = datetime.now(UTC)
        make_due(conn, picked, dues)
        armed = time.time()
        print(f"  promises armed {t0 - armed:.2f} s before the first due instant", flush=True)
        cpu = (machine_cpu_s(), postgres_cpu_s(), time.perf_counter())
        time.sleep(max(0.0, t0 + max(offsets) - time.time()))
        targets = [p.target for p in picked]
        deadline = time.time() + opts.drain_timeout
        while time.time() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM due_targets WHERE id = ANY(%s) AND breached", (targets,)
            ).fetchone()
            if row and row[0] >= n:
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - cpu[2]
        machine = (machine_cpu_s() - cpu[0]) / elapsed
        pg = (postgres_cpu_s() - cpu[1]) / elapsed
        stop.set()
        results: list[ReplicaResult] = []
        for _ in procs:
            with contextlib.suppress(queue.Empty):
                results.append(out.get(timeout=120))
        for p in procs:
            p.join(timeout=30)
        res = analyse(conn, picked, dues, since, results)
    res.machine_cores, res.postgres_cores = machine, pg
    res.replica_cores = sum(r.cpu_s for r in results) / elapsed
    print_lag(res, results)
    return res


def analyse(
    conn: psycopg.Connection[Any],
    picked: Sequence[Picked],
    dues: Sequence[datetime],
    since: datetime,
    results: Sequence[ReplicaResult],
) -> LagResult:
    res = LagResult(promises=len(picked))
    ticks = {t.started: t for r in results for t in r.ticks}
    res.ticks = sum(len(r.ticks) for r in results)
    res.busy_ticks = [t for r in results for t in r.ticks if t.targets]
    res.idle_ticks = [t.duration_s for r in results for t in r.ticks if not t.targets]
    due_of = {p.target: d for p, d in zip(picked, dues, strict=True)}
    rows = conn.execute(
        "SELECT target_id, level, fired_at FROM alerts "
        "WHERE target_id = ANY(%s) AND fired_at >= %s",
        ([p.target for p in picked], since),
    ).fetchall()
    fired: set[uuid.UUID] = set()
    for target_id, _level, fired_at in rows:
        res.alerts += 1
        fired.add(target_id)
        tick = ticks.get(fired_at)
        if tick is None:
            res.unmatched += 1
            continue
        due = due_of[target_id].timestamp()
        res.lags.append(tick.committed - due)
        res.waits.append(fired_at.timestamp() - due)
        res.works.append(tick.committed - fired_at.timestamp())
    res.fired_promises = len(fired)
    row = conn.execute(
        "SELECT count(*) FROM promises WHERE id = ANY(%s) AND status = 'overdue'",
        ([p.promise for p in picked],),
    ).fetchone()
    res.overdue = int(row[0]) if row else 0
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM alerts WHERE fired_at >= %s "
        "GROUP BY target_id, level HAVING count(*) > 1) AS twice",
        (since,),
    ).fetchone()
    res.duplicates = int(row[0]) if row else 0
    res.events = {
        str(t): int(c)
        for t, c in conn.execute(
            "SELECT event_type, count(*) FROM outbox WHERE created_at >= %s GROUP BY 1 ORDER BY 1",
            (since,),
        ).fetchall()
    }
    return res


def print_lag(res: LagResult, results: Sequence[ReplicaResult]) -> None:
    for r in results:
        if r.error:
            print(f"  ! replica {r.replica} failed: {r.error}")
    print(dist_line("due -> alert committed (the lag)", res.lags))
    print(dist_line("  due -> tick started (waiting)", res.waits))
    print(dist_line("  tick started -> committed (work)", res.works))
    print(
        f"  promises fired {res.fired_promises:,}/{res.promises:,}; overdue {res.overdue:,}; "
        f"alerts {res.alerts:,} (expected {res.promises * LEVELS_AT_DUE:,}); "
        f"levels fired twice: {res.duplicates}; alerts without a timed tick: {res.unmatched}"
    )
    print(f"  outbox events written: {', '.join(f'{k} {v:,}' for k, v in res.events.items())}")
    per_target = [t.duration_s / t.targets for t in res.busy_ticks]
    print(
        f"  ticks: {res.ticks:,} ({len(res.busy_ticks):,} claimed something, "
        f"{sum(t.targets for t in res.busy_ticks) / max(1, len(res.busy_ticks)):.1f} targets each)"
    )
    print(dist_line("tick that claimed something", [t.duration_s for t in res.busy_ticks]))
    print(dist_line("  per target claimed", per_target))
    print(dist_line("idle tick", res.idle_ticks))
    for r in results:
        claimed = sum(t.targets for t in r.ticks)
        print(
            f"    replica {r.replica}: {r.passes:,} passes, {len(r.ticks):,} ticks, "
            f"{claimed:,} targets, {r.cpu_s / max(r.wall_s, 1e-9):.2f} cores"
        )
    rest = res.machine_cores - res.replica_cores - res.postgres_cores
    print(
        f"  CPU during the window: machine {res.machine_cores:.2f} cores busy, scheduler "
        f"replicas {res.replica_cores:.2f}, postgres {res.postgres_cores:.2f}, the rest "
        f"(this process, other work) {rest:.2f}"
    )


# --------------------------------------------------------------------------- (b) cost per tick


@dataclass
class CostResult:
    label: str
    open_targets: int
    idle: list[float] = field(default_factory=list)
    busy: dict[int, list[float]] = field(default_factory=dict)
    claim_idle_plan: list[str] = field(default_factory=list)
    claim_busy_plan: list[str] = field(default_factory=list)
    claim_ms: float = 0.0
    naive_plan: list[str] = field(default_factory=list)
    naive_ms: float = 0.0
    indexed_naive_plan: list[str] = field(default_factory=list)
    indexed_naive_ms: float = 0.0


class ClaimCapture:
    """The scheduler's claiming SELECT, as the engine sent it."""

    def __init__(self, engine: Engine) -> None:
        self.statement: str | None = None
        self.parameters: dict[str, Any] = {}
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if "FOR UPDATE" in statement and "due_targets" in statement:
            self.statement, self.parameters = statement, dict(parameters)

    def at(self, now: datetime) -> tuple[str, dict[str, Any]]:
        """The statement with its clock parameter set to `now`."""
        assert self.statement is not None, "no tick ran"
        return self.statement, {
            k: now if isinstance(v, datetime) else v for k, v in self.parameters.items()
        }


def explain(
    engine: Engine, statement: str, params: dict[str, Any], setup: Sequence[str] = ()
) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back (locks taken are let go)."""
    with engine.connect() as conn:
        for line in setup:
            conn.exec_driver_sql(line)
        rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params).all()
        conn.rollback()
    return [str(r[0]) for r in rows]


def wall_ms(
    engine: Engine, statement: str, params: dict[str, Any], runs: int, setup: Sequence[str] = ()
) -> float:
    """Median wall time of `runs` executions (each rolled back), fetching every row."""
    times = []
    with engine.connect() as conn:
        for _ in range(runs):
            for line in setup:
                conn.exec_driver_sql(line)
            t0 = time.perf_counter()
            conn.exec_driver_sql(statement, params).all()
            times.append(time.perf_counter() - t0)
            conn.rollback()
    return statistics.median(times) * 1000


def run_cost(url: str, label: str, opts: Options) -> CostResult:
    container = container_for(url, opts.batch)
    capture = ClaimCapture(container.engine)
    scheduler = TimedScheduler(container, 0)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM due_targets WHERE next_fire_at IS NOT NULL"
        ).fetchone()
        res = CostResult(label, int(row[0]) if row else 0)
        scheduler.run_once()  # whatever is left over from (a), and the warm-up
        for _ in range(5):
            scheduler.tick()
        for _ in range(opts.idle_ticks):
            t0 = time.perf_counter()
            result = scheduler.tick()
            res.idle.append(time.perf_counter() - t0)
            assert result.targets == 0, "something fell due during the idle ticks"
        statement, params = capture.at(datetime.now(UTC))
        res.claim_idle_plan = explain(container.engine, statement, params)
        res.claim_ms = wall_ms(container.engine, statement, params, 20)
        for k in opts.busy:
            res.busy[k] = []
            for _ in range(opts.reps):
                make_due(conn, pick_open(conn, k), [datetime.now(UTC) - timedelta(seconds=1)] * k)
                t0 = time.perf_counter()
                result = scheduler.tick()
                res.busy[k].append(time.perf_counter() - t0)
                assert result.targets == k, (result, k)
        # The plan with the largest batch due, on a batch of its own (not a timed one).
        k = max(opts.busy)
        make_due(conn, pick_open(conn, k), [datetime.now(UTC) - timedelta(seconds=1)] * k)
        res.claim_busy_plan = explain(container.engine, *capture.at(datetime.now(UTC)))
        scheduler.tick()
        naive = (NAIVE_SQL, {"now": datetime.now(UTC)})
        res.naive_plan = explain(container.engine, *naive, setup=NO_INDEX)
        res.naive_ms = wall_ms(container.engine, *naive, 5, setup=NO_INDEX)
        res.indexed_naive_plan = explain(container.engine, *naive)
        res.indexed_naive_ms = wall_ms(container.engine, *naive, 5)
    container.close()
    print_cost(res)
    return res


def print_cost(res: CostResult) -> None:
    print(f"\n(b) cost per tick: {res.label}, {res.open_targets:,} open targets")
    print(dist_line("idle tick (nothing due)", res.idle))
    for k, times in res.busy.items():
        print(
            dist_line(f"tick claiming {k} due ({LEVELS_AT_DUE * k} alerts)", times)
            + f"  {statistics.median(times) / k * 1000:.2f} ms/target"
        )
    print(f"  claim SELECT, nothing due: median {res.claim_ms:.2f} ms; plan:")
    print("\n".join(f"      {line}" for line in res.claim_idle_plan))
    print(f"  claim SELECT, {max(res.busy)} due: key lines:")
    print("\n".join(f"      {line}" for line in key_lines(res.claim_busy_plan)))
    print(
        f"  baseline, every open promise past due, no index used: "
        f"median {res.naive_ms:.1f} ms; plan:"
    )
    print("\n".join(f"      {line}" for line in res.naive_plan))
    print(
        f"  the same query as the planner runs it today: median {res.indexed_naive_ms:.1f} ms; "
        "plan:"
    )
    print("\n".join(f"      {line}" for line in res.indexed_naive_plan))


@dataclass
class ChurnResult:
    fired: int
    dead_tuples: int
    before: list[float] = field(default_factory=list)
    before_plan: list[str] = field(default_factory=list)
    vacuum_s: float = 0.0
    after: list[float] = field(default_factory=list)
    after_plan: list[str] = field(default_factory=list)


def dead_tuples(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'due_targets'"
    ).fetchone()
    return int(row[0]) if row else 0


def run_churn(url: str, opts: Options) -> ChurnResult:
    """Idle ticks after `--churn` targets fired since the last vacuum, then after VACUUM.

    Moving `next_fire_at` cannot be a HOT update (it is indexed), so every firing leaves the old
    index entry, whose key is in the past, behind in `ix_due_targets_next_fire_at` until
    (auto)vacuum removes it; an idle claim walks over all of them.
    """
    container = container_for(url, opts.batch)
    capture = ClaimCapture(container.engine)
    scheduler = TimedScheduler(container, 0)

    def idle_ticks() -> list[float]:
        times = []
        for _ in range(opts.idle_ticks):
            t0 = time.perf_counter()
            assert scheduler.tick().targets == 0
            times.append(time.perf_counter() - t0)
        return times

    with psycopg.connect(url, autocommit=True) as conn:
        scheduler.run_once()
        picked = pick_open(conn, opts.churn)
        now = datetime.now(UTC)
        params = {"ids": [p.target for p in picked], "due": now - timedelta(minutes=10), "now": now}
        # What arming and then firing does to each target, set-based: the version written when it
        # fell due (key in the past) is replaced by one due an hour after the due time.
        with conn.transaction():
            conn.execute(
                "UPDATE due_targets SET due_at = %(due)s, next_fire_at = %(due)s, "
                "updated_at = %(now)s WHERE id = ANY(%(ids)s)",
                params,
            )
        with conn.transaction():
            conn.execute(
                "UPDATE due_targets SET breached = true, next_level = %(levels)s, "
                "next_fire_at = due_at + interval '60 minutes', updated_at = %(now)s "
                "WHERE id = ANY(%(ids)s)",
                {**params, "levels": LEVELS_AT_DUE},
            )
        time.sleep(1.0)  # let the statistics collector catch up
        res = ChurnResult(len(picked), dead_tuples(conn))
        res.before = idle_ticks()
        res.before_plan = explain(container.engine, *capture.at(datetime.now(UTC)))
        t0 = time.perf_counter()
        conn.execute("VACUUM due_targets")
        res.vacuum_s = time.perf_counter() - t0
        res.after = idle_ticks()
        res.after_plan = explain(container.engine, *capture.at(datetime.now(UTC)))
    container.close()
    print(
        f"\n(c) idle tick after {res.fired:,} targets fired since the last vacuum "
        f"(pg_stat n_dead_tup of due_targets: {res.dead_tuples:,})"
    )
    print(dist_line("idle tick, before VACUUM", res.before) + f"  first {ms(res.before[0])} ms")
    print("\n".join(f"      {line}" for line in res.before_plan))
    print(f"  VACUUM due_targets: {res.vacuum_s:.1f} s")
    print(dist_line("idle tick, after VACUUM", res.after))
    print("\n".join(f"      {line}" for line in key_lines(res.after_plan)))
    return res


def lag_figures(res: LagResult) -> str:
    p50, p90, p99 = (percentile(res.lags, p) * 1000 for p in (50, 90, 99))
    return (
        f"p50 {p50:.0f} ms, p90 {p90:.0f} ms, p99 {p99:.0f} ms, max {max(res.lags) * 1000:.0f} ms"
        f" ({res.fired_promises:,}/{res.promises:,} fired, {res.duplicates} levels twice)"
    )


def print_summary(
    lag: LagResult | None,
    burst: LagResult | None,
    costs: Sequence[CostResult],
    churn: ChurnResult | None,
    opts: Options,
) -> None:
    print("\nsummary")
    if lag is not None and lag.lags:
        p99 = percentile(lag.lags, 99)
        print(
            f"  lag (due -> alert committed), {lag.promises:,} promises at {opts.rate:g}/s, "
            f"{opts.replicas} replicas, interval {opts.interval:g} s, batch {opts.batch}: "
            f"{lag_figures(lag)} -> aim (< 1 s) {'met' if p99 < 1 else 'NOT met'} at p99"
        )
    if burst is not None and burst.lags:
        print(f"  lag of a burst of {burst.promises:,} due at once: {lag_figures(burst)}")
    for c in costs:
        k = max(c.busy)
        idle = statistics.median(c.idle) * 1000
        print(
            f"  {c.open_targets:>9,} open: idle tick p50 {idle:.2f} ms; "
            + "; ".join(
                f"tick with {due} due p50 {statistics.median(t) * 1000:.1f} ms"
                for due, t in c.busy.items()
            )
        )
        print(
            f"            claim (idle): {scan_of(c.claim_idle_plan, 'due_targets')}, "
            f"{first_buffers(c.claim_idle_plan)}, {c.claim_ms:.2f} ms; "
            f"claim ({k} due): {scan_of(c.claim_busy_plan, 'due_targets')}, "
            f"{first_buffers(c.claim_busy_plan)}"
        )
        print(
            f"            baseline, open promises past due: {scan_of(c.naive_plan, 'promises')}, "
            f"{first_buffers(c.naive_plan)}, {c.naive_ms:.1f} ms; with the indexes present: "
            f"{scan_of(c.indexed_naive_plan, 'promises')}, "
            f"{first_buffers(c.indexed_naive_plan)}, {c.indexed_naive_ms:.1f} ms"
        )
    if churn is not None:
        print(
            f"  after {churn.fired:,} fired without vacuum: idle tick p50 "
            f"{statistics.median(churn.before) * 1000:.2f} ms "
            f"({scan_of(churn.before_plan, 'due_targets')}, {first_buffers(churn.before_plan)}); "
            f"after VACUUM {statistics.median(churn.after) * 1000:.2f} ms "
            f"({first_buffers(churn.after_plan)})"
        )


# ---------------------------------------------------------------------------------------- cli


@dataclass
class Options:
    promises: int
    small: int
    reuse: bool
    drop: bool
    duration: float
    rate: float
    replicas: int
    interval: float
    batch: int
    lead: float
    drain_timeout: float
    idle_ticks: int
    busy: list[int]
    reps: int
    pg_admin_url: str
    db_name: str
    churn: int
    burst: int
    skip_lag: bool
    skip_cost: bool


def parse_args(argv: list[str] | None) -> Options:
    assert __doc__ is not None
    p = argparse.ArgumentParser(
        prog="python -m bench.scheduler", description=__doc__.split("\n")[0]
    )
    p.add_argument("--promises", type=int, default=1_000_000, help="open promises seeded")
    p.add_argument("--small", type=int, default=10_000, help="the second database; 0 skips it")
    p.add_argument("--reuse", action="store_true", help="keep a database already seeded")
    p.add_argument("--drop", action="store_true", help="drop the bench databases at the end")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of promises falling due")
    p.add_argument("--rate", type=float, default=50.0, help="promises falling due per second")
    p.add_argument("--replicas", type=int, default=2, help="scheduler processes")
    p.add_argument("--interval", type=float, default=0.25, help="scheduler interval (s)")
    p.add_argument("--batch", type=int, default=100, help="scheduler batch size (the default)")
    p.add_argument("--lead", type=float, default=2.0, help="s from arming to the first due")
    p.add_argument("--drain-timeout", type=float, default=60.0, help="s to wait for the last")
    p.add_argument("--idle-ticks", type=int, default=50)
    p.add_argument("--busy", default="1,50,100", help="due targets per timed tick")
    p.add_argument("--reps", type=int, default=3, help="timed ticks per --busy value")
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    p.add_argument("--db-name", default=DB_NAME, help="the small one gets a _small suffix")
    p.add_argument(
        "--churn", type=int, default=50_000, help="targets fired before (c); 0 skips (c)"
    )
    p.add_argument(
        "--burst", type=int, default=500, help="promises due at one instant in (a'); 0 skips"
    )
    p.add_argument("--skip-lag", action="store_true")
    p.add_argument("--skip-cost", action="store_true")
    a = p.parse_args(argv)
    busy = [int(k) for k in a.busy.split(",") if k.strip()]
    if not a.db_name.startswith("closeloop_bench_"):
        p.error("--db-name must start with closeloop_bench_ (it is dropped when reseeding)")
    if any(k < 1 or k > a.batch for k in busy):
        p.error("--busy values must be between 1 and --batch")
    return Options(
        promises=a.promises,
        small=a.small,
        reuse=a.reuse,
        drop=a.drop,
        duration=a.duration,
        rate=a.rate,
        replicas=a.replicas,
        interval=a.interval,
        batch=a.batch,
        lead=a.lead,
        drain_timeout=a.drain_timeout,
        idle_ticks=a.idle_ticks,
        busy=busy,
        reps=a.reps,
        pg_admin_url=a.pg_admin_url,
        db_name=a.db_name,
        churn=a.churn,
        burst=a.burst,
        skip_lag=a.skip_lag,
        skip_cost=a.skip_cost,
    )


def print_machine(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        settings = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            for name in ("server_version", "shared_buffers", "work_mem", "synchronous_commit")
        }
    load1, load5, _ = os.getloadavg()
    pg = ", ".join(f"{k} {v[0] if v else '?'}" for k, v in settings.items())
    print(
        f"machine: nproc={os.cpu_count()} {platform.machine()} python={platform.python_version()}"
        f"; PostgreSQL: {pg}; load average at start {load1:.2f} {load5:.2f}",
        flush=True,
    )


@contextlib.contextmanager
def quiet_alembic() -> Iterator[None]:
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    # The scheduler logs every alert; keep that cost (JSON formatting), not the noise.
    configure_logging("followup", "INFO", stream=open(os.devnull, "w"))  # noqa: SIM115
    print_machine(opts.pg_admin_url)
    names = [(opts.db_name, opts.promises)]
    if opts.small:
        names.append((f"{opts.db_name}_small", opts.small))
    with quiet_alembic():
        urls = [(prepare(opts.pg_admin_url, name, n, opts.reuse), n) for name, n in names]
    lag = burst = None
    if not opts.skip_lag:
        n = round(opts.rate * opts.duration)
        steady = [(k + 0.5) / opts.rate for k in range(n)]
        title = f"(a) lag: {n:,} promises fall due at {opts.rate:g}/s for {opts.duration:g} s"
        lag = run_lag(urls[0][0], opts, title, steady)
        if opts.burst:
            title = f"(a') lag: a burst of {opts.burst:,} promises due at the same instant"
            burst = run_lag(urls[0][0], opts, title, [0.0] * opts.burst)
    costs = []
    if not opts.skip_cost:
        for url, n in urls:
            costs.append(run_cost(url, f"{n:,} open promises", opts))
    churn = run_churn(urls[0][0], opts) if opts.churn else None
    print_summary(lag, burst, costs, churn, opts)
    for res in (lag, burst):
        if res is not None and (res.duplicates or res.fired_promises < res.promises):
            print("  ! not every promise fired exactly once", file=sys.stderr)
    if opts.drop:
        for name, _ in names:
            drop_database(opts.pg_admin_url, name)
            print(f"dropped {name}")


if __name__ == "__main__":
    main()
