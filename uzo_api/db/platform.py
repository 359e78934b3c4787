"""The one way a request reaches other tenants' rows: a platform admin's scope (ADR 0013).

Row-Level Security shows a transaction its own tenant's rows. Tables listed in the
migrations' ``PLATFORM_TABLES`` (today: ``subscriptions``) carry a second policy for
the application role, true while ``uzo_platform_scope()`` is: the transaction-local
setting ``app.platform_admin`` names a user who is in ``platform_admins`` *for the
transaction's own tenant*, active, in an active subscription. So the setting is no
key by itself: a tenant that somehow set it to its own user id, or to a platform
admin's id from another tenant, sees nothing more.

Only :meth:`uzo_api.authz.Authorizer.platform_scope` enters the scope, after it has
checked the authenticated principal; no request input reaches these functions.
:func:`acting_in` is the other narrow primitive: it runs statements of the same
transaction as another tenant (a platform admin creating a subscription and its
owner), and always restores the caller's tenant.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text

from uzo_api.db.session import current_tenant

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterator

    from sqlalchemy.orm import Session

_SET_SCOPE = text("SELECT set_config('app.platform_admin', :uid, true)")
_SET_TENANT = text("SELECT set_config('app.subscription_id', :sid, true)")
_IS_ADMIN = text("SELECT uzo_is_platform_admin(:uid)")


def is_platform_admin(session: Session, user_id: uuid.UUID) -> bool:
    """Whether ``user_id`` is a platform admin of the session's tenant (a definer lookup:
    the application role cannot read ``platform_admins`` itself)."""
    return bool(session.scalar(_IS_ADMIN, {"uid": user_id}))


@contextmanager
def platform_scope(session: Session, user_id: uuid.UUID) -> Iterator[None]:
    """Statements inside see the platform tables of every tenant, for this block only.

    The block runs in a savepoint: if anything inside raises, rolling back to it also
    restores the setting (PostgreSQL undoes ``set_config`` with the savepoint), so the
    scope never outlives the block, even after a failed statement.
    """
    with session.begin_nested():
        session.execute(_SET_SCOPE, {"uid": str(user_id)})
        yield
        session.flush()  # what the block changed is written inside the scope
        session.execute(_SET_SCOPE, {"uid": ""})


@contextmanager
def acting_in(session: Session, subscription_id: uuid.UUID) -> Iterator[None]:
    """Statements inside run as ``subscription_id``'s tenant, in the same transaction.

    The session's own tenant (``session.info``) is left as it is, so later transactions
    are the caller's again; in this one it is restored when the block ends (a savepoint,
    as in :func:`platform_scope`, restores it when the block raises).
    """
    own = current_tenant(session)
    with session.begin_nested():  # flushes the caller's pending rows first, as the caller
        session.execute(_SET_TENANT, {"sid": str(subscription_id)})
        yield
        session.flush()  # rows added inside are written as the other tenant
        session.execute(_SET_TENANT, {"sid": str(own) if own else ""})
