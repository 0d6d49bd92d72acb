"""Who may call routing."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.auth import Principal, require_role

AdminDep = Annotated[Principal, Depends(require_role("admin"))]
ManagerDep = Annotated[Principal, Depends(require_role("manager"))]
StaffDep = Annotated[Principal, Depends(require_role("owner", "manager"))]
