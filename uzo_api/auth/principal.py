"""Who is calling: the result of authenticating a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import uuid


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    subscription_id: uuid.UUID
    method: Literal["jwt", "api_key"]
    family_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    #: the subscription's owner holds every level on every object of the subscription
    is_owner: bool = False
    #: where a dedicated-infrastructure subscription's resources are (encrypted, see
    #: uzo_api.db.router); None: the shared (control) database
    dedicated_database: str | None = field(default=None, repr=False)
