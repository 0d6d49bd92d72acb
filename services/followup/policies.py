"""Configuration use cases: calendars, SLA policies, escalation ladders, notification channels and
the resolution taxonomy, each written whole (PUT) under optimistic concurrency; and loading the
defaults document (`deploy/examples/followup.yaml`) into empty configuration tables.

Every write validates with the conversions the scheduler reads with (`policy_lookup`), so the
API accepts exactly what the scheduler can use. A row's `version` is its ETag; an `If-Match` that
no longer matches is refused with 412, and the row is read `FOR UPDATE` so two writers holding the
same version cannot both win.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.followup.domain import SlaPolicy
from services.followup.models import (
    CalendarRow,
    ChannelRow,
    LadderRow,
    SlaPolicyRow,
    TaxonomyEntry,
)
from services.followup.policy_lookup import calendar_of, ladder_levels
from services.followup.policy_schemas import (
    CHANNEL_CONFIGS,
    SECRET_FIELDS,
    CalendarIn,
    CalendarList,
    CalendarOut,
    ChannelIn,
    ChannelList,
    ChannelOut,
    DefaultsDocument,
    LadderIn,
    LadderLevelOut,
    LadderList,
    LadderOut,
    SlaPolicyIn,
    SlaPolicyList,
    SlaPolicyOut,
    TaxonomyIn,
    TaxonomyList,
    TaxonomyOut,
)
from services.followup.service import FollowupUnitOfWork
from shared.clock import Clock
from shared.errors import Conflict, DomainError, NotFound, Unprocessable

log = logging.getLogger(__name__)

Row = TypeVar("Row", CalendarRow, SlaPolicyRow, LadderRow, ChannelRow)
Out = CalendarOut | SlaPolicyOut | LadderOut | ChannelOut | TaxonomyOut
UowFactory = Callable[[], FollowupUnitOfWork]

_WHOLE_WEEK = {str(day): [["00:00", "00:00"]] for day in range(7)}
# Ids of the defaults document's SLA policies: the same (journey, severity) always gets the same.
_DEFAULTS_NAMESPACE = uuid.UUID("6f1c1d0e-4c39-4a52-9a59-0b5b7d3c2f10")


class PreconditionFailed(DomainError):
    status, type_slug, title = 412, "precondition-failed", "Precondition failed"


# --- ETags and conditional requests ----------------------------------------------------------


def etag_of(out: Out) -> str:
    """The strong ETag of a resource: its version, or (taxonomy, unversioned) its label's hash."""
    if isinstance(out, TaxonomyOut):
        return f'"{hashlib.sha256(out.label.encode()).hexdigest()[:16]}"'
    return f'"{out.version}"'


def _tags(header: str) -> set[str]:
    return {tag.strip() for tag in header.split(",") if tag.strip()}


@dataclass(frozen=True)
class Preconditions:
    """The request's `If-Match` / `If-None-Match` headers, checked against the current ETag."""

    if_match: str | None = None
    if_none_match: str | None = None

    def check(self, what: str, current: str | None) -> None:
        """Raise 412 unless the preconditions hold; `current` is None when nothing exists yet."""
        if self.if_match is not None:
            tags = _tags(self.if_match)  # strong comparison: a weak W/"…" tag never matches
            if current is None or not ("*" in tags or current in tags):
                state = "does not exist" if current is None else f"is at {current}"
                raise PreconditionFailed(
                    f"{what} {state}, not {self.if_match}: reload it and try again",
                    etag=current,
                )
        if self.if_none_match is not None and current is not None:
            tags = {t.removeprefix("W/") for t in _tags(self.if_none_match)}
            if "*" in tags or current in tags:
                raise PreconditionFailed(f"{what} already exists ({current})", etag=current)


UNCONDITIONAL = Preconditions()


# --- helpers ---------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable(f"{field}: {message}", errors=[{"field": field, "message": message}])


def _same(in_url: object, in_body: object | None, field: str) -> None:
    """A body may repeat its key, but it must be the one in the URL."""
    if in_body is not None and in_body != in_url:
        raise _invalid(field, f"{in_body!s} differs from the URL's {in_url!s}")


