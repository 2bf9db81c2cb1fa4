"""The JSON shapes of the center's API (what ``api.py`` takes and returns, and its
errors), as pydantic models: FastAPI validates with them and writes them into
``/openapi.json``. The report itself is ``center.intake.schema.Report``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from todokede.center.intake.schema import Id, Status, StoredReport
from todokede.center.publication.published import PublicReport
from todokede.center.store.publications import Revision


class ErrorOut(BaseModel):
    """Every error: a message and, when it concerns one field, that field's path."""

    error: str
    field: str | None = Field(description='e.g. "reporter.email", "systems[0].os"')
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="All problems found, when several: [{field, error}]"
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in [(400, "Malformed request"), (401, "No valid token"),
                       (403, "Role not allowed"), (404, "Not found (or not yours)"),
                       (413, "Body too large"), (422, "Invalid field")]
}  # fmt: skip


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Created(_Out):
    id: int
    status: str
    received: date
    url: str


def without_note(sr: StoredReport) -> StoredReport:
    """A stored report as its reporter sees it: the analysts' internal note left out."""
    return sr.model_copy(update={"triage": sr.triage.model_copy(update={"note": None})})


class Summary(_Out):
    """A report in a list: no confidential parts (reporter, evidence, narrative)."""

    id: int
    title: str | None
    received: date | None
    status: str
    methods: list[str]
    damage: list[str]
    actual_damage: bool | None = Field(description="実被害: true, false, or null (unknown)")
    counted: bool
    owner: str | None
    incident_id: int | None
    duplicate_of: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, sr: StoredReport) -> Summary:
        return cls(
            id=sr.id,
            title=sr.report.title,
            received=sr.report.received,
            status=sr.triage.status,
            methods=sr.effective_methods(),
            damage=sr.effective_damage(),
            actual_damage=sr.effective_actual_damage(),
            counted=sr.counted,
            owner=sr.owner,
            incident_id=sr.triage.incident_id,
            duplicate_of=sr.triage.duplicate_of,
            created_at=sr.created_at,
            updated_at=sr.updated_at,
        )


class Page(_Out):
    items: list[Summary]
    total: int
    limit: int
    offset: int


class StatusIn(_Out):
    status: Status


class DuplicateIn(_Out):
    of: Id | None = Field(description="The report this one duplicates; null unlinks.")


class IncidentLinkIn(_Out):
    incident_id: Id | None = Field(description="The incident; null unlinks.")


class IncidentIn(_Out):
    title: str = Field(min_length=1, max_length=300)


class IncidentOut(_Out):
    id: int
    title: str
    created_by: str
    created_at: datetime
    report_ids: list[int]


class UserIn(_Out):
    name: str = Field(min_length=1, max_length=100)
    role: str = Field(pattern="^(reporter|analyst|admin)$")
    password: str | None = Field(default=None, min_length=8, max_length=200)


class UserCreated(_Out):
    name: str
    role: str
    token: str


class Me(_Out):
    name: str
    role: str


class AuditOut(_Out):
    id: int
    at: datetime
    actor: str
    action: str
    report_id: int | None
    detail: str | None


class Published(_Out):
    """A month's publication: its latest revision."""

    month: str
    published: bool  # false once withdrawn
    revision: int
    published_at: datetime
    published_by: str
    digest: str | None
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = None

    @classmethod
    def of(cls, rev: Revision) -> Published:
        return cls(
            month=rev.month,
            published=not rev.withdrawn,
            revision=rev.revision,
            published_at=rev.published_at,
            published_by=rev.published_by,
            digest=rev.digest,
            withdrawn_at=rev.withdrawn_at,
            withdrawn_reason=rev.withdrawn_reason,
        )


class PublishIn(_Out):
    """The confirmation: the digest of the preview that was looked at."""

    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="`digest` of the preview")


class WithdrawIn(_Out):
    reason: str | None = Field(default=None, max_length=2000, description="Shown publicly")


class Preview(_Out):
    """What publishing the month now would publish, as the public will see it."""

    month: str
    revision: int  # the number it would get
    digest: str  # confirm with this (POST .../publish)
    total: int
    with_actual_damage: int
    without_actual_damage: int
    actual_damage_unknown: int
    reports: list[PublicReport]
    current: Published | None  # the month's publication now, if any


class PublicMonth(_Out):
    month: str
    revision: int
    published_at: datetime
    total: int
    with_actual_damage: int
    without_actual_damage: int
    actual_damage_unknown: int
    reports: list[PublicReport]


class Months(_Out):
    months: list[str]
    withdrawn: list[str] = Field(default_factory=list, description="Withdrawn months")
