"""Response bodies of `GET /v1/metrics/journeys`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

MetricsGroup = Literal["stage", "owner"]


class RefOut(BaseModel):
    key: str
    name: str


class VolumeOut(BaseModel):
    loops: int = Field(description="Loops opened in the period.")
    complaints: int = Field(description="Complaints in those loops (the sum of their contacts).")


class DurationOut(BaseModel):
    count: int = Field(description="Loops opened in the period that got there.")
    median_s: float | None = Field(None, description="Median, seconds; None without any.")
    p90_s: float | None = Field(None, description="90th percentile, seconds; None without any.")


class PromisesOut(BaseModel):
    due: int = Field(
        description="Promises due in the period, not cancelled, whose due time has passed "
        "(or already kept)."
    )
    kept_on_time: int = Field(description="Of those, kept at or before their due time.")
    kept_rate: float | None = Field(None, description="kept_on_time / due; None when due is 0.")


class RepeatContactsOut(BaseModel):
    loops: int = Field(description="Loops opened in the period with more than one complaint.")
    rate: float | None = Field(None, description="loops / volume.loops; None without loops.")


class CsatOut(BaseModel):
    count: int = Field(description="Loops closed in the period with a customer score.")
    mean: float | None = Field(None, description="Mean score (1-5); None without any.")


class RootCauseOut(BaseModel):
    root_cause: str
    count: int


class FiguresOut(BaseModel):
    volume: VolumeOut
    time_to_acknowledge: DurationOut
    time_to_resolve: DurationOut
    promises: PromisesOut
    overdue_now: int = Field(
        description="Loops (opened at any time) not resolved or closed with something past due now."
    )
    escalations: int = Field(description="Overdue and SLA-breach alerts fired in the period.")
    repeat_contacts: RepeatContactsOut
    csat: CsatOut
    top_root_causes: list[RootCauseOut] = Field(
        description="The five most frequent root causes of loops opened in the period."
    )


class _GroupKey(BaseModel):
    key: str = Field(description="The stage or owner key, after `group`.")
    name: str


# Pydantic orders fields base-last-first: the key before the figures.
class GroupRowOut(FiguresOut, _GroupKey):
    pass


class JourneyFiguresOut(BaseModel):
    journey: RefOut
    totals: FiguresOut
    rows: list[GroupRowOut] = Field(description="One row per stage or per owner, after `group`.")


class _OwnerKey(BaseModel):
    owner: RefOut


class OwnerFiguresOut(FiguresOut, _OwnerKey):
    pass


class JourneyMetricsOut(BaseModel):
    from_: datetime = Field(serialization_alias="from", description="Start of the period.")
    to: datetime = Field(description="End of the period (excluded).")
    as_of: datetime = Field(description="The instant `overdue_now` and the promises refer to.")
    group: MetricsGroup
    journeys: list[JourneyFiguresOut]
    by_owner: list[OwnerFiguresOut] = Field(
        description="The same figures per owner across the journeys shown (an owner: only "
        "themselves)."
    )
