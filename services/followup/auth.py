"""Who may call followup."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.auth import Principal, require_role

# Owners and managers (and admins) work loops; what each one sees is decided per loop.
StaffDep = Annotated[Principal, Depends(require_role("owner", "manager"))]
# Configuration (SLA policies, calendars, ladders, channels, taxonomy) is written by admins.
AdminDep = Annotated[Principal, Depends(require_role("admin"))]
