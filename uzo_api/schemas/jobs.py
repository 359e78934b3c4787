"""Jobs (a folder's schedulable units that hold workflows) and job packages."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from uzo_api.pagination import Page
from uzo_api.schemas.common import RequestModel, ResponseModel

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=2000)]
MAX_PACKAGE_JOBS = 500


def not_null(value: object) -> object:
    """For PATCH fields that may be left out but not set to null (runs only when given)."""
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


class JobCreate(RequestModel):
    name: Name
    description: Description | None = None


class JobUpdate(RequestModel):
    """Fields left out keep their value; `description: null` clears it."""

    name: Name | None = None
    description: Description | None = None

    _name = field_validator("name")(not_null)


class JobRead(ResponseModel):
    id: uuid.UUID
    name: str
    description: str | None
    folder_id: uuid.UUID
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class JobPage(Page[JobRead]):
    pass


class JobPackageCreate(RequestModel):
    name: Name
    description: Description | None = None


class JobPackageUpdate(RequestModel):
    """Fields left out keep their value; `description: null` clears it."""

    name: Name | None = None
    description: Description | None = None

    _name = field_validator("name")(not_null)


class JobPackageJobsUpdate(RequestModel):
    """The package's jobs, in the order they run; replaces the previous list."""

    job_ids: list[uuid.UUID] = Field(
        max_length=MAX_PACKAGE_JOBS,
        description="Each job at most once, each readable by you.",
    )


class JobPackageRead(ResponseModel):
    id: uuid.UUID
    name: str
    description: str | None
    job_ids: list[uuid.UUID] = Field(description="The package's live jobs, in order.")
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class JobPackagePage(Page[JobPackageRead]):
    pass
