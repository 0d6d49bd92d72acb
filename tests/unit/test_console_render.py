"""How the console writes times: spans, "in ..."/"... ago", and instants in the viewer's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.followup.console.render import duration, local, relative

NOW = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)


def test_durations_keep_the_two_largest_units() -> None:
    assert duration(timedelta(seconds=40)) == "40 s"
    assert duration(timedelta(minutes=5, seconds=59)) == "5 min"
    assert duration(timedelta(hours=2, minutes=5)) == "2 h 5 min"
    assert duration(timedelta(days=3, hours=4, minutes=9)) == "3 d 4 h"
    assert duration(-timedelta(hours=1)) == "1 h 0 min"


def test_relative_times() -> None:
    assert relative(NOW + timedelta(minutes=90), NOW) == "in 1 h 30 min"
    assert relative(NOW - timedelta(days=2), NOW) == "2 d 0 h ago"
    assert relative(NOW, NOW) == "just now"
    assert relative(None, NOW) == ""


def test_instants_show_in_the_viewer_s_zone_across_a_dst_change() -> None:
    new_york = ZoneInfo("America/New_York")
    # 06:30 UTC on 8 March 2026 is 01:30 EST; a day later the clocks have sprung forward.
    assert local(NOW, new_york) == "Sun 08 Mar 01:30 EST"
    assert local(NOW + timedelta(days=1), new_york) == "Mon 09 Mar 02:30 EDT"
    assert local(None, new_york) == "—"
