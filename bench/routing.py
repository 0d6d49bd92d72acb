"""Routing: the pure decision function, and the whole path from intake to an assignment.

    python -m bench.routing [--duration S] [--rate R] [--decide-seconds S] [--set NAME=VALUE]

(a) Pure routing, in this process, no I/O:

- `Router.decide` with the example catalog (`deploy/examples/catalog.yaml`, loaded with
  `services.routing.catalog.load_yaml`) over every CFPB row of `shared/data/cfpb_complaints.csv`
  mapped with `shared.cfpb.map_row` and turned into `Facts` as the routing handler does. The rows
  are shuffled once (fixed seed) and looped over for `--decide-seconds`, so a measurement that
  stops before a full pass still sees a random sample.
- The same with a synthetic catalog of `--rules` (500) rules placed before the example rules:
  a third `product` + `category` (a real product with a category of another product: never
  matches), a third `product` + `text_any` (a real product, two-word phrases of frequent words
  of the narratives), a third `text_any` only (the same kind of phrases, so those rules search
  every complaint's text). Most phrases never occur; what the example rules then route is real.
- The baseline, on the same catalogs and rows: a naive matcher that evaluates the same rules
  with the same semantics but builds each phrase's pattern string and calls
  `re.search(pattern, text, re.IGNORECASE)` every time (no precompiled regexes, no precomputed
  case-folded sets). The run prints how many complaints both route the same way (all rows for
  the example catalog, a 200-row sample for the slow synthetic one); it must be all of them.
- `select_owner` per call for a 5-owner team (least loaded and round robin), one member away
  with a delegate, random loads.

(b) End to end: `closeloop up` as a subprocess in a temporary directory (SQLite databases, the
embedded Tansu broker, the example catalog seeded) with intake and routing on free ports. After a
warm-up, complaints (CFPB rows, each with a distinct `external_ref`) are posted to
`POST /v1/complaints` at a steady `--rate` for `--duration` seconds; each complaint's
`GET /v1/assignments/{id}` on routing is polled every `--poll-ms` from the POST's 201 until the
first 200. The latency is the time from the 201 to that 200 (its resolution is the poll interval
plus one GET). After SIGINT has stopped the system, the SQLite files give each complaint's
timestamps (intake outbox `sent_at`, routing inbox `handled_at`, routing outbox `created_at` of
`complaint.assigned`), which split the latency into where it went. The run also prints the CPU
used by each process of the system and how busy the whole machine was (other work included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.routing.catalog import (
    TRIAGE,
    Catalog,
    Conditions,
    Journey,
    Rule,
    Stage,
    Strategy,
    first_stage,
    load_yaml,
)
from services.routing.domain import Availability, Facts, Load, Route, Router, select_owner
from shared.auth import issue_token
from shared.cfpb import default_csv_path, map_row, read_rows
from shared.clock import SystemClock
from shared.config import ServiceSettings
from shared.testing.broker import free_port

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CATALOG = REPO / "deploy" / "examples" / "catalog.yaml"
SEED = 20261123
CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTUP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
SET_NAMES = ("channel", "product", "category", "touchpoint", "severity", "language", "tier")


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
        return f"  {label:<34} (no samples)"
    return (
        f"  {label:<34} p50 {ms(percentile(values, 50))}  p90 {ms(percentile(values, 90))}  "
        f"p99 {ms(percentile(values, 99))}  max {ms(max(values))}  ms"
    )


# ----------------------------------------------------------------------------- (a) the rows


def load_facts(path: Path) -> list[Facts]:
    """Every CFPB row mapped with `map_row`, as routing's handler sees it, shuffled once."""
    facts = []
    for row in read_rows(path, None):
        try:
            facts.append(Facts.of(map_row(row)))
        except ValueError:
            continue  # a row without a Complaint ID
    random.Random(SEED).shuffle(facts)
    return facts


def ordered_rules(catalog: Catalog) -> list[Rule]:
    """The rules in the order `Router` tries them: priority, then document order."""
    return [r for _, r in sorted(enumerate(catalog.rules), key=lambda ir: (ir[1].priority, ir[0]))]


# --------------------------------------------------------------------- (a) synthetic catalog


