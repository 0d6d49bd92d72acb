"""Request and response bodies of the followup configuration API: calendars, SLA policies,
escalation ladders, notification channels and the resolution taxonomy.

Shapes are checked here; whether a calendar or ladder is usable by the scheduler is checked in
`policies.py` with the same conversions the scheduler uses (`policy_lookup`).
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
ANY = "*"
JOURNEY_PATTERN = r"^(\*|[a-z0-9][a-z0-9_.-]{0,99})$"
# What a ladder level may address; "person:"/"role:" are passed on to the channel as they are.
AUDIENCE_PATTERN = r"^(owner|journey_manager|(person|role):[a-z0-9][a-z0-9_.-]{0,99})$"
# An e-mail channel's address book is keyed by audiences as alerts carry them (resolved).
RESOLVED_AUDIENCE_PATTERN = r"^(owner|manager|person|role):[a-z0-9][a-z0-9_.-]{0,99}$"
EMAIL_PATTERN = r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"
MAX_MINUTES = 366 * 24 * 60  # a year: far beyond any sensible business-time target
MAX_OFFSET_MINUTES = 30 * 24 * 60

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
SeverityOrAny = Literal["low", "medium", "high", "critical", "*"]
TaxonomyKind = Literal["resolution_code", "root_cause"]
ChannelKind = Literal["webhook", "email", "chat"]
Weekday = Literal["0", "1", "2", "3", "4", "5", "6"]

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _opens(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError(f"{value!r} is not a time of day HH:MM from 00:00 to 23:59")
    return value


def _closes(value: str) -> str:
    if value != "24:00" and not _HHMM.match(value):
        raise ValueError(f"{value!r} is not a time of day HH:MM from 00:00 to 24:00")
    return value


Opens = Annotated[str, AfterValidator(_opens)]
Closes = Annotated[str, AfterValidator(_closes)]
Key = Annotated[str, Field(pattern=KEY_PATTERN)]
Email = Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=320)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- calendars -------------------------------------------------------------------------------


class CalendarIn(Strict):
    key: Key | None = Field(None, description="Optional; must equal the key in the URL.")
    name: str = Field(min_length=1, max_length=200)
    tz: str = Field(min_length=1, max_length=64, description="IANA time zone, e.g. Europe/Paris.")
    weekly: dict[Weekday, Annotated[list[tuple[Opens, Closes]], Field(max_length=24)]] = Field(
        description='Weekday ("0" = Monday .. "6") -> periods ["09:00", "17:00"] in local time. '
        'A period closing at or before it opens runs overnight (["22:00", "06:00"]); "24:00" '
        'closes at midnight and ["00:00", "00:00"] is the whole day.'
    )
    country: str | None = Field(
        None, max_length=10, description="Public holidays of this country (ISO code, e.g. US)."
    )
    subdivision: str | None = Field(None, max_length=10, description="e.g. a US state: NY.")
    holidays: list[date] = Field(default_factory=list, max_length=1000)
    working_days: list[date] = Field(
        default_factory=list,
        max_length=1000,
        description="Holidays (public or custom) that are worked after all.",
    )


class CalendarOut(BaseModel):
    key: str
    name: str
    tz: str
    weekly: dict[str, list[list[str]]]
    country: str | None = None
    subdivision: str | None = None
    holidays: list[date]
    working_days: list[date]
    version: int = Field(description="Bumped by every change; the ETag carries it too.")
    updated_at: datetime


class CalendarList(BaseModel):
    items: list[CalendarOut]


# --- SLA policies ----------------------------------------------------------------------------


class SlaPolicyIn(Strict):
    id: uuid.UUID | None = Field(None, description="Optional; must equal the id in the URL.")
    journey: str = Field(pattern=JOURNEY_PATTERN, description='A journey key, or "*" for any.')
    severity: SeverityOrAny = Field(description='A severity, or "*" for any.')
    calendar: Key = Field(description="The key of the calendar whose business time counts.")
    acknowledge_minutes: int = Field(ge=1, le=MAX_MINUTES, description="Business minutes.")
    first_promise_minutes: int = Field(ge=1, le=MAX_MINUTES, description="Business minutes.")
    resolve_minutes: int = Field(ge=1, le=MAX_MINUTES, description="Business minutes.")


class SlaPolicyOut(BaseModel):
    id: uuid.UUID
    journey: str
    severity: str
    calendar: str
    acknowledge_minutes: int
    first_promise_minutes: int
    resolve_minutes: int
    version: int = Field(description="Bumped by every change; the ETag carries it too.")
    updated_at: datetime


class SlaPolicyList(BaseModel):
    items: list[SlaPolicyOut]


# --- escalation ladders ----------------------------------------------------------------------


class LadderLevelIn(Strict):
    offset_minutes: int = Field(
        ge=-MAX_OFFSET_MINUTES,
        le=MAX_OFFSET_MINUTES,
        description="From the due time; negative = a reminder before it.",
    )
    audience: str = Field(
        pattern=AUDIENCE_PATTERN,
        description='"owner", "journey_manager", "person:<key>" or "role:<name>".',
    )
    channel: Key = Field(description="The key of an existing notification channel.")


class LadderIn(Strict):
    journey: str | None = Field(
        None, pattern=JOURNEY_PATTERN, description="Optional; must equal the journey in the URL."
    )
    levels: list[LadderLevelIn] = Field(
        max_length=50, description="In any order; stored and fired earliest first."
    )


class LadderLevelOut(BaseModel):
    offset_minutes: int
    audience: str
    channel: str


class LadderOut(BaseModel):
    journey: str
    levels: list[LadderLevelOut]
    version: int = Field(description="Bumped by every change; the ETag carries it too.")
    updated_at: datetime


class LadderList(BaseModel):
    items: list[LadderOut]


# --- notification channels -------------------------------------------------------------------


class WebhookConfig(Strict):
    """POST of the alert as JSON, signed with HMAC-SHA256 of the body under `secret`."""

    url: AnyHttpUrl
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=200,
        description="HMAC key; required when creating, kept as it is when omitted on a replace.",
    )


class EmailConfig(Strict):
    """An SMTP server and who gets which alert."""

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(587, ge=1, le=65535)
    sender: Email
    starttls: bool = True
    username: str | None = Field(None, min_length=1, max_length=200)
    password: str | None = Field(
        None,
        max_length=500,
        description='Kept as it is when omitted on a replace; "" removes it.',
    )
    addresses: dict[
        Annotated[str, Field(pattern=RESOLVED_AUDIENCE_PATTERN, max_length=200)], Email
    ] = Field(
        default_factory=dict,
        description='Audience as alerts carry it ("owner:<key>", "manager:<key>", '
        '"person:<key>", "role:<name>") -> e-mail address.',
    )
    default_address: Email | None = Field(
        None, description="For an audience without an address of its own."
    )


class ChatConfig(Strict):
    """A Slack-compatible incoming webhook."""

    url: AnyHttpUrl


CHANNEL_CONFIGS: dict[str, type[WebhookConfig | EmailConfig | ChatConfig]] = {
    "webhook": WebhookConfig,
    "email": EmailConfig,
    "chat": ChatConfig,
}
# Config fields that are written but never read back.
SECRET_FIELDS = {"webhook": ("secret",), "email": ("password",), "chat": ()}


class ChannelIn(Strict):
    key: Key | None = Field(None, description="Optional; must equal the key in the URL.")
    kind: ChannelKind
    config: dict[str, Any] = Field(
        description="webhook: {url, secret}; email: {host, port, sender, starttls, username, "
        "password, addresses, default_address}; chat: {url}."
    )
    enabled: bool = Field(True, description="A disabled channel sends nothing.")


class ChannelOut(BaseModel):
    key: str
    kind: str
    config: dict[str, Any] = Field(
        description='Secrets are never returned: "secret_set" / "password_set" say if one is.'
    )
    enabled: bool
    version: int = Field(description="Bumped by every change; the ETag carries it too.")
    updated_at: datetime


class ChannelList(BaseModel):
    items: list[ChannelOut]


# --- the resolution taxonomy -----------------------------------------------------------------


class TaxonomyIn(Strict):
    kind: TaxonomyKind | None = Field(None, description="Optional; must equal the URL's.")
    key: Key | None = Field(None, description="Optional; must equal the URL's.")
    label: str = Field(min_length=1, max_length=200)


class TaxonomyOut(BaseModel):
    kind: str
    key: str
    label: str


class TaxonomyList(BaseModel):
    items: list[TaxonomyOut]


# --- the defaults document (deploy/examples/followup.yaml) -----------------------------------


class TaxonomyItem(Strict):
    key: Key
    label: str = Field(min_length=1, max_length=200)


class DefaultsTaxonomy(Strict):
    resolution_codes: list[TaxonomyItem] = Field(default_factory=list)
    root_causes: list[TaxonomyItem] = Field(default_factory=list)


class DefaultsDocument(Strict):
    """Everything the configuration API holds, as one document loaded into empty tables."""

    calendars: list[CalendarIn] = Field(default_factory=list)
    sla_policies: list[SlaPolicyIn] = Field(default_factory=list)
    escalation_ladders: list[LadderIn] = Field(default_factory=list)
    notification_channels: list[ChannelIn] = Field(default_factory=list)
    taxonomy: DefaultsTaxonomy = Field(default_factory=DefaultsTaxonomy)
