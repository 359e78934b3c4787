"""Re-encrypt every stored connector credential under the current key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from uzo_api.db.models import Connector

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from uzo_connectors.credentials import CredentialVault


def rotate_credentials(owner_engine: Engine, vault: CredentialVault) -> int:
    """Rotate all tenants' credentials in one transaction (as the owner role, across tenants).

    Run after putting a new key first in UZO_SECRET_KEYS; afterwards the old keys can go.
    Any token no key decrypts aborts the whole rotation, leaving every row as it was.
    """
    rotated = 0
    with owner_engine.begin() as conn:
        rows = conn.execute(
            select(Connector.id, Connector.encrypted_credentials)
            .where(Connector.encrypted_credentials.is_not(None))
            .with_for_update()
        ).all()
        for row_id, token in rows:
            if token is None:
                continue
            conn.execute(
                update(Connector)
                .where(Connector.id == row_id)
                .values(encrypted_credentials=vault.rotate(token))
            )
            rotated += 1
    return rotated