def _vocabulary(facts: Sequence[Facts], size: int = 1500) -> list[str]:
    """The most frequent words (4+ letters) of the complaint texts."""
    counts: Counter[str] = Counter()
    for f in facts[:5000]:
        counts.update(w.casefold() for w in re.findall(r"[A-Za-z]{4,}", f.text))
    return [w for w, _ in counts.most_common(size)]


def synthetic_catalog(base: Catalog, facts: Sequence[Facts], n_rules: int) -> Catalog:
    """`n_rules` mostly non-matching rules before the example catalog's own rules."""
    rng = random.Random(SEED)
    products = sorted({f.product for f in facts if f.product})
    categories_of: dict[str, set[str]] = {}
    for f in facts:
        if f.product and f.category:
            categories_of.setdefault(f.product, set()).add(f.category)
    words = _vocabulary(facts)
    journeys = [j for j in base.journeys if j.key != TRIAGE]

    def phrases(k: int) -> list[str]:
        return [f"{rng.choice(words)} {rng.choice(words)}" for _ in range(k)]

    rules: list[Rule] = []
    for i in range(n_rules):
        journey = journeys[i % len(journeys)]
        product = products[i % len(products)]
        kind = i % 3
        if kind == 0:
            # A real product with a category that belongs only to other products.
            own = categories_of.get(product, set())
            foreign = sorted({c for cs in categories_of.values() for c in cs} - own)
            when = Conditions(product=[product], category=rng.sample(foreign, 2))
        elif kind == 1:
            when = Conditions(product=[product], text_any=phrases(3))
        else:
            when = Conditions(text_any=phrases(3))
        rules.append(
            Rule(
                key=f"synthetic-{i:04d}",
                priority=i,
                when=when,
                journey=journey.key,
                stage=first_stage(journey),
            )
        )
    # The example rules keep their order, after every synthetic rule.
    tail = [
        r.model_copy(update={"priority": n_rules + k}) for k, r in enumerate(ordered_rules(base))
    ]
    return Catalog(journeys=base.journeys, owners=base.owners, rules=[*rules, *tail])


# ------------------------------------------------------------------------ (a) naive baseline


def _pattern_string(phrase: str) -> str:
    """The pattern `services.routing.domain._phrase` compiles, as a string."""
    start = r"\b" if re.match(r"\w", phrase) else ""
    end = r"\b" if re.search(r"\w$", phrase) else ""
    return start + re.escape(phrase.strip()) + end


class NaiveRouter:
    """The same rules and semantics as `Router`, evaluated without anything precompiled."""

    def __init__(self, catalog: Catalog) -> None:
        self._rules = ordered_rules(catalog)
        triage = next(j for j in catalog.journeys if j.key == TRIAGE)
        self._triage_stage = first_stage(triage)

    @staticmethod
    def matches(w: Conditions, facts: Facts) -> bool:
        for name in SET_NAMES:
            values: list[str] | None = getattr(w, name)
            if values is None:
                continue
            raw: str | None = getattr(facts, name)
            value = raw.strip().casefold() if raw is not None else None
            allowed = [v.casefold() for v in values]
            if name == "language" and value is not None:
                if value not in allowed and value.split("-")[0] not in allowed:
                    return False
            elif value not in allowed:
                return False
        if w.repeat_contact is not None and facts.repeat_contact != w.repeat_contact:
            return False
        text = facts.text
        if w.text_any and not any(
            re.search(_pattern_string(p), text, re.IGNORECASE) for p in w.text_any
        ):
            return False
        return all(re.search(_pattern_string(p), text, re.IGNORECASE) for p in w.text_all or ())

    def decide(self, facts: Facts) -> Route:
        for r in self._rules:
            if self.matches(r.when, facts):
                return Route(r.journey, r.stage, r.severity or facts.severity, r.key)
        return Route(TRIAGE, self._triage_stage, facts.severity, None)


# ------------------------------------------------------------------------- (a) measurements


@dataclass
class Rate:
    calls: int
    elapsed_s: float

    @property
    def per_s(self) -> float:
        return self.calls / self.elapsed_s

    @property
    def us(self) -> float:
        return self.elapsed_s / self.calls * 1e6