def _upsert(
    uow: FollowupUnitOfWork,
    row: Row | None,
    make: Callable[..., Row],
    values: dict[str, Any],
    now: datetime,
) -> tuple[Row, bool]:
    """Create the row, or replace its values; the version moves only when something changed."""
    if row is None:
        row = make(**values, version=1, updated_at=now)
        uow.session.add(row)
        return row, True
    if any(getattr(row, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(row, name, value)
        row.version += 1
        row.updated_at = now
    return row, False


def _commit(uow: FollowupUnitOfWork) -> None:
    try:
        uow.commit()
    except IntegrityError as exc:  # a concurrent writer created or removed what this one needs
        raise Conflict("the configuration changed meanwhile; reload and try again") from exc


def _check_calendar(
    tz: str,
    weekly: dict[str, Any],
    country: str | None,
    subdivision: str | None,
    holidays: list[str],
    working_days: list[str],
) -> None:
    """The calendar as the scheduler will build it; a 422 naming the field that breaks it."""
    checks: list[tuple[str, Callable[[], object]]] = [
        ("tz", lambda: calendar_of(tz, _WHOLE_WEEK)),
        ("weekly", lambda: calendar_of("UTC", weekly)),
    ]
    if country is not None:
        checks.append(("country", lambda: calendar_of("UTC", _WHOLE_WEEK, country)))
    if subdivision is not None:
        checks.append(
            ("subdivision", lambda: calendar_of("UTC", _WHOLE_WEEK, country, subdivision))
        )
    checks.append(
        (
            "(body)",
            lambda: calendar_of(tz, weekly, country, subdivision, holidays, working_days),
        )
    )
    for field, check in checks:
        try:
            check()
        except ValueError as exc:
            raise _invalid(field, str(exc)) from exc


def _config_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(["config", *(str(p) for p in err["loc"])]),
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors()
    ]


# --- rows as responses -----------------------------------------------------------------------


def calendar_out(row: CalendarRow) -> CalendarOut:
    """A calendar row as the API returns it."""
    return CalendarOut(
        key=row.key,
        name=row.name,
        tz=row.tz,
        weekly=row.weekly,
        country=row.country,
        subdivision=row.subdivision,
        holidays=row.holidays,
        working_days=row.working_days,
        version=row.version,
        updated_at=row.updated_at,
    )


def policy_out(row: SlaPolicyRow) -> SlaPolicyOut:
    """An SLA policy row as the API returns it."""
    return SlaPolicyOut(
        id=row.id,
        journey=row.journey_key,
        severity=row.severity,
        calendar=row.calendar_key,
        acknowledge_minutes=row.acknowledge_minutes,
        first_promise_minutes=row.first_promise_minutes,
        resolve_minutes=row.resolve_minutes,
        version=row.version,
        updated_at=row.updated_at,
    )


def ladder_out(row: LadderRow) -> LadderOut:
    """A ladder row as the API returns it, levels earliest first."""
    return LadderOut(
        journey=row.journey_key,
        levels=[LadderLevelOut.model_validate(level) for level in row.levels],
        version=row.version,
        updated_at=row.updated_at,
    )


def channel_out(row: ChannelRow) -> ChannelOut:
    """A channel as anyone may read it: secrets replaced by whether one is set."""
    hidden = SECRET_FIELDS.get(row.kind, ())
    config = {k: v for k, v in row.config.items() if k not in hidden}
    config.update({f"{name}_set": bool(row.config.get(name)) for name in hidden})
    return ChannelOut(
        key=row.key,
        kind=row.kind,
        config=config,
        enabled=row.enabled,
        version=row.version,
        updated_at=row.updated_at,
    )


def taxonomy_out(row: TaxonomyEntry) -> TaxonomyOut:
    """A resolution code or root cause as the API returns it."""
    return TaxonomyOut(kind=row.kind, key=row.key, label=row.label)


# --- the use cases ---------------------------------------------------------------------------


class PolicyService:
    """Reads and whole-resource writes of the SLA and escalation configuration."""

    def __init__(self, uow_factory: UowFactory, clock: Clock) -> None:
        self._uow = uow_factory
        self._clock = clock

    # --- calendars ---------------------------------------------------------------------------
    def calendars(self) -> CalendarList:
        with self._uow() as uow:
            rows = uow.session.scalars(select(CalendarRow).order_by(CalendarRow.key))
            return CalendarList(items=[calendar_out(r) for r in rows])

    def calendar(self, key: str) -> CalendarOut:
        with self._uow() as uow:
            return calendar_out(self._calendar_row(uow, key))

    def put_calendar(
        self, key: str, body: CalendarIn, pre: Preconditions = UNCONDITIONAL
    ) -> tuple[CalendarOut, bool]:
        """Create or replace a calendar; True when it was created."""
        with self._uow() as uow:
            row, created = self._put_calendar(uow, key, body, pre)
            _commit(uow)
            return calendar_out(row), created

    def delete_calendar(self, key: str, pre: Preconditions = UNCONDITIONAL) -> None:
        """Remove a calendar no SLA policy counts in (409 otherwise)."""
        with self._uow() as uow:
            row = self._calendar_row(uow, key, lock=True)
            pre.check(f"calendar {key!r}", etag_of(calendar_out(row)))
            users = uow.session.scalars(
                select(SlaPolicyRow.id).where(SlaPolicyRow.calendar_key == key)
            ).all()
            if users:
                raise Conflict(
                    f"calendar {key!r} is used by {len(users)} SLA policy(ies); change them first",
                    policies=sorted(str(u) for u in users),
                )
            uow.session.delete(row)
            _commit(uow)
        log.info("calendar deleted", extra={"calendar": key})

    def _calendar_row(self, uow: FollowupUnitOfWork, key: str, lock: bool = False) -> CalendarRow:
        row = uow.session.get(CalendarRow, key, with_for_update=lock)
        if row is None:
            raise NotFound(f"no calendar {key!r}")
        return row

    def _put_calendar(
        self, uow: FollowupUnitOfWork, key: str, body: CalendarIn, pre: Preconditions
    ) -> tuple[CalendarRow, bool]:
        _same(key, body.key, "key")
        weekly: dict[str, Any] = {
            day: [[opens, closes] for opens, closes in periods]
            for day, periods in sorted(body.weekly.items())
            if periods
        }
        holidays = sorted({d.isoformat() for d in body.holidays})
        working_days = sorted({d.isoformat() for d in body.working_days})
        _check_calendar(body.tz, weekly, body.country, body.subdivision, holidays, working_days)
        row = uow.session.get(CalendarRow, key, with_for_update=True)
        pre.check(f"calendar {key!r}", None if row is None else etag_of(calendar_out(row)))
        values = {
            "name": body.name,
            "tz": body.tz,
            "weekly": weekly,
            "country": body.country,
            "subdivision": body.subdivision,
            "holidays": holidays,
            "working_days": working_days,
        }
        row, created = _upsert(
            uow, row, lambda **kw: CalendarRow(key=key, **kw), values, self._clock.now()
        )
        return row, created

    # --- SLA policies ------------------------------------------------------------------------
    def policies(self, journey: str | None = None, severity: str | None = None) -> SlaPolicyList:
        with self._uow() as uow:
            q = select(SlaPolicyRow).order_by(SlaPolicyRow.journey_key, SlaPolicyRow.severity)
            if journey is not None:
                q = q.where(SlaPolicyRow.journey_key == journey)
            if severity is not None:
                q = q.where(SlaPolicyRow.severity == severity)
            return SlaPolicyList(items=[policy_out(r) for r in uow.session.scalars(q)])

    def policy(self, policy_id: uuid.UUID) -> SlaPolicyOut:
        with self._uow() as uow:
            return policy_out(self._policy_row(uow, policy_id))

    def put_policy(
        self, policy_id: uuid.UUID, body: SlaPolicyIn, pre: Preconditions = UNCONDITIONAL
    ) -> tuple[SlaPolicyOut, bool]:
        """Create or replace an SLA policy; True when it was created."""
        with self._uow() as uow:
            row, created = self._put_policy(uow, policy_id, body, pre)
            _commit(uow)
            return policy_out(row), created

    def delete_policy(self, policy_id: uuid.UUID, pre: Preconditions = UNCONDITIONAL) -> None:
        with self._uow() as uow:
            row = self._policy_row(uow, policy_id, lock=True)
            pre.check(f"SLA policy {policy_id}", etag_of(policy_out(row)))
            uow.session.delete(row)
            _commit(uow)

    def _policy_row(
        self, uow: FollowupUnitOfWork, policy_id: uuid.UUID, lock: bool = False
    ) -> SlaPolicyRow:
        row = uow.session.get(SlaPolicyRow, policy_id, with_for_update=lock)
        if row is None:
            raise NotFound(f"no SLA policy {policy_id}")
        return row

    def _put_policy(
        self, uow: FollowupUnitOfWork, policy_id: uuid.UUID, body: SlaPolicyIn, pre: Preconditions
    ) -> tuple[SlaPolicyRow, bool]:
        _same(policy_id, body.id, "id")
        for field in ("acknowledge_minutes", "first_promise_minutes"):
            if getattr(body, field) > body.resolve_minutes:
                raise _invalid(field, "must not be more than resolve_minutes")
        SlaPolicy(  # the scheduler's own checks
            acknowledge_within=timedelta(minutes=body.acknowledge_minutes),
            first_promise_within=timedelta(minutes=body.first_promise_minutes),
            resolve_within=timedelta(minutes=body.resolve_minutes),
        )
        if uow.session.get(CalendarRow, body.calendar) is None:
            raise _invalid("calendar", f"no calendar {body.calendar!r}")
        row = uow.session.get(SlaPolicyRow, policy_id, with_for_update=True)
        pre.check(f"SLA policy {policy_id}", None if row is None else etag_of(policy_out(row)))
        other = uow.session.scalars(
            select(SlaPolicyRow.id).where(
                SlaPolicyRow.journey_key == body.journey,
                SlaPolicyRow.severity == body.severity,
                SlaPolicyRow.id != policy_id,
            )
        ).first()
        if other is not None:
            raise Conflict(
                f"SLA policy {other} already covers journey {body.journey!r} and severity "
                f"{body.severity!r}; replace that one instead",
                policy=str(other),
            )
        values = {
            "journey_key": body.journey,
            "severity": body.severity,
            "calendar_key": body.calendar,
            "acknowledge_minutes": body.acknowledge_minutes,
            "first_promise_minutes": body.first_promise_minutes,
            "resolve_minutes": body.resolve_minutes,
        }
        row, created = _upsert(
            uow, row, lambda **kw: SlaPolicyRow(id=policy_id, **kw), values, self._clock.now()
        )
        return row, created

    # --- escalation ladders ------------------------------------------------------------------
    def ladders(self) -> LadderList:
        with self._uow() as uow:
            rows = uow.session.scalars(select(LadderRow).order_by(LadderRow.journey_key))
            return LadderList(items=[ladder_out(r) for r in rows])

    def ladder(self, journey: str) -> LadderOut:
        with self._uow() as uow:
            return ladder_out(self._ladder_row(uow, journey))

    def put_ladder(
        self, journey: str, body: LadderIn, pre: Preconditions = UNCONDITIONAL
    ) -> tuple[LadderOut, bool]:
        """Create or replace a journey's ladder ("*": the default); True when it was created."""
        with self._uow() as uow:
            row, created = self._put_ladder(uow, journey, body, pre)
            _commit(uow)
            return ladder_out(row), created

    def delete_ladder(self, journey: str, pre: Preconditions = UNCONDITIONAL) -> None:
        with self._uow() as uow:
            row = self._ladder_row(uow, journey, lock=True)
            pre.check(f"ladder {journey!r}", etag_of(ladder_out(row)))
            uow.session.delete(row)
            _commit(uow)

    def _ladder_row(self, uow: FollowupUnitOfWork, journey: str, lock: bool = False) -> LadderRow:
        row = uow.session.get(LadderRow, journey, with_for_update=lock)
        if row is None:
            raise NotFound(f"no escalation ladder for journey {journey!r}")
        return row

    def _put_ladder(
        self, uow: FollowupUnitOfWork, journey: str, body: LadderIn, pre: Preconditions
    ) -> tuple[LadderRow, bool]:
        _same(journey, body.journey, "journey")
        levels = [level.model_dump() for level in body.levels]
        errors = []
        seen: set[tuple[int, str, str]] = set()
        for i, level in enumerate(levels):
            identity = (level["offset_minutes"], level["audience"], level["channel"])
            if identity in seen:
                errors.append({"field": f"levels.{i}", "message": "the same level twice"})
            seen.add(identity)
        # Shared locks: a channel cannot be deleted while a ladder naming it is being written.
        known = set(
            uow.session.scalars(
                select(ChannelRow.key)
                .where(ChannelRow.key.in_({level["channel"] for level in levels}))
                .with_for_update(read=True)
            )
        )
        errors += [
            {"field": f"levels.{i}.channel", "message": f"no notification channel {c!r}"}
            for i, c in enumerate(level["channel"] for level in levels)
            if c not in known
        ]
        if errors:
            raise Unprocessable(
                "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
            )
        ordered = sorted(levels, key=lambda level: int(level["offset_minutes"]))
        try:
            ladder_levels(ordered)  # the scheduler's own reading
        except (KeyError, TypeError, ValueError) as exc:
            raise _invalid("levels", str(exc)) from exc
        row = uow.session.get(LadderRow, journey, with_for_update=True)
        pre.check(f"ladder {journey!r}", None if row is None else etag_of(ladder_out(row)))
        row, created = _upsert(
            uow,
            row,
            lambda **kw: LadderRow(journey_key=journey, **kw),
            {"levels": ordered},
            self._clock.now(),
        )
        return row, created

    # --- notification channels ---------------------------------------------------------------
    def channels(self) -> ChannelList:
        with self._uow() as uow:
            rows = uow.session.scalars(select(ChannelRow).order_by(ChannelRow.key))
            return ChannelList(items=[channel_out(r) for r in rows])

    def channel(self, key: str) -> ChannelOut:
        with self._uow() as uow:
            return channel_out(self._channel_row(uow, key))

    def put_channel(
        self, key: str, body: ChannelIn, pre: Preconditions = UNCONDITIONAL
    ) -> tuple[ChannelOut, bool]:
        """Create or replace a channel; True when it was created. Omitted secrets are kept."""
        with self._uow() as uow:
            row, created = self._put_channel(uow, key, body, pre)
            _commit(uow)
            return channel_out(row), created

    def delete_channel(self, key: str, pre: Preconditions = UNCONDITIONAL) -> None:
        """Remove a channel no ladder sends on (409 otherwise)."""
        with self._uow() as uow:
            row = self._channel_row(uow, key, lock=True)
            pre.check(f"channel {key!r}", etag_of(channel_out(row)))
            users = sorted(
                ladder.journey_key
                for ladder in uow.session.scalars(select(LadderRow))
                if any(level.get("channel") == key for level in ladder.levels)
            )
            if users:
                raise Conflict(
                    f"channel {key!r} is used by the ladder(s) of {', '.join(users)}; "
                    "change them first",
                    ladders=users,
                )
            uow.session.delete(row)
            _commit(uow)
        log.info("notification channel deleted", extra={"channel": key})

    def _channel_row(self, uow: FollowupUnitOfWork, key: str, lock: bool = False) -> ChannelRow:
        row = uow.session.get(ChannelRow, key, with_for_update=lock)
        if row is None:
            raise NotFound(f"no notification channel {key!r}")
        return row

    def _put_channel(
        self, uow: FollowupUnitOfWork, key: str, body: ChannelIn, pre: Preconditions
    ) -> tuple[ChannelRow, bool]:
        _same(key, body.key, "key")
        try:
            parsed = CHANNEL_CONFIGS[body.kind].model_validate(body.config)
        except ValidationError as exc:
            errors = _config_errors(exc)
            raise Unprocessable(
                "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
            ) from exc
        config = parsed.model_dump(mode="json", exclude_none=True)
        row = uow.session.get(ChannelRow, key, with_for_update=True)
        pre.check(f"channel {key!r}", None if row is None else etag_of(channel_out(row)))
        previous = row.config if row is not None and row.kind == body.kind else {}
        for name in SECRET_FIELDS[body.kind]:
            if name not in config and previous.get(name):
                config[name] = previous[name]  # write-only: an edit need not send it again
        if body.kind == "webhook" and not config.get("secret"):
            raise _invalid("config.secret", "required: the HMAC key, at least 16 characters")
        if body.kind == "email":
            if config.get("password") == "":
                del config["password"]
            if config.get("password") and not config.get("username"):
                raise _invalid("config.username", "required with a password")
        row, created = _upsert(
            uow,
            row,
            lambda **kw: ChannelRow(key=key, **kw),
            {"kind": body.kind, "config": config, "enabled": body.enabled},
            self._clock.now(),
        )
        return row, created

    # --- the resolution taxonomy -------------------------------------------------------------
    def taxonomy(self, kind: str | None = None) -> TaxonomyList:
        with self._uow() as uow:
            q = select(TaxonomyEntry).order_by(TaxonomyEntry.kind, TaxonomyEntry.key)
            if kind is not None:
                q = q.where(TaxonomyEntry.kind == kind)
            return TaxonomyList(items=[taxonomy_out(r) for r in uow.session.scalars(q)])

    def taxonomy_entry(self, kind: str, key: str) -> TaxonomyOut:
        with self._uow() as uow:
            return taxonomy_out(self._taxonomy_row(uow, kind, key))

    def put_taxonomy(
        self, kind: str, key: str, body: TaxonomyIn, pre: Preconditions = UNCONDITIONAL
    ) -> tuple[TaxonomyOut, bool]:
        """Create or relabel a resolution code or root cause; True when it was created."""
        with self._uow() as uow:
            row, created = self._put_taxonomy(uow, kind, key, body, pre)
            _commit(uow)
            return taxonomy_out(row), created

    def delete_taxonomy(self, kind: str, key: str, pre: Preconditions = UNCONDITIONAL) -> None:
        with self._uow() as uow:
            row = self._taxonomy_row(uow, kind, key, lock=True)
            pre.check(f"{kind} {key!r}", etag_of(taxonomy_out(row)))
            uow.session.delete(row)
            _commit(uow)

    def _taxonomy_row(
        self, uow: FollowupUnitOfWork, kind: str, key: str, lock: bool = False
    ) -> TaxonomyEntry:
        row = uow.session.get(TaxonomyEntry, (kind, key), with_for_update=lock)
        if row is None:
            raise NotFound(f"no {kind} {key!r}")
        return row

    def _put_taxonomy(
        self, uow: FollowupUnitOfWork, kind: str, key: str, body: TaxonomyIn, pre: Preconditions
    ) -> tuple[TaxonomyEntry, bool]:
        _same(kind, body.kind, "kind")
        _same(key, body.key, "key")
        row = uow.session.get(TaxonomyEntry, (kind, key), with_for_update=True)
        pre.check(f"{kind} {key!r}", None if row is None else etag_of(taxonomy_out(row)))
        if row is None:
            row = TaxonomyEntry(kind=kind, key=key, label=body.label)
            uow.session.add(row)
            return row, True
        row.label = body.label
        return row, False

    # --- the defaults document ---------------------------------------------------------------
    def apply_defaults(
        self,
        document: dict[str, Any],
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
        smtp: dict[str, Any] | None = None,
    ) -> bool:
        """Load a defaults document in one transaction if no configuration exists yet."""
        doc = DefaultsDocument.model_validate(document)
        with self._uow() as uow:
            if any(uow.session.scalars(select(t).limit(1)).first() for t in _CONFIG_TABLES):
                return False
            try:
                self._load(uow, doc, webhook_url, webhook_secret, smtp)
            except DomainError as exc:
                errors = exc.extra.get("errors") or []
                fields = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
                raise ValueError(f"invalid defaults document: {fields or exc.detail}") from exc
            try:
                uow.commit()
            except IntegrityError:
                log.info("followup defaults were loaded by another process")
                return False
        log.info(
            "followup defaults loaded",
            extra={"webhook": webhook_url is not None, "smtp": smtp is not None},
        )
        return True

    def _load(
        self,
        uow: FollowupUnitOfWork,
        doc: DefaultsDocument,
        webhook_url: str | None,
        webhook_secret: str | None,
        smtp: dict[str, Any] | None,
    ) -> None:
        for cal in doc.calendars:
            self._put_calendar(uow, _required(cal.key, "calendars.key"), cal, UNCONDITIONAL)
        for channel in doc.notification_channels:
            key = _required(channel.key, "notification_channels.key")
            filled = _at_load_time(channel, webhook_url, webhook_secret, smtp)
            self._put_channel(uow, key, filled, UNCONDITIONAL)
        uow.session.flush()  # ladders and policies look their channels and calendars up
        for ladder in doc.escalation_ladders:
            journey = _required(ladder.journey, "escalation_ladders.journey")
            self._put_ladder(uow, journey, ladder, UNCONDITIONAL)
        for policy in doc.sla_policies:
            policy_id = policy.id or uuid.uuid5(
                _DEFAULTS_NAMESPACE, f"{policy.journey}/{policy.severity}"
            )
            self._put_policy(uow, policy_id, policy, UNCONDITIONAL)
            uow.session.flush()  # the next policy's (journey, severity) check sees this one
        entries = [
            *(("resolution_code", item) for item in doc.taxonomy.resolution_codes),
            *(("root_cause", item) for item in doc.taxonomy.root_causes),
        ]
        for kind, item in entries:
            self._put_taxonomy(uow, kind, item.key, TaxonomyIn(label=item.label), UNCONDITIONAL)


# --- the defaults document -------------------------------------------------------------------

_CONFIG_TABLES: tuple[type[Any], ...] = (
    CalendarRow,
    SlaPolicyRow,
    LadderRow,
    ChannelRow,
    TaxonomyEntry,
)


def load_document(path: str | Path) -> dict[str, Any]:
    """Read a defaults document (YAML); `apply_defaults` validates it."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a defaults document is a mapping at the top level")
    return data


def apply_defaults(
    uow_factory: UowFactory,
    clock: Clock,
    document: dict[str, Any],
    *,
    webhook_url: str | None,
    webhook_secret: str | None,
    smtp: dict[str, Any] | None = None,
) -> bool:
    """Load the defaults document in one transaction if no configuration exists yet.

    Webhook channels get `webhook_url` and `webhook_secret` (a random secret when None) and are
    disabled without a URL; e-mail channels get the `smtp` settings (host, port, sender,
    starttls, username, password, ...) merged over theirs and are disabled without them.
    Returns True when it loaded, False when configuration existed (or another process loaded
    it meanwhile). Raises ValueError when the document is invalid.
    """
    return PolicyService(uow_factory, clock).apply_defaults(
        document, webhook_url=webhook_url, webhook_secret=webhook_secret, smtp=smtp
    )


def _required(value: str | None, field: str) -> str:
    if value is None:
        raise _invalid(field, "required in a defaults document")
    return value


def _at_load_time(
    channel: ChannelIn,
    webhook_url: str | None,
    webhook_secret: str | None,
    smtp: dict[str, Any] | None,
) -> ChannelIn:
    """A document channel with what only the running installation knows filled in."""
    config, enabled = dict(channel.config), channel.enabled
    if channel.kind == "webhook":
        config["url"] = webhook_url or config.get("url")
        config["secret"] = webhook_secret or config.get("secret") or secrets.token_urlsafe(32)
        enabled = enabled and webhook_url is not None
    elif channel.kind == "email":
        config.update(smtp or {})
        enabled = enabled and smtp is not None
    return channel.model_copy(update={"config": config, "enabled": enabled})
