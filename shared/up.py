"""`closeloop up`: broker, topics, migrations, every service (API + worker), tokens."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import yaml

from shared.auth import issue_token
from shared.bus.kafka import BrokerError, ensure_topics
from shared.clock import SystemClock
from shared.config import ServiceSettings
from shared.db.migrate import upgrade
from shared.events import topics
from shared.services import SERVICES, ServiceInfo, by_name
from shared.testing.broker import TansuBroker, free_port

log = logging.getLogger(__name__)

DATA_DIR = Path(".closeloop")
LOCAL_TOKENS = (
    ("intake-client", "demo-contact-center", ()),
    # From deploy/examples/catalog.yaml: an owner in the busiest journey and its manager.
    ("owner", "carmen.diaz", ()),
    ("manager", "mgr-credit-reporting", ("credit-report",)),
    ("admin", "admin", ()),
)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _db_url(info: ServiceInfo) -> str:
    specific = os.environ.get(f"CLOSELOOP_{info.name.upper()}_DATABASE_URL")
    return specific or f"sqlite:///{DATA_DIR / (info.name + '.db')}"


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with code {proc.returncode}; see its log")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # waiting on another process to bind its port
    raise RuntimeError(f"{url} did not become healthy in {timeout_s}s")


def up(
    with_logs: bool = False,
    alerts_webhook: str | None = None,
    alerts_webhook_secret: str | None = None,
    alerts_smtp: str | None = None,
) -> int:
    """Run the whole system locally until Ctrl-C; alerts go to the given webhook/SMTP server."""
    DATA_DIR.mkdir(exist_ok=True)
    (DATA_DIR / "logs").mkdir(exist_ok=True)
    env = dict(os.environ)
    broker: TansuBroker | None = None
    if not env.get("CLOSELOOP_KAFKA_BOOTSTRAP"):
        port = 9092 if _port_free(9092) else free_port()
        broker = TansuBroker(port, log_path=DATA_DIR / "logs" / "broker.log").start()
        env["CLOSELOOP_KAFKA_BOOTSTRAP"] = broker.bootstrap
        print(f"broker       Tansu (in-memory, development only) at {broker.bootstrap}")
    # Local runs: 6 s sessions make consumer-group joins take ~3 s instead of ~23 s.
    env.setdefault("CLOSELOOP_KAFKA_SESSION_TIMEOUT_MS", "6000")
    env.setdefault("CLOSELOOP_KAFKA_HEARTBEAT_INTERVAL_MS", "2000")
    env.setdefault("CLOSELOOP_WEBHOOK_ALLOWED_HOSTS", '["127.0.0.0/8", "::1", "localhost"]')
    env.setdefault("CLOSELOOP_RECONCILE_AFTER_S", "60")
    settings = ServiceSettings(kafka_bootstrap=env["CLOSELOOP_KAFKA_BOOTSTRAP"])
    procs: list[subprocess.Popen[bytes]] = []
    try:
        created = ensure_topics(settings, [settings.topic(t) for t in topics.ALL])
        print(f"topics       {len(created)} created, {len(topics.ALL) - len(created)} existed")
        for info in SERVICES:
            url = _db_url(info)
            upgrade(info.migrations, url)
            print(f"migrated     {info.name:<12} {url.split('@')[-1]}")
            if info.name == "routing":
                _seed_catalog(url)
            if info.name == "followup":
                _seed_followup(url, alerts_webhook, alerts_webhook_secret, alerts_smtp)
            svc_env = {
                **env,
                f"CLOSELOOP_{info.name.upper()}_DATABASE_URL": url,
                "CLOSELOOP_HTTP_PORT": str(info.port),
                # The console asks routing for explanations, handovers and dry-runs.
                "CLOSELOOP_ROUTING_URL": env.get("CLOSELOOP_ROUTING_URL")
                or f"http://127.0.0.1:{by_name('routing').port}",
            }
            log_file = open(DATA_DIR / "logs" / f"{info.name}.log", "ab")  # noqa: SIM115
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", info.module, "all"],
                    env=svc_env,
                    stdout=None if with_logs else log_file,
                    stderr=subprocess.STDOUT,
                )
            )
        for info, proc in zip(SERVICES, procs, strict=True):
            _wait_healthy(f"http://127.0.0.1:{info.port}/healthz", proc)
        _print_welcome(settings)
        stop = {"now": False}

        def _stop(*_: object) -> None:
            stop["now"] = True

        # Both set explicitly: a shell that started us in the background may ignore SIGINT.
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        while not stop["now"]:
            for info, proc in zip(SERVICES, procs, strict=True):
                if proc.poll() is not None:
                    print(f"{info.name} exited with code {proc.returncode}; stopping")
                    return 1
            time.sleep(0.5)  # supervising child processes: nothing to await but their exit
    except KeyboardInterrupt:
        pass
    except (BrokerError, RuntimeError) as exc:
        print(f"closeloop up failed: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\nstopping ...")
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if broker is not None:
            broker.stop()
        print("stopped")
    return 0


EXAMPLE_CATALOG = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "catalog.yaml"


def _seed_catalog(url: str) -> None:
    """Load the example catalog into an empty routing database."""
    module = importlib.import_module("services.routing.bootstrap")
    container = module.bootstrap(module.RoutingSettings(database_url=url))
    try:
        if container.service.has_catalog():
            return
        if not EXAMPLE_CATALOG.exists():
            print("catalog      none yet: apply one with `closeloop catalog apply FILE`")
            return
        document = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
        version = container.service.apply(document, "closeloop up", "example catalog")
        print(f"catalog      example catalog loaded as version {version} ({EXAMPLE_CATALOG.name})")
    finally:
        container.close()


def _seed_followup(url: str, webhook: str | None, secret: str | None, smtp: str | None) -> None:
    """Default SLA policies, calendar, ladder and taxonomy; point alert channels as asked."""
    module = importlib.import_module("services.followup.local")
    seeded = module.seed_local(url, webhook_url=webhook, webhook_secret=secret, smtp=smtp)
    if seeded.loaded:
        print(f"followup     default SLA policies, calendar, ladder ({module.DEFAULTS.name})")
    if webhook:
        print(f"alerts       webhook {webhook}  (HMAC-SHA256 secret {seeded.webhook_secret})")
    if smtp:
        print(f"alerts       e-mail through SMTP {smtp}")
    if not webhook and not smtp:
        print("alerts       listed at /v1/alerts; --alerts-webhook URL or --alerts-smtp HOST:PORT")
        print("             also delivers them")


def _print_welcome(settings: ServiceSettings) -> None:
    clock = SystemClock()
    print()
    for info in SERVICES:
        base = f"http://127.0.0.1:{info.port}"
        print(f"{info.name:<12} {base}   docs {base}/docs   metrics {base}/metrics")
    console = f"http://127.0.0.1:{by_name('followup').port}/console"
    print(f"console      {console}   (sign in with the owner or manager token below)")
    print(f"logs         {DATA_DIR / 'logs'}/")
    print("\ntokens (valid 7 days; `closeloop token issue --role ROLE --subject KEY` makes more):")
    for role, subject, journeys in LOCAL_TOKENS:
        token = issue_token(
            settings, clock, role=role, subject=subject, journeys=journeys, ttl=timedelta(days=7)
        )
        print(f"  {role:<14} ({subject}): {token}")
    print("\ntry:  closeloop replay-cfpb --limit 200")
    print("Ctrl-C stops everything.", flush=True)
