"""The console's Jinja2 environment: templates, and filters that show UTC instants in the
viewer's time zone (the browser tells it once, in the `tz` cookie)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def viewer_zone(request: Request) -> ZoneInfo:
    """The browser's zone from the `tz` cookie, else UTC."""
    try:
        # console.js writes it URL-encoded ("America%2FNew_York").
        return ZoneInfo(unquote(request.cookies.get("tz") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local(value: datetime | None, zone: ZoneInfo) -> str:
    """ "Mon 23 Nov 14:05 EST" in the viewer's zone; an em dash for nothing."""
    if value is None:
        return "—"
    return value.astimezone(zone).strftime("%a %d %b %H:%M %Z")


def duration(delta: timedelta) -> str:
    """A short human span: "3 d 4 h", "2 h 5 min", "40 s"."""
    seconds = int(abs(delta).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def relative(value: datetime | None, now: datetime) -> str:
    """ "in 2 h 5 min" or "3 d 4 h ago"."""
    if value is None:
        return ""
    delta = value - now
    if abs(delta) < timedelta(seconds=1):
        return "just now"
    return f"in {duration(delta)}" if delta > timedelta(0) else f"{duration(delta)} ago"


def iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


templates.env.filters["duration"] = duration
templates.env.globals.update(local=local, relative=relative, iso=iso)
