"""One request's unit of work: its principal, its tenant session and its authorizer.

The session is opened once per request with the tenant set (RLS), committed after the
route returns and before the response is sent, and rolled back if anything raised: the
authorization, the change and its audit row share one transaction. A service method
takes the context; it never opens a transaction of its own, except around a call to a
remote endpoint, which must not hold a database transaction open while it waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from uzo_api.authz import Authorizer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from uzo_api.auth.principal import Principal


@dataclass(frozen=True)
class RequestContext:
    principal: Principal
    session: Session
    authz: Authorizer

    @classmethod
    def of(cls, principal: Principal, session: Session) -> RequestContext:
        return cls(principal=principal, session=session, authz=Authorizer(session, principal))
