"""The `closeloop` command: up, token, migrate, topics, dlq, catalog, routing, followup,
replay-cfpb."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import httpx

from shared.auth import ROLES, issue_token
from shared.clock import SystemClock
from shared.config import ServiceSettings


def _token(args: argparse.Namespace) -> int:
    settings = ServiceSettings()
    print(
        issue_token(
            settings,
            SystemClock(),
            role=args.role,
            subject=args.subject,
            journeys=args.journey or (),
            ttl=timedelta(hours=args.ttl_hours),
        )
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    import os

    from shared.db.migrate import upgrade
    from shared.services import SERVICES, by_name

    targets = SERVICES if args.service == "all" else (by_name(args.service),)
    for info in targets:
        url = (
            os.environ.get(f"CLOSELOOP_{info.name.upper()}_DATABASE_URL")
            or os.environ.get("CLOSELOOP_DATABASE_URL")
            or f"sqlite:///.closeloop/{info.name}.db"
        )
        upgrade(info.migrations, url)
        print(f"{info.name}: migrated {url.split('@')[-1]}")
    return 0


def _topics(args: argparse.Namespace) -> int:
    from shared.bus.kafka import ensure_topics
    from shared.events import topics

    settings = ServiceSettings()
    created = ensure_topics(settings, [settings.topic(t) for t in topics.ALL])
    print(f"created: {', '.join(created) or 'none (all existed)'}")
    return 0


def _dlq_list(args: argparse.Namespace) -> int:
    from shared.bus.dlq import list_dead_letters

    letters = list_dead_letters(ServiceSettings())
    if args.json:
        for d in letters:
            print(
                json.dumps(
                    {
                        "partition": d.partition,
                        "offset": d.offset,
                        "event_id": d.event_id,
                        "event_type": d.event_type,
                        "original_topic": d.original_topic,
                        "original_offset": d.original_offset,
                        "consumer_group": d.consumer_group,
                        "failed_at": d.failed_at.isoformat() if d.failed_at else None,
                        "error": d.error,
                    }
                )
            )
        return 0
    if not letters:
        print("no dead letters")
    for d in letters:
        print(
            f"{d.partition}:{d.offset}  {d.failed_at or '':<32}  {d.consumer_group:<16} "
            f"{d.event_type or '?':<40} {d.original_topic}@{d.original_offset}  {d.error[:120]}"
        )
    return 0


def _dlq_replay(args: argparse.Namespace) -> int:
    from shared.bus.dlq import list_dead_letters, replay
    from shared.bus.kafka import Producer

    settings = ServiceSettings()
    letters = list_dead_letters(settings)
    if not args.all:
        wanted = set(args.position or ())
        letters = [
            d for d in letters if f"{d.partition}:{d.offset}" in wanted or d.event_id in wanted
        ]
    if args.group:
        letters = [d for d in letters if d.consumer_group == args.group]
    producer = Producer(settings, "closeloop-dlq-replay")
    try:
        n = replay(producer, letters)
    finally:
        producer.close()
    print(f"replayed {n} dead letter(s) to their original topics")
    return 0


def _replay_cfpb(args: argparse.Namespace) -> int:
    from shared.cfpb import default_csv_path, replay

    token = args.token or issue_token(
        ServiceSettings(), SystemClock(), role="intake-client", subject=args.client
    )
    path = Path(args.path) if args.path else default_csv_path()
    summary = replay(
        args.url,
        token,
        path,
        args.limit,
        concurrency=args.concurrency,
        batch=args.batch,
        progress=not args.quiet,
    )
    print(summary.render())
    return 0 if summary.accepted + summary.replayed > 0 or summary.total == 0 else 1


def _admin_client(args: argparse.Namespace) -> httpx.Client:
    token = args.token or issue_token(
        ServiceSettings(), SystemClock(), role="admin", subject="closeloop-cli"
    )
    return httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    lines = [f"{response.status_code} {body.get('title', '')}: {body.get('detail', '')}"]
    for e in body.get("errors", []):
        lines.append(f"  {e.get('path') or e.get('field')}: {e.get('message')}")
    return "\n".join(lines)


def _catalog_apply(args: argparse.Namespace) -> int:
    text = Path(args.file).read_text(encoding="utf-8")
    with _admin_client(args) as client:
        r = client.put("/v1/catalog", content=text, headers={"Content-Type": "application/yaml"})
    if r.status_code != 200:
        print(_problem_text(r), file=sys.stderr)
        return 1
    print(f"catalog applied as version {r.json()['version']}")
    return 0


def _catalog_export(args: argparse.Namespace) -> int:
    with _admin_client(args) as client:
        r = client.get("/v1/catalog", headers={"Accept": "application/yaml"})
    if r.status_code != 200:
        print(_problem_text(r), file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(r.text)
        print(f"catalog version {r.headers.get('catalog-version')} written to {args.output}")
    else:
        print(r.text, end="")
    return 0


def _routing_stats(args: argparse.Namespace) -> int:
    with _admin_client(args) as client:
        r = client.get("/v1/assignments:stats")
    if r.status_code != 200:
        print(_problem_text(r), file=sys.stderr)
        return 1
    stats = r.json()
    print(f"assignments: {stats['total']}")
    for journey, n in stats["by_journey"].items():
        share = n / stats["total"] if stats["total"] else 0
        print(f"  {journey:<24} {n:>7}  {share:6.1%}")
    print(f"routed to triage: {stats['triage']} ({stats['triage_share']:.1%})")
    return 0


def _followup_defaults(args: argparse.Namespace) -> int:
    """PUT every part of a followup defaults document through the API, as an admin would."""
    import secrets
    import uuid
    from urllib.parse import quote

    import yaml

    doc = yaml.safe_load(Path(args.file).read_text(encoding="utf-8")) or {}
    puts: list[tuple[str, dict[str, object]]] = []
    for cal in doc.get("calendars", []):
        puts.append((f"/v1/calendars/{quote(cal['key'], safe='')}", cal))
    for channel in doc.get("notification_channels", []):
        config, enabled = dict(channel.get("config", {})), channel.get("enabled", True)
        if channel["kind"] == "webhook":
            config["url"] = args.webhook_url or config.get("url")
            # Left out, an existing channel keeps its secret (the receiver already trusts it).
            if args.webhook_secret:
                config["secret"] = args.webhook_secret
            enabled = enabled and bool(args.webhook_url)
        elif channel["kind"] == "email":
            if args.smtp:
                host, _, port = args.smtp.rpartition(":")
                config.update(host=host, port=int(port))
            enabled = enabled and bool(args.smtp)
        body = {**channel, "config": config, "enabled": enabled}
        puts.append((f"/v1/notification-channels/{quote(channel['key'], safe='')}", body))
    for ladder in doc.get("escalation_ladders", []):
        puts.append((f"/v1/escalation-ladders/{quote(ladder['journey'], safe='')}", ladder))
    taxonomy = doc.get("taxonomy", {})
    for kind, section in (("resolution_code", "resolution_codes"), ("root_cause", "root_causes")):
        for item in taxonomy.get(section, []):
            path = f"/v1/taxonomy/{kind}/{quote(item['key'], safe='')}"
            puts.append((path, {"label": item["label"]}))
    with _admin_client(args) as client:
        for policy in doc.get("sla_policies", []):
            # The same journey x severity keeps its id, so re-applying replaces, never duplicates.
            found = client.get(
                "/v1/sla-policies",
                params={"journey": policy["journey"], "severity": policy["severity"]},
            )
            items = found.json().get("items", []) if found.status_code == 200 else []
            policy_id = policy.get("id") or (items[0]["id"] if items else str(uuid.uuid4()))
            puts.append((f"/v1/sla-policies/{policy_id}", {**policy, "id": policy_id}))
        # Channels before ladders, calendars before policies: the order above and here.
        order = ("/v1/calendars", "/v1/notification-channels", "/v1/escalation-ladders")
        puts.sort(key=lambda p: next((i for i, o in enumerate(order) if p[0].startswith(o)), 9))
        for path, body in puts:
            channel_config = body.get("config")
            if (
                path.startswith("/v1/notification-channels/")
                and isinstance(channel_config, dict)
                and body.get("kind") == "webhook"
                and "secret" not in channel_config
                and client.get(path).status_code == 404
            ):
                channel_config["secret"] = secrets.token_urlsafe(32)
                print(f"{path}: new webhook secret {channel_config['secret']}")
            r = client.put(path, json=body)
            if r.status_code not in (200, 201):
                print(f"{path}: {_problem_text(r)}", file=sys.stderr)
                return 1
    print(f"followup defaults applied: {len(puts)} items from {args.file}")
    return 0


def _up(args: argparse.Namespace) -> int:
    from shared.logging import configure_logging
    from shared.up import up

    configure_logging("closeloop", "WARNING")
    return up(
        with_logs=args.logs,
        alerts_webhook=args.alerts_webhook,
        alerts_webhook_secret=args.alerts_webhook_secret,
        alerts_smtp=args.alerts_smtp,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="closeloop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="run the whole system locally (broker, migrations, services)")
    p.add_argument("--logs", action="store_true", help="stream service logs to this terminal")
    p.add_argument(
        "--alerts-webhook",
        default=os.environ.get("CLOSELOOP_ALERTS_WEBHOOK_URL"),
        help="deliver followup alerts to this URL (HMAC-signed webhook)",
    )
    p.add_argument(
        "--alerts-webhook-secret",
        default=os.environ.get("CLOSELOOP_ALERTS_WEBHOOK_SECRET"),
        help="the webhook's signing secret (default: a random one, printed)",
    )
    p.add_argument(
        "--alerts-smtp",
        default=os.environ.get("CLOSELOOP_ALERTS_SMTP"),
        help="deliver e-mail alerts through this SMTP server (HOST:PORT)",
    )
    p.set_defaults(fn=_up)

    token = sub.add_parser("token", help="local tokens").add_subparsers(dest="sub", required=True)
    p = token.add_parser("issue", help="print a signed token")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--subject", required=True, help="client, owner or manager key")
    p.add_argument("--journey", action="append", help="journey key (managers; repeatable)")
    p.add_argument("--ttl-hours", type=float, default=12.0)
    p.set_defaults(fn=_token)

    p = sub.add_parser("migrate", help="apply a service's migrations")
    p.add_argument("service", nargs="?", default="all")
    p.set_defaults(fn=_migrate)

    topics = sub.add_parser("topics", help="Kafka topics").add_subparsers(dest="sub", required=True)
    topics.add_parser("create", help="create every topic that is missing").set_defaults(fn=_topics)

    dlq = sub.add_parser("dlq", help="dead letters").add_subparsers(dest="sub", required=True)
    p = dlq.add_parser("list", help="list dead letters with their errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=_dlq_list)
    p = dlq.add_parser("replay", help="publish dead letters back to their original topics")
    p.add_argument("position", nargs="*", help="PARTITION:OFFSET or event id (see `dlq list`)")
    p.add_argument("--all", action="store_true", help="replay every dead letter")
    p.add_argument("--group", help="only those a given consumer group failed on")
    p.set_defaults(fn=_dlq_replay)

    catalog = sub.add_parser("catalog", help="the journey catalog (journeys as code)")
    catalog_sub = catalog.add_subparsers(dest="sub", required=True)
    p = catalog_sub.add_parser("apply", help="validate and apply a catalog YAML file")
    p.add_argument("file")
    p.set_defaults(fn=_catalog_apply)
    p = catalog_sub.add_parser("export", help="print (or write) the current catalog as YAML")
    p.add_argument("-o", "--output")
    p.set_defaults(fn=_catalog_export)
    for q in catalog_sub.choices.values():
        q.add_argument("--url", default="http://127.0.0.1:8002", help="routing base URL")
        q.add_argument("--token", help="admin token (default: a local one)")

    routing = sub.add_parser("routing", help="routing reports")
    p = routing.add_subparsers(dest="sub", required=True).add_parser(
        "stats", help="assignments per journey and the share routed to triage"
    )
    p.add_argument("--url", default="http://127.0.0.1:8002", help="routing base URL")
    p.add_argument("--token", help="admin or manager token (default: a local admin one)")
    p.set_defaults(fn=_routing_stats)

    followup = sub.add_parser("followup", help="followup configuration")
    p = followup.add_subparsers(dest="sub", required=True).add_parser(
        "defaults", help="apply a defaults document (SLA policies, calendars, ladders, channels)"
    )
    p.add_argument(
        "file",
        nargs="?",
        default=str(Path(__file__).resolve().parents[1] / "deploy" / "examples" / "followup.yaml"),
        help="defaults document (default: the example one in deploy/examples)",
    )
    p.add_argument("--url", default="http://127.0.0.1:8003", help="followup base URL")
    p.add_argument("--token", help="admin token (default: a local one)")
    p.add_argument("--webhook-url", help="URL for the document's webhook channels")
    p.add_argument("--webhook-secret", help="their signing secret (default: a random one)")
    p.add_argument("--smtp", help="HOST:PORT for the document's e-mail channels")
    p.set_defaults(fn=_followup_defaults)

    p = sub.add_parser("replay-cfpb", help="post real CFPB complaints to the intake API")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--path", help="CSV path (default ../shared/data/cfpb_complaints.csv)")
    p.add_argument("--url", default="http://127.0.0.1:8001", help="intake base URL")
    p.add_argument("--token", help="intake-client token (default: a local one for --client)")
    p.add_argument("--client", default="demo-contact-center", help="client key of the local token")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--batch", action="store_true", help="use POST /v1/complaints:batch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=_replay_cfpb)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