def measure(fn: Callable[[Facts], object], facts: Sequence[Facts], budget_s: float) -> Rate:
    """Call `fn` over `facts` (wrapping around) in chunks until `budget_s` has passed."""
    chunk = 50
    calls = 0
    i = 0
    n = len(facts)
    started = time.perf_counter()
    deadline = started + budget_s
    while True:
        end = min(i + chunk, n)
        for f in facts[i:end]:
            fn(f)
        calls += end - i
        i = end % n
        now = time.perf_counter()
        if now >= deadline:
            return Rate(calls, now - started)


@dataclass
class ScanStats:
    mean_rules_tried: float
    triage_share: float
    rules: int
    phrases: int
    matched_by: Counter[str]


def scan_stats(catalog: Catalog, router: Router, facts: Sequence[Facts]) -> ScanStats:
    """How many rules a decision tries on average (a triage decision tries every rule)."""
    rules = ordered_rules(catalog)
    position = {r.key: k + 1 for k, r in enumerate(rules)}
    tried = 0
    triage = 0
    matched_by: Counter[str] = Counter()
    for f in facts:
        route = router.decide(f)
        if route.rule is None:
            triage += 1
            tried += len(rules)
        else:
            tried += position[route.rule]
            matched_by["synthetic" if route.rule.startswith("synthetic-") else "own"] += 1
    phrases = {p for r in rules for p in (r.when.text_any or []) + (r.when.text_all or [])}
    return ScanStats(tried / len(facts), triage / len(facts), len(rules), len(phrases), matched_by)


def check_same(router: Router, naive: NaiveRouter, facts: Sequence[Facts]) -> int:
    """How many complaints the two route differently (must be 0)."""
    return sum(1 for f in facts if router.decide(f) != naive.decide(f))


