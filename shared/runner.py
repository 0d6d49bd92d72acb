"""`python -m services.<svc> api|worker|all|migrate`: the same entry points for every service."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI
from prometheus_client import start_http_server

from shared.config import ServiceSettings
from shared.db.migrate import upgrade
from shared.logging import configure_logging

log = logging.getLogger(__name__)


class Container(Protocol):
    settings: Any

    def worker(self) -> Any: ...

    def close(self) -> None: ...


def run_service(
    name: str,
    argv: list[str] | None,
    *,
    settings_factory: Callable[[], ServiceSettings],
    bootstrap: Callable[[Any], Container],
    create_app: Callable[..., FastAPI],
    migrations: Path,
) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}")
    parser.add_argument("process", choices=["api", "worker", "all", "migrate"])
    args = parser.parse_args(argv)
    settings = settings_factory()
    configure_logging(name, settings.log_level)
    if args.process == "migrate":
        upgrade(migrations, settings.database_url)
        log.info("migrated", extra={"database": settings.database_url.split("@")[-1]})
        return
    if args.process == "api":
        uvicorn.run(
            create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None
        )
        return
    container = bootstrap(settings)
    worker = container.worker()
    stop = threading.Event()
    if args.process == "worker":
        port = getattr(settings, "worker_metrics_port", 0)
        if port:
            start_http_server(port, addr=settings.http_host)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        try:
            worker.run_forever(stop)
        finally:
            worker.close()
            container.close()
        return
    # all: API and worker in one process (local use); /metrics then shows both.
    thread = threading.Thread(target=worker.run_forever, args=(stop,), name="worker", daemon=True)
    thread.start()
    try:
        uvicorn.run(
            create_app(container=container),
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
        )
    finally:
        stop.set()
        thread.join(timeout=10)
        worker.close()
        container.close()
