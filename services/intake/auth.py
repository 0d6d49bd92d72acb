"""Who may call intake: contact-center tools (and admins), each limited to its own complaints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shared.auth import Principal, require_role

_client = require_role("intake-client")


async def rate_limited_client(
    request: Request, principal: Principal = Depends(_client)
) -> Principal:
    request.app.state.container.limiter.check(principal.subject)
    return principal


ClientDep = Annotated[Principal, Depends(rate_limited_client)]