def bench_decide(facts: list[Facts], budget_s: float, n_rules: int) -> None:
    print(f"\n(a) pure routing, {len(facts)} CFPB complaints, {budget_s:.1f} s per measurement")
    example = load_yaml(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
    synthetic = synthetic_catalog(example, facts, n_rules)
    lengths = [len(f.text) for f in facts]
    print(
        f"    text (summary + narrative): mean {sum(lengths) / len(lengths):.0f} chars, "
        f"p99 {percentile(lengths, 99):.0f}, max {max(lengths)}; "
        f"{sum(1 for n in lengths if n > 200) / len(lengths):.0%} have a narrative over 200 chars"
    )
    print(f"    re module cache: {getattr(re, '_MAXCACHE', '?')} compiled patterns")
    for name, catalog in (
        ("example catalog", example),
        (f"{n_rules} synthetic + example", synthetic),
    ):
        router = Router(catalog)
        naive = NaiveRouter(catalog)
        # The slow catalog is described and cross-checked on a sample (a random one: shuffled).
        big = len(catalog.rules) >= 200
        stats = scan_stats(catalog, router, facts[:1000] if big else facts)
        sample = facts[:200] if big else facts
        differ = check_same(router, naive, sample)
        print(
            f"\n  {name}: {stats.rules} rules, {stats.phrases} distinct phrases; "
            f"a decision tries {stats.mean_rules_tried:.1f} rules on average; "
            f"{stats.triage_share:.1%} go to triage"
        )
        if big:
            share = stats.matched_by["synthetic"] / sum(stats.matched_by.values())
            print(f"    {share:.1%} of a 1,000-complaint sample matched a synthetic rule")
        print(f"    same route as the naive baseline: {len(sample) - differ}/{len(sample)}")
        fast = measure(router.decide, facts, budget_s)
        slow = measure(naive.decide, facts, budget_s)
        print(
            f"    Router.decide      {fast.per_s:>10,.0f} decisions/s  {fast.us:>9.1f} µs  "
            f"({fast.calls} decisions, {fast.calls / len(facts):.2f} passes)"
        )
        print(
            f"    naive re.search    {slow.per_s:>10,.0f} decisions/s  {slow.us:>9.1f} µs  "
            f"({slow.calls} decisions)  -> Router is {slow.us / fast.us:.1f}x faster"
        )
    bench_select_owner(example, facts, budget_s)


def bench_select_owner(catalog: Catalog, facts: Sequence[Facts], budget_s: float) -> None:
    router = Router(catalog)
    rng = random.Random(SEED)
    team = [o.key for o in catalog.owners[:5]]
    now = datetime.now(UTC)
    load = {
        k: Load(open_loops=(n := rng.randrange(0, router.owners[k].capacity)), weighted=2.0 * n)
        for k in team
    }
    away = {team[4]: Availability(now - timedelta(days=1), now + timedelta(days=1), team[0])}
    print(
        f"\n  select_owner, team of 5 ({', '.join(team)}); {team[4]} away with delegate {team[0]}"
    )
    strategies: tuple[Strategy, ...] = ("least_loaded", "round_robin")
    for strategy in strategies:
        journey = Journey(
            key="bench",
            name="Bench",
            manager=team[0],
            stages=[Stage(key="new", name="New")],
            team=team,
            strategy=strategy,
        )
        last: list[str | None] = [None]

        def call(f: Facts, journey: Journey = journey, last: list[str | None] = last) -> None:
            last[0] = select_owner(journey, router, f, now, load, away, None, last[0]).owner

        r = measure(call, facts, budget_s)
        print(f"    {strategy:<18} {r.per_s:>10,.0f} calls/s      {r.us:>9.1f} µs")


# --------------------------------------------------------------------------- (b) end to end


@dataclass
class Sample:
    index: int
    complaint_id: str | None = None
    status: int | None = None
    post_s: float = 0.0
    created_perf: float = 0.0
    created_wall: float = 0.0
    seen_perf: float | None = None
    seen_wall: float | None = None
    polls: int = 0
    gets: list[float] = field(default_factory=list)  # each GET's round trip
    error: str | None = None

    @property
    def latency_s(self) -> float | None:
        return None if self.seen_perf is None else self.seen_perf - self.created_perf


class Bodies:
    """CFPB rows mapped with `map_row`; every complaint gets a distinct `external_ref`."""

    def __init__(self, path: Path, rows: int = 5000) -> None:
        self._bases = [map_row(r) for r in read_rows(path, rows) if r.get("Complaint ID")]
        random.Random(SEED).shuffle(self._bases)
        self._run = secrets.token_hex(3)
        self._n = 0

    def next(self) -> dict[str, Any]:
        body = dict(self._bases[self._n % len(self._bases)])
        body["external_ref"] = f"bench-routing-{self._run}-{self._n}"
        self._n += 1
        return body


@dataclass
class Clients:
    intake: httpx.AsyncClient
    routing: httpx.AsyncClient
    poll_s: float
    timeout_s: float


async def one_complaint(index: int, body: dict[str, Any], c: Clients) -> Sample:
    s = Sample(index)
    t0 = time.perf_counter()
    try:
        r = await c.intake.post("/v1/complaints", json=body)
    except httpx.HTTPError as exc:
        s.error = f"POST {type(exc).__name__}: {exc}"
        return s
    s.created_perf = time.perf_counter()
    s.created_wall = time.time()
    s.post_s = s.created_perf - t0
    s.status = r.status_code
    if r.status_code != 201:
        s.error = f"POST {r.status_code}: {r.text[:200]}"
        return s
    s.complaint_id = str(r.json()["id"])
    deadline = s.created_perf + c.timeout_s
    while True:
        g0 = time.perf_counter()
        try:
            g = await c.routing.get(f"/v1/assignments/{s.complaint_id}")
        except httpx.HTTPError as exc:
            s.error = f"GET {type(exc).__name__}: {exc}"
            return s
        s.gets.append(time.perf_counter() - g0)
        s.polls += 1
        if g.status_code == 200:
            s.seen_perf = time.perf_counter()
            s.seen_wall = time.time()
            return s
        if g.status_code != 404:
            s.error = f"GET {g.status_code}: {g.text[:200]}"
            return s
        if time.perf_counter() >= deadline:
            s.error = f"not assigned within {c.timeout_s:.0f} s"
            return s
        await asyncio.sleep(c.poll_s)


async def steady_load(
    bodies: Bodies, c: Clients, rate: float, duration_s: float, max_n: int
) -> tuple[list[Sample], float]:
    """Start one complaint every 1/rate s; returns the samples and the achieved start rate."""
    n = max(1, min(max_n, round(rate * duration_s)))
    tasks = []
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_complaint(i, bodies.next(), c)))
    spread = time.perf_counter() - t0
    samples = list(await asyncio.gather(*tasks))
    return samples, (n - 1) / spread if n > 1 and spread > 0 else float(n)


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / CLK_TCK


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def system_cpu_s(root: int) -> dict[str, float]:
    """CPU seconds of `closeloop up` and each of its child processes, by command."""
    out: dict[str, float] = {"closeloop up": _proc_cpu_s(root)}
    for pid in _children(root):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [w.decode(errors="replace") for w in cmd if w]
        name = next((w for w in words if w.startswith("services.")), Path(words[0]).name)
        out[name] = out.get(name, 0.0) + _proc_cpu_s(pid)
    return out


