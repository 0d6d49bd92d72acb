"""Intake throughput and latency against a raw-driver floor, in one run on one machine.

    python -m bench.intake [--db sqlite|postgresql|both] [--duration S] [--concurrency 1,16,64]

For each database it measures, at each concurrency, over a fixed duration after a short warm-up:

- `floor`:  `bench.floor` - the same body validated with the same Pydantic model, one complaint
            row + one outbox row written in one transaction with the raw driver, 201.
- `single`: `POST /v1/complaints` of the real intake service (bearer token, no Idempotency-Key).
- `batch`:  `POST /v1/complaints:batch` with `--batch-size` (500) complaints per request.

Every server is one uvicorn worker in a subprocess on a free 127.0.0.1 port. The load comes from
this process: `httpx.AsyncClient` (HTTP/1.1, one connection per concurrent client), or with
`--client raw` a minimal asyncio HTTP/1.1 client that costs far less CPU per request - on a small
machine httpx itself saturates a core before a fast server does (see the `cli CPU` column).
Each point stops by itself after `--duration` (or `--max-requests`), then waits for the requests
in flight (at most `--drain-timeout`).

Bodies are real CFPB rows (~1 KB as JSON) mapped with `shared.cfpb.map_row`; every complaint
gets a distinct `external_ref` and a customer ref from a pool (5,000). Before the service
scenarios one complaint per customer ref is posted (batches), so measured POSTs come from known
customers with a contact history, as most would in production (`--no-seed` skips this).

SQLite: a migrated file in a temporary directory. PostgreSQL: a fresh `closeloop_bench_<hex>`
database on `--pg-admin-url`, migrated, dropped (`WITH (FORCE)`) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
from psycopg import sql

from bench.floor import PATH as FLOOR_PATH
from services.intake import MIGRATIONS
from services.intake.config import IntakeSettings
from shared.auth import issue_token
from shared.cfpb import default_csv_path, map_row, read_rows
from shared.clock import SystemClock
from shared.db.migrate import upgrade

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SCENARIOS = ("floor", "single", "batch")
CLIENT_SUBJECT = "bench"
SERVICE_FACTORY = "services.intake.api:create_app"
BODY_MIN_BYTES, BODY_MAX_BYTES = 850, 1300
STARTUP_TIMEOUT_S = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------- bodies


class Bodies:
    """Request bodies from real CFPB rows; every complaint gets a distinct `external_ref`."""

    def __init__(self, csv_path: Path, customers: int, rows: int = 5000) -> None:
        bases = []
        for row in read_rows(csv_path, rows):
            body = map_row(row)
            if BODY_MIN_BYTES <= len(json.dumps(body)) <= BODY_MAX_BYTES:
                bases.append(body)
        if not bases:
            raise SystemExit(
                f"no CFPB row of {BODY_MIN_BYTES}-{BODY_MAX_BYTES} bytes in {csv_path}"
            )
        self._bases = bases
        self._run = secrets.token_hex(3)
        self._customers = [f"bench-{self._run}-cust-{i:05d}" for i in range(customers)]
        self._n = 0

    def item(self) -> dict[str, Any]:
        n = self._n
        self._n += 1
        body = dict(self._bases[n % len(self._bases)])
        body["customer"] = {"ref": self._customers[n % len(self._customers)], "tier": "standard"}
        body["external_ref"] = f"bench-{self._run}-{n}"
        return body

    def single(self) -> bytes:
        return json.dumps(self.item(), separators=(",", ":")).encode()

    def batch(self, size: int) -> bytes:
        items = [self.item() for _ in range(size)]
        return json.dumps({"items": items}, separators=(",", ":")).encode()

    def __len__(self) -> int:
        return len(self._bases)

    def mean_single_bytes(self) -> float:
        sizes = [len(json.dumps(b, separators=(",", ":"))) for b in self._bases]
        return sum(sizes) / len(sizes)


# -------------------------------------------------------------------------------- measurement


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def host_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = float(sum(values[:8]))
    return total - idle, total


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class Result:
    db: str
    scenario: str
    concurrency: int
    requests: int = 0
    complaints: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    server_cpu_pct: float = 0.0
    client_cpu_pct: float = 0.0
    host_busy_pct: float = 0.0
    error_samples: list[str] = field(default_factory=list)

    @property
    def req_s(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def complaints_s(self) -> float:
        return self.complaints / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def cpu_ms_per_complaint(self) -> float:
        """Server CPU per stored complaint: less sensitive to other load than throughput."""
        rate = self.complaints_s
        return 10 * self.server_cpu_pct / rate if rate > 0 else float("nan")


@dataclass
class Target:
    base: str
    path: str
    headers: dict[str, str]
    make_body: Callable[[], bytes]
    items: int
    expected_status: int
    batch: bool


class Poster(Protocol):
    """One client connection: posts a body, returns (status, response body)."""

    async def post(self, content: bytes) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class HttpxPoster:
    """`httpx.AsyncClient`, HTTP/1.1, one connection.

    One client per worker rather than one client with `concurrency` connections: httpcore scans
    its whole pool on every request, which made one shared client ~40% slower at 16 connections.
    """

    def __init__(self, target: Target, timeout_s: float) -> None:
        self._url = target.base + target.path
        self._client = httpx.AsyncClient(
            http1=True,
            http2=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=httpx.Timeout(timeout_s),
            headers=target.headers,
        )

    async def post(self, content: bytes) -> tuple[int, bytes]:
        response = await self._client.post(self._url, content=content)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


class RawPoster:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (`--client raw`).

    It spends a fraction of httpx's CPU per request, so the server, not the load generator, is
    what saturates first on a small machine.
    """

    def __init__(self, target: Target, timeout_s: float) -> None:
        parsed = httpx.URL(target.base)
        self._host = parsed.host
        self._port = parsed.port or 80
        self._timeout_s = timeout_s
        lines = [f"POST {target.path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        lines += [f"{k}: {v}" for k, v in target.headers.items()]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, content: bytes) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._exchange(content)
        except BaseException:
            await self.aclose()
            raise

    async def _exchange(self, content: bytes) -> tuple[int, bytes]:
        if self._reader is not None and self._reader.at_eof():
            await self.aclose()  # the server closed an idle keep-alive connection
        reused = self._writer is not None
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._reader, self._writer
        writer.write(self._head + str(len(content)).encode() + b"\r\n\r\n" + content)
        if len(content) > 65536:
            await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            partial = getattr(exc, "partial", b"")
            if not reused or partial:
                raise
            # Closed while idle before we wrote: retry once on a new connection (as httpcore).
            await self.aclose()
            return await self._exchange(content)
        status = int(head[9:12])
        headers = head.lower()
        marker = headers.find(b"\r\ncontent-length:")
        if marker >= 0:
            value_start = marker + len(b"\r\ncontent-length:")
            length = int(headers[value_start : headers.index(b"\r\n", value_start)])
            body = await reader.readexactly(length)
        elif b"\r\ntransfer-encoding: chunked" in headers:
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            body = b"".join(chunks)
        else:
            body = await reader.read()
            await self.aclose()
        if b"\r\nconnection: close" in headers:
            await self.aclose()
        return status, body

    async def aclose(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


CLIENTS: dict[str, Callable[[Target, float], Poster]] = {"httpx": HttpxPoster, "raw": RawPoster}


def _stored(status: int, body: bytes, target: Target) -> int:
    """Complaints the response says were stored (0 when it is not the expected answer)."""
    if status != target.expected_status:
        return 0
    if not target.batch:
        return 1
    accepted: int = json.loads(body).get("accepted", 0)
    return accepted


async def run_load(
    posters: Sequence[Poster],
    target: Target,
    result: Result,
    *,
    duration_s: float,
    max_requests: int,
    drain_timeout_s: float,
) -> None:
    """One worker per poster posts until `duration_s` or `max_requests`, then drains."""
    latencies: list[float] = []
    started = 0
    first = time.perf_counter()
    last = first
    deadline = first + duration_s

    def failed(sample: str) -> None:
        result.errors += 1
        if len(result.error_samples) < 5:
            result.error_samples.append(sample)

    async def worker(poster: Poster) -> None:
        nonlocal started, last
        while time.perf_counter() < deadline and started < max_requests:
            started += 1
            content = target.make_body()
            t0 = time.perf_counter()
            try:
                status, body = await poster.post(content)
            except (httpx.HTTPError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                failed(f"{type(exc).__name__}: {exc}")
                continue
            t1 = time.perf_counter()
            last = max(last, t1)
            stored = _stored(status, body, target)
            result.requests += 1
            result.complaints += stored
            if stored == target.items:
                latencies.append(t1 - t0)
            else:
                failed(f"{status}: {body[:300]!r}")

    tasks = [asyncio.create_task(worker(p)) for p in posters]
    _done, pending = await asyncio.wait(tasks, timeout=duration_s + drain_timeout_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
        failed(f"{len(pending)} requests still running after the drain; cancelled")
        result.errors += len(pending) - 1
    result.elapsed_s = last - first
    latencies.sort()
    result.p50_ms = percentile(latencies, 0.50) * 1000
    result.p99_ms = percentile(latencies, 0.99) * 1000


# ------------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without any CLOSELOOP_/DATABASE_URL setting, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("CLOSELOOP_", "BENCH_FLOOR_")) and k.upper() != "DATABASE_URL"
    }
    env.update(extra)
    return env


@contextlib.contextmanager
def uvicorn_server(factory: str, env: dict[str, str], log_dir: Path) -> Iterator[tuple[str, int]]:
    """One uvicorn worker serving `factory`; yields (base URL, pid)."""
    port = free_port()
    log_path = log_dir / f"{factory.replace(':', '_')}-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=_clean_env(env), stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, base, log_path)
            yield base, proc.pid
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    give_up = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log_path.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()}")


# ---------------------------------------------------------------------------------- databases


@contextlib.contextmanager
def bench_database(kind: str, admin_url: str, tmp: Path) -> Iterator[str]:
    """A migrated, empty intake database for one run (dropped / deleted afterwards)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'intake-bench.db'}"
        upgrade(MIGRATIONS, url)
        yield url
        return
    name = f"closeloop_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = admin_url.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    try:
        upgrade(MIGRATIONS, url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def database_version(kind: str, url: str) -> str:
    if kind == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


# ---------------------------------------------------------------------------------- scenarios


def seed_customers(base: str, headers: dict[str, str], bodies: Bodies, opts: Options) -> None:
    """One complaint per customer of the pool, so the measured POSTs mostly come from known
    customers with a contact history (as in production) rather than all creating customers."""
    t0 = time.perf_counter()
    size = min(opts.batch_size, 1000)
    done = 0
    with httpx.Client(headers=headers, timeout=opts.drain_timeout_s) as client:
        while done < opts.customers:
            n = min(size, opts.customers - done)
            response = client.post(f"{base}/v1/complaints:batch", content=bodies.batch(n))
            if response.status_code != 200 or response.json().get("accepted") != n:
                raise RuntimeError(f"seeding failed: {response.status_code} {response.text[:300]}")
            done += n
    print(
        f"  (seeded {done} customers, one complaint each, in {time.perf_counter() - t0:.1f} s)",
        flush=True,
    )


@dataclass
class Options:
    dbs: list[str]
    concurrency: list[int]
    duration_s: float
    warmup_s: float
    scenarios: list[str]
    batch_size: int
    customers: int
    max_requests: int
    drain_timeout_s: float
    pg_admin_url: str
    json_path: Path | None
    client: str
    seed: bool


async def measure(db: str, scenario: str, pid: int, target: Target, opts: Options) -> list[Result]:
    results = []
    for conc in opts.concurrency:
        posters = [CLIENTS[opts.client](target, opts.drain_timeout_s) for _ in range(conc)]
        try:
            warm = Result(db, scenario, conc)
            await run_load(
                posters,
                target,
                warm,
                duration_s=opts.warmup_s,
                max_requests=opts.max_requests,
                drain_timeout_s=opts.drain_timeout_s,
            )
            result = Result(db, scenario, conc)
            srv0, cli0, (busy0, total0) = proc_cpu_s(pid), time.process_time(), host_cpu()
            await run_load(
                posters,
                target,
                result,
                duration_s=opts.duration_s,
                max_requests=opts.max_requests,
                drain_timeout_s=opts.drain_timeout_s,
            )
            srv1, cli1, (busy1, total1) = proc_cpu_s(pid), time.process_time(), host_cpu()
        finally:
            await asyncio.gather(*(p.aclose() for p in posters), return_exceptions=True)
        wall = max(result.elapsed_s, 1e-9)
        result.server_cpu_pct = 100 * (srv1 - srv0) / wall
        result.client_cpu_pct = 100 * (cli1 - cli0) / wall
        result.host_busy_pct = 100 * (busy1 - busy0) / max(total1 - total0, 1.0)
        if warm.errors:
            result.error_samples[:0] = [f"warm-up: {s}" for s in warm.error_samples[:2]]
        print("  " + format_row(result), flush=True)
        results.append(result)
    return results


async def bench_db(kind: str, bodies: Bodies, opts: Options, tmp: Path) -> tuple[str, list[Result]]:
    results: list[Result] = []
    with bench_database(kind, opts.pg_admin_url, tmp) as url:
        version = database_version(kind, url)
        print(f"\n== {kind}: {version} ({url.rsplit('@', 1)[-1]})", flush=True)
        print("  " + HEADER, flush=True)
        settings = IntakeSettings(
            database_url=url,
            rate_limit="1000000/second",
            kafka_bootstrap="127.0.0.1:9",
            auth_signing_key=f"bench-{secrets.token_hex(16)}",
            log_level="WARNING",
        )
        token = issue_token(settings, SystemClock(), role="intake-client", subject=CLIENT_SUBJECT)
        json_headers = {"Content-Type": "application/json"}
        auth_headers = {**json_headers, "Authorization": f"Bearer {token}"}
        service_env = {
            "CLOSELOOP_INTAKE_DATABASE_URL": url,
            "CLOSELOOP_RATE_LIMIT": settings.rate_limit,
            "CLOSELOOP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "CLOSELOOP_AUTH_SIGNING_KEY": settings.auth_signing_key,
            "CLOSELOOP_LOG_LEVEL": settings.log_level,
        }
        if "floor" in opts.scenarios:
            floor_env = {"BENCH_FLOOR_URL": url}
            with uvicorn_server("bench.floor:create_app", floor_env, tmp) as (base, pid):
                floor = Target(base, FLOOR_PATH, json_headers, bodies.single, 1, 201, False)
                results += await measure(kind, "floor", pid, floor, opts)
        if "single" in opts.scenarios or "batch" in opts.scenarios:
            with uvicorn_server(SERVICE_FACTORY, service_env, tmp) as (base, pid):
                if opts.seed:
                    seed_customers(base, auth_headers, bodies, opts)
                if "single" in opts.scenarios:
                    single = Target(
                        base, "/v1/complaints", auth_headers, bodies.single, 1, 201, False
                    )
                    results += await measure(kind, "single", pid, single, opts)
                if "batch" in opts.scenarios:
                    size = opts.batch_size
                    batch = Target(
                        base,
                        "/v1/complaints:batch",
                        auth_headers,
                        lambda: bodies.batch(size),
                        size,
                        200,
                        True,
                    )
                    results += await measure(kind, f"batch{size}", pid, batch, opts)
    return version, results


# ------------------------------------------------------------------------------------- report

HEADER = (
    f"{'scenario':<10} {'conc':>4} {'req/s':>8} {'compl/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'errors':>6} {'srv CPU':>7} {'cli CPU':>7} {'host':>5} {'CPU ms/compl':>12}"
)


def format_row(r: Result) -> str:
    return (
        f"{r.scenario:<10} {r.concurrency:>4} {r.req_s:>8.1f} {r.complaints_s:>8.0f} "
        f"{r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>6} {r.server_cpu_pct:>6.0f}% "
        f"{r.client_cpu_pct:>6.0f}% {r.host_busy_pct:>4.0f}% {r.cpu_ms_per_complaint:>12.2f}"
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ratios(results: list[Result], batch_size: int) -> list[str]:
    """The issue's two ratios, per concurrency and best against best."""
    by = {(r.scenario, r.concurrency): r for r in results}
    batch = f"batch{batch_size}"
    lines = []
    for conc in sorted({r.concurrency for r in results}):
        floor, single, bat = (
            by.get(("floor", conc)),
            by.get(("single", conc)),
            by.get((batch, conc)),
        )
        parts = [f"c={conc:<3}"]
        if floor and single and floor.req_s > 0:
            share = 100 * single.req_s / floor.req_s
            parts.append(f"single/floor {share:5.1f}% (p99 {single.p99_ms:.1f} ms)")
        if bat and single and single.complaints_s > 0:
            parts.append(f"batch/single {bat.complaints_s / single.complaints_s:5.1f}x")
        lines.append("  " + "   ".join(parts))
    floor16, single16 = by.get(("floor", 16)), by.get(("single", 16))
    if floor16 and single16 and floor16.req_s > 0:
        share = 100 * single16.req_s / floor16.req_s
        lines.append(
            f"  aim 1: single POST >= 60% of the floor at c=16: {share:.1f}% -> "
            f"{_verdict(share >= 60)}; p99 <= 50 ms: {single16.p99_ms:.1f} ms -> "
            f"{_verdict(single16.p99_ms <= 50)}"
        )
    singles = [r for r in results if r.scenario == "single"]
    batches = [r for r in results if r.scenario == batch]
    if singles and batches:
        best_single = max(singles, key=lambda r: r.complaints_s)
        best_batch = max(batches, key=lambda r: r.complaints_s)
        if best_single.complaints_s > 0:
            factor = best_batch.complaints_s / best_single.complaints_s
            lines.append(
                f"  aim 2: batch complaints/s >= 10x single (best {best_batch.complaints_s:.0f} "
                f"at c={best_batch.concurrency} / best {best_single.complaints_s:.0f} at "
                f"c={best_single.concurrency}): {factor:.1f}x -> {_verdict(factor >= 10)}"
            )
    return lines


def machine() -> dict[str, str]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = os.cpu_count() or 0
    load1, load5, _ = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(affinity),
        "cpu": model or platform.processor() or "?",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": f"{load1:.2f} {load5:.2f}",
    }


# ---------------------------------------------------------------------------------------- cli


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__.split("\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per point")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per point")
    p.add_argument("--concurrency", default="1,16,64", help="comma-separated client counts")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="floor,single,batch")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--customers", type=int, default=5000, help="customer ref pool size")
    p.add_argument("--max-requests", type=int, default=1_000_000, help="cap per point")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="also the request timeout")
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    p.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="httpx",
        help="load generator: httpx.AsyncClient, or a minimal asyncio HTTP/1.1 client",
    )
    p.add_argument(
        "--no-seed",
        action="store_true",
        help="do not post one complaint per customer ref before the service scenarios",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = p.parse_args(argv)
    scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return Options(
        dbs=["sqlite", "postgresql"] if a.db == "both" else [a.db],
        concurrency=[int(c) for c in a.concurrency.split(",") if c.strip()],
        duration_s=a.duration,
        warmup_s=a.warmup,
        scenarios=scenarios,
        batch_size=a.batch_size,
        customers=a.customers,
        max_requests=a.max_requests,
        drain_timeout_s=a.drain_timeout,
        pg_admin_url=a.pg_admin_url,
        json_path=a.json,
        client=a.client,
        seed=not a.no_seed,
    )


async def run(opts: Options) -> dict[str, Any]:
    info = machine()
    bodies = Bodies(default_csv_path(), opts.customers)
    print(
        f"machine: nproc={info['nproc']} cpu={info['cpu']!r} python={info['python']} "
        f"({info['platform']}), load average at start {info['loadavg_at_start']}"
    )
    print(
        f"bodies: {len(bodies)} CFPB rows, mean {bodies.mean_single_bytes():.0f} bytes; "
        f"{opts.duration_s:g} s per point after {opts.warmup_s:g} s warm-up; "
        f"concurrency {','.join(map(str, opts.concurrency))}; batch {opts.batch_size}; "
        f"{opts.customers} customer refs; load generator: {opts.client} (in this process)"
    )
    print(
        "srv CPU = the uvicorn worker, cli CPU = this load generator, host = all cores busy; "
        "CPU ms/compl = server CPU per stored complaint"
    )
    report: dict[str, Any] = {"machine": info, "options": asdict(opts), "databases": {}}
    with tempfile.TemporaryDirectory(prefix="closeloop-bench-") as tmp:
        for kind in opts.dbs:
            version, results = await bench_db(kind, bodies, opts, Path(tmp))
            lines = ratios(results, opts.batch_size)
            print("\n".join(lines), flush=True)
            for r in results:
                for sample in r.error_samples:
                    print(f"  ! {r.scenario} c={r.concurrency}: {sample}")
            report["databases"][kind] = {
                "version": version,
                "results": [
                    {
                        **asdict(r),
                        "req_s": r.req_s,
                        "complaints_s": r.complaints_s,
                        "cpu_ms_per_complaint": r.cpu_ms_per_complaint,
                    }
                    for r in results
                ],
                "ratios": lines,
            }
    return report


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    try:
        import uvloop

        report = uvloop.run(run(opts))
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        report = asyncio.run(run(opts))
    if opts.json_path:
        opts.json_path.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nresults written to {opts.json_path}")


if __name__ == "__main__":
    main()
