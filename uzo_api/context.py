"""One request's unit of work: its principal, its tenant session and its authorizer.

The session is opened once per request with the tenant set (RLS), committed after the
route returns and before the response is sent, and rolled back if anything raised: the
authorization, the change and its audit row share one transaction. A service method
takes the context; it never opens a transaction of its own, except around a call to a
remote endpoint, which must not hold a database transaction open while it waits.

``session`` is in the database that holds the tenant's resources (uzo_api.db.router);
``control`` is in the control database, which holds identity: the subscription, users
and their credentials. For a shared tenant both are the same session. For a dedicated
one they are two transactions, control committed first; identity rows a service
changes in ``control`` are copied into ``session`` with :meth:`RequestContext.mirror`
(tenant resources refer to them by foreign key), see ADR 0014.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from uzo_api.authz import Authorizer
from uzo_api.db.mirror import mirror_rows

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from uzo_api.auth.principal import Principal
    from uzo_api.db.models import Subscription, User


@dataclass(frozen=True)
class RequestContext:
    principal: Principal
    session: Session
    authz: Authorizer
    control: Session

    @classmethod
    def of(
        cls, principal: Principal, session: Session, control: Session | None = None
    ) -> RequestContext:
        return cls(
            principal=principal,
            session=session,
            authz=Authorizer(session, principal),
            control=control if control is not None else session,
        )

    @property
    def dedicated(self) -> bool:
        return self.control is not self.session

    def mirror(self, *rows: Subscription | User) -> None:
        """Copy identity rows just changed in ``control`` into the tenant's database."""
        if self.dedicated:
            self.control.flush()
            mirror_rows(self.session, rows)