@dataclass
class System:
    proc: subprocess.Popen[bytes]
    workdir: Path
    intake_url: str
    routing_url: str
    log_path: Path
    started_s: float = 0.0
    stop_s: float = 0.0
    returncode: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


def closeloop_command() -> list[str]:
    script = Path(sys.executable).parent / "closeloop"
    return [str(script)] if script.exists() else [sys.executable, "-m", "shared.cli"]


def start_system(workdir: Path, extra_env: dict[str, str]) -> System:
    intake_port, routing_port = free_port(), free_port()
    while routing_port == intake_port:
        routing_port = free_port()
    env = dict(os.environ)
    for name in ("CLOSELOOP_INTAKE_DATABASE_URL", "CLOSELOOP_ROUTING_DATABASE_URL"):
        env.pop(name, None)  # the temporary directory's SQLite files, always
    env["CLOSELOOP_INTAKE_PORT"] = str(intake_port)
    env["CLOSELOOP_ROUTING_PORT"] = str(routing_port)
    env.update(extra_env)
    log_path = workdir / "closeloop-up.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*closeloop_command(), "up"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C of the bench reaches it only through stop_system
        )
    system = System(
        proc,
        workdir,
        f"http://127.0.0.1:{intake_port}",
        f"http://127.0.0.1:{routing_port}",
        log_path,
        extra_env=extra_env,
    )
    t0 = time.perf_counter()
    deadline = t0 + STARTUP_TIMEOUT_S
    pending = [system.intake_url, system.routing_url]
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"closeloop up exited with {proc.returncode}:\n{tail(log_path)}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"closeloop up not healthy in {STARTUP_TIMEOUT_S:.0f} s")
        try:
            if httpx.get(pending[0] + "/healthz", timeout=1).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # waiting for another process to come up
    system.started_s = time.perf_counter() - t0
    return system


def stop_system(system: System) -> None:
    """SIGINT, as Ctrl-C: `closeloop up` stops its services and its broker."""
    proc = system.proc
    if proc.poll() is None:
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"  closeloop up still running after {STOP_TIMEOUT_S:.0f} s: killing its group")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        system.stop_s = time.perf_counter() - t0
    system.returncode = proc.returncode


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _ts(value: str | None) -> float | None:
    """A SQLite UTCDateTime text (naive UTC) as a POSIX timestamp."""
    if value is None:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


@dataclass
class Stamps:
    created: float | None = None  # intake outbox row (in the POST's transaction)
    sent: float | None = None  # intake relay: published and acknowledged
    handled: float | None = None  # routing inbox row: the handler starts
    written: float | None = None  # routing outbox complaint.assigned: just before the commit


def read_stamps(workdir: Path) -> dict[str, Stamps]:
    """Per complaint id: intake outbox created/sent, routing inbox and outbox times."""
    data = workdir / ".closeloop"
    stamps: dict[str, Stamps] = {}
    by_event: dict[str, Stamps] = {}
    with contextlib.closing(sqlite3.connect(f"file:{data / 'intake.db'}?mode=ro", uri=True)) as db:
        for event_id, payload, created, sent in db.execute(
            "SELECT event_id, payload, created_at, sent_at FROM outbox "
            "WHERE event_type LIKE '%complaint.received%'"
        ):
            cid = str(uuid.UUID(json.loads(payload)["complaint_id"]))
            s = stamps.setdefault(cid, Stamps(created=_ts(created), sent=_ts(sent)))
            by_event[event_id] = s
    with contextlib.closing(sqlite3.connect(f"file:{data / 'routing.db'}?mode=ro", uri=True)) as db:
        for event_id, handled in db.execute(
            "SELECT event_id, handled_at FROM inbox WHERE event_type LIKE '%complaint.received%'"
        ):
            if event_id in by_event:
                by_event[event_id].handled = _ts(handled)
        for payload, created in db.execute(
            "SELECT payload, created_at FROM outbox WHERE event_type LIKE '%complaint.assigned%'"
        ):
            key = str(uuid.UUID(json.loads(payload)["complaint_id"]))
            if key in stamps and stamps[key].written is None:
                stamps[key].written = _ts(created)
    return stamps


def report_e2e(samples: list[Sample], stamps: dict[str, Stamps], rate: float) -> None:
    ok = [s for s in samples if s.latency_s is not None]
    failed = [s for s in samples if s.latency_s is None]
    print(f"\n  {len(samples)} complaints posted at {rate:.1f}/s; {len(ok)} assigned")
    print(dist_line("POST /v1/complaints (to 201)", [s.post_s for s in samples if s.status]))
    print(dist_line("201 -> assignment readable (200)", [s.latency_s for s in ok if s.latency_s]))
    polls = sum(s.polls for s in samples)
    print(dist_line("each GET /v1/assignments/{id}", [g for s in samples for g in s.gets]))
    print(f"  polls: {polls} GETs, {polls / max(1, len(samples)):.1f} per complaint")
    if failed:
        print(f"  NOT ASSIGNED / failed: {len(failed)}")
        for reason, n in Counter(s.error or "?" for s in failed).most_common(5):
            print(f"    {n:>5}  {reason}")
    parts: dict[str, list[float]] = {
        "201 -> outbox row published": [],
        "published -> routing handler start": [],
        "handler start -> assignment written": [],
        "written -> bench sees 200": [],
    }
    for s in ok:
        st = stamps.get(s.complaint_id or "")
        if st is None or st.sent is None or st.handled is None or st.written is None:
            continue
        if s.seen_wall is None:
            continue
        steps = (
            st.sent - s.created_wall,
            st.handled - st.sent,
            st.written - st.handled,
            s.seen_wall - st.written,
        )
        for key, v in zip(parts, steps, strict=True):
            parts[key].append(v)
    n = len(next(iter(parts.values())))
    print(f"\n  where it goes (server timestamps of {n} complaints, same clock):")
    for key, values in parts.items():
        print(dist_line(key, values))
    means = {k: sum(v) / len(v) for k, v in parts.items() if v}
    if means:
        print(
            "  means: "
            + ", ".join(f"{k.split(' -> ')[-1]} {v * 1000:.1f} ms" for k, v in means.items())
        )


async def run_e2e_async(
    system: System, args: argparse.Namespace, cpu_root: int
) -> tuple[list[Sample], float]:
    settings = ServiceSettings()
    clock = SystemClock()
    client_token = issue_token(settings, clock, role="intake-client", subject="bench")
    admin_token = issue_token(settings, clock, role="admin", subject="bench-admin")
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    bodies = Bodies(args.csv)
    async with (
        httpx.AsyncClient(
            base_url=system.intake_url,
            headers={"Authorization": f"Bearer {client_token}"},
            timeout=30,
            limits=limits,
        ) as intake,
        httpx.AsyncClient(
            base_url=system.routing_url,
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=30,
            limits=limits,
        ) as routing,
    ):
        warm = Clients(intake, routing, args.poll_ms / 1000, 120.0)
        t0 = time.perf_counter()
        first = await one_complaint(-1, bodies.next(), warm)
        if first.latency_s is None:
            raise RuntimeError(f"the first complaint was not assigned: {first.error}")
        print(
            f"  first complaint assigned {first.latency_s * 1000:.0f} ms after its 201 "
            f"(consumer groups joining); warm-up total {time.perf_counter() - t0:.1f} s"
        )
        c = Clients(intake, routing, args.poll_ms / 1000, args.assign_timeout)
        if args.warmup > 0:
            warmed, _ = await steady_load(bodies, c, args.rate, args.warmup, args.max_complaints)
            lat = [s.latency_s for s in warmed if s.latency_s is not None]
            p50 = percentile(lat, 50) * 1000 if lat else float("nan")
            print(f"  warm-up: {len(warmed)} complaints in {args.warmup:.0f} s, p50 {p50:.0f} ms")
        cpu0 = system_cpu_s(cpu_root)
        busy0 = machine_cpu_s()
        own0 = time.process_time()
        t1 = time.perf_counter()
        samples, achieved = await steady_load(
            bodies, c, args.rate, args.duration, args.max_complaints
        )
        wall = time.perf_counter() - t1
        cpu1 = system_cpu_s(cpu_root)
        busy = machine_cpu_s() - busy0
        own = time.process_time() - own0
    used = {k: cpu1.get(k, 0.0) - cpu0.get(k, 0.0) for k in cpu1}
    ours = sum(used.values()) + own
    print(
        f"  measured window {wall:.1f} s; CPU used (cores): "
        + ", ".join(f"{k} {v / wall:.2f}" for k, v in used.items())
        + f", bench {own / wall:.2f}"
    )
    print(
        f"  machine: {busy / wall:.2f} of {os.cpu_count()} cores busy, "
        f"{max(0.0, busy - ours) / wall:.2f} of them by other work; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    if args.samples_csv:
        write_samples(args.samples_csv, samples, t1)
    return samples, achieved


def write_samples(path: Path, samples: Sequence[Sample], t0: float) -> None:
    """One row per complaint: when it was posted (s into the window), POST and total latency."""
    with path.open("w", encoding="utf-8") as out:
        out.write("index,complaint_id,created_s,post_ms,latency_ms,polls,error\n")
        for s in samples:
            latency = f"{s.latency_s * 1000:.1f}" if s.latency_s is not None else ""
            out.write(
                f"{s.index},{s.complaint_id or ''},{s.created_perf - t0:.3f},"
                f"{s.post_s * 1000:.1f},{latency},{s.polls},{(s.error or '').replace(',', ';')}\n"
            )


def bench_e2e(args: argparse.Namespace) -> None:
    extra_env = dict(kv.split("=", 1) for kv in args.set or [])
    print(
        f"\n(b) end to end: closeloop up (SQLite, embedded broker), {args.rate:g}/s for "
        f"{args.duration:g} s, poll every {args.poll_ms:g} ms"
        + (f", env {extra_env}" if extra_env else "")
    )
    workdir = Path(tempfile.mkdtemp(prefix="closeloop-bench-routing-"))
    system: System | None = None
    samples: list[Sample] = []
    achieved = 0.0
    try:
        system = start_system(workdir, extra_env)
        print(
            f"  started in {system.started_s:.1f} s in {workdir} "
            f"(intake {system.intake_url}, routing {system.routing_url})"
        )
        print(
            "  "
            + "\n  ".join(
                line
                for line in tail(system.log_path, 40).splitlines()
                if line.startswith(("broker", "topics", "catalog"))
            )
        )
        samples, achieved = asyncio.run(run_e2e_async(system, args, system.proc.pid))
    finally:
        if system is not None:
            stop_system(system)
            print(f"  stopped with SIGINT in {system.stop_s:.1f} s, exit code {system.returncode}")
            if system.returncode not in (0, None):
                print(tail(system.log_path))
    if samples:
        report_e2e(samples, read_stamps(workdir), achieved)
    if args.keep:
        print(f"  kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__)
    parser.add_argument("--duration", type=float, default=30.0, help="end-to-end seconds (30)")
    parser.add_argument("--rate", type=float, default=20.0, help="complaints per second (20)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds at --rate (5)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="assignment poll interval")
    parser.add_argument("--assign-timeout", type=float, default=30.0, help="seconds (30)")
    parser.add_argument("--max-complaints", type=int, default=10_000, help="bound on the count")
    parser.add_argument("--decide-seconds", type=float, default=3.0, help="per measurement (3)")
    parser.add_argument("--rules", type=int, default=500, help="synthetic rules (500)")
    parser.add_argument("--csv", type=Path, default=None, help="CFPB CSV (the repo's slice)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", help="env for the system")
    parser.add_argument("--skip-decide", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--samples-csv", type=Path, help="write each complaint's timings here")
    args = parser.parse_args(argv)
    args.csv = args.csv or default_csv_path()
    print(
        f"bench.routing  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  Python {platform.python_version()}"
        f"  {os.cpu_count()} CPUs  {platform.machine()}"
    )
    if not args.skip_decide:
        bench_decide(load_facts(args.csv), args.decide_seconds, args.rules)
    if not args.skip_e2e:
        bench_e2e(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
