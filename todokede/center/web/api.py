"""The center's JSON API under ``/api``: the router, authentication, reports in, triage and
incidents. Publication, the public (anonymised, published-only) endpoints and users are
in ``api_months``, on the same router.

Roles: a reporter submits and sees only its own reports; an analyst sees and triages all,
and reads a report's audit trail as its page shows it; an admin also manages users. A
reporter asking for another's report gets 404, as if it did not exist. Reads of a
report's confidential part (reporter, evidence) are audited by the store. A draft's
content is changed (``PUT``) or sent only by its owner or an admin. The JSON shapes are
in ``shapes.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from todokede.center import months
from todokede.center.intake.schema import (
    ID_MAX,
    Addition,
    DamageCode,
    MethodCode,
    Report,
    Status,
    StoredReport,
    Triage,
)
from todokede.center.store import NewReport, Store
from todokede.center.store.audit import AUDIT_SHOWN
from todokede.center.store.auth import User, parse_bearer
from todokede.center.store.filters import Actual, ReportFilter
from todokede.center.web.shapes import (
    ERRORS,
    AuditOut,
    Created,
    DuplicateIn,
    ErrorOut,
    IncidentIn,
    IncidentLinkIn,
    IncidentOut,
    Page,
    StatusIn,
    Summary,
    without_note,
)
from todokede.center.web.writer import BatchWriter
from todokede.errors import (
    AccessDenied,
    InputError,
    NotFound,
    Unauthenticated,
    UnsupportedMedia,
)

MONTH = months.PATTERN

_bearer = HTTPBearer(auto_error=False, description="An API token from `todokede user add`.")


IDEMPOTENCY_KEY_MAX = 200


router = APIRouter(prefix="/api", responses=ERRORS)


# -- dependencies ------------------------------------------------------------------------


# Dependencies without I/O are ``async def``: FastAPI runs them on the event loop
# instead of handing each to the thread pool.


async def get_store(request: Request) -> Store:
    store = request.app.state.store
    assert isinstance(store, Store)
    return store


StoreDep = Annotated[Store, Depends(get_store)]


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    return await authenticate(request, credentials.credentials if credentials else None)


async def authenticate(request: Request, token: str | None) -> User:
    """The user of a bearer token, or Unauthenticated. Asked of the store on every request
    (one hash, one indexed lookup), so a revoked token, a disabled user or a new role
    counts from the next request on, whichever process made the change."""
    if token is None:
        raise Unauthenticated("an Authorization: Bearer TOKEN header is required")
    store: Store = request.app.state.store
    if len(token) > 200:
        raise Unauthenticated("unknown or revoked token")
    user = await run_in_threadpool(store.user_for_token, token)
    if user is None:
        raise Unauthenticated("unknown or revoked token")
    return user


UserDep = Annotated[User, Depends(current_user)]


async def analyst(user: UserDep) -> User:
    if not user.is_analyst:
        raise AccessDenied("analysts and admins only")
    return user


async def admin(user: UserDep) -> User:
    if not user.is_admin:
        raise AccessDenied("admins only")
    return user


AnalystDep = Annotated[User, Depends(analyst)]
AdminDep = Annotated[User, Depends(admin)]
ReportId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The report's id.")]
MonthPath = Annotated[str, Path(pattern=MONTH, description="YYYY-MM")]


def _visible(store: Store, user: User, id: int) -> None:
    """NotFound unless ``user`` may see report ``id`` (reporters: their own only)."""
    if not user.may_read(store.report_owner(id)):
        raise NotFound(f"no report {id}")


# -- reports -----------------------------------------------------------------------------


def _view(sr: StoredReport, user: User) -> StoredReport:
    """What ``user`` may see of a stored report: reporters do not see internal notes."""
    return sr if user.is_analyst else without_note(sr)


# The submission endpoint is the hot path: it reads the body itself and lets pydantic
# parse and validate it in one step (Rust), skipping FastAPI's parameter machinery; its
# OpenAPI entry is written out to match.
_SUBMIT_OPENAPI: dict[str, Any] = {
    "security": [{"HTTPBearer": []}],
    "parameters": [
        {
            "name": "draft",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean", "default": False},
            "description": "Store it as a draft (status `draft`: not received, not counted) "
            "to change with `PUT /api/reports/{id}` and send later.",
        },
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
            "description": "Makes a retried submission return the first one's id.",
        },
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}},
    },
}


@router.post(
    "/reports",
    status_code=201,
    response_model=Created,
    tags=["reports"],
    openapi_extra=_SUBMIT_OPENAPI,
    responses={415: {"model": ErrorOut, "description": "Not JSON"}},
)
async def submit(request: Request) -> Response:
    """Submit a report (partial reports are accepted). Returns the new report's id once
    it is committed."""
    user = await authenticate(request, parse_bearer(request.headers.get("authorization")))
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        raise InputError(f"at most {IDEMPOTENCY_KEY_MAX} characters", field="Idempotency-Key")
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMedia(f"send the report as application/json, not {kind[:100]!r}")
    draft = _flag(request.query_params.get("draft"), "draft")
    body = await request.body()
    try:
        report = Report.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None
    _no_received(report)
    writer: BatchWriter = request.app.state.writer
    triage = Triage(status="draft") if draft else None
    sr = await writer.add(NewReport(report, user.name, triage, key))
    received = sr.report.received
    assert received is not None
    return JSONResponse(
        {"id": sr.id, "status": sr.triage.status, "received": received.isoformat(),
         "url": f"/api/reports/{sr.id}"},
        status_code=201,
    )  # fmt: skip


def _no_received(report: Report) -> None:
    """届出年月日 is the day the report reaches the center: a submission cannot set it
    (else a report could be backdated into a month already published)."""
    if report.received is not None:
        raise InputError(
            "set by the center (the day the report arrives, or a draft is sent); leave it out",
            field="received",
        )


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() in ("false", "0", ""):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise InputError("must be true or false", field=name)


@router.get("/reports", response_model=Page, tags=["reports"])
def list_reports(
    user: UserDep,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    month: Annotated[str | None, Query(pattern=MONTH)] = None,
    status: Annotated[Status | None, Query()] = None,
    method: Annotated[MethodCode | None, Query(description="An effective method code.")] = None,
    damage: Annotated[DamageCode | None, Query(description="An effective damage code.")] = None,
    actual_damage: Annotated[
        Actual | None, Query(description="実被害: yes, no, or unknown (nobody has said).")
    ] = None,
    incident: Annotated[
        int | None, Query(ge=1, le=ID_MAX, description="Reports linked to this incident.")
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Words that must all appear (or a report id)."),
    ] = None,
) -> Page:
    """Reports, oldest first: all of them for analysts, a reporter's own for reporters,
    with the inbox's filters. A draft is its reporter's until sent: analysts see drafts
    only with `status=draft`."""
    owner = None if user.is_analyst else user.name
    filters = ReportFilter(
        status=status,
        month=month,
        method=method,
        damage=damage,
        actual=actual_damage,
        incident=incident,
        search=q,
        drafts=not user.is_analyst,
    )
    items, total = store.list_reports(owner=owner, limit=limit, offset=offset, filters=filters)
    return Page(items=[Summary.of(sr) for sr in items], total=total, limit=limit, offset=offset)


@router.get("/reports/{id}", response_model=StoredReport, tags=["reports"])
def get_report(id: ReportId, user: UserDep, store: StoreDep) -> StoredReport:
    """One report with its confidential parts (the read is audited)."""
    _visible(store, user, id)
    return _view(store.get_report(id, actor=user.name), user)


def _editable(store: Store, user: User, id: int) -> None:
    """Only a report's owner (or an admin) changes its content; others' reports stay
    invisible to reporters (404)."""
    owner = store.report_owner(id)
    if not user.may_read(owner):
        raise NotFound(f"no report {id}")
    if owner != user.name and not user.is_admin:
        raise AccessDenied("only the report's owner or an admin may change it")


_DRAFT_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "Not a draft: sent already (add to it instead)"}
}
_LINK_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "A link to no such report or incident, or to itself"}
}


@router.put("/reports/{id}", response_model=StoredReport, tags=["reports"], responses=_DRAFT_ERRORS)
def update_report(id: ReportId, report: Report, user: UserDep, store: StoreDep) -> StoredReport:
    """Replace a draft's content (its owner or an admin). A sent report cannot be
    changed (409): send an addition instead. Stored additions are kept."""
    _editable(store, user, id)
    _no_received(report)
    return _view(store.update_report(id, report, actor=user.name), user)


@router.post(
    "/reports/{id}/send", response_model=StoredReport, tags=["reports"], responses=_DRAFT_ERRORS
)
def send_draft(id: ReportId, user: UserDep, store: StoreDep) -> StoredReport:
    """Send a draft (its owner or an admin): status `received`, received today. 409 if
    it was sent already."""
    _editable(store, user, id)
    return _view(store.send_draft(id, actor=user.name), user)


@router.post("/reports/{id}/additions", response_model=StoredReport, tags=["reports"])
def add_addition(id: ReportId, addition: Addition, user: UserDep, store: StoreDep) -> StoredReport:
    """Append a later finding (追加報告) to a report: its reporter or an analyst."""
    _visible(store, user, id)
    return _view(store.add_addition(id, addition, actor=user.name), user)


@router.put(
    "/reports/{id}/triage", response_model=StoredReport, tags=["triage"], responses=_LINK_ERRORS
)
def set_triage(id: ReportId, triage: Triage, user: AnalystDep, store: StoreDep) -> StoredReport:
    """Classify: replace the report's triage (status, overrides, links, public text)."""
    return store.set_triage(id, triage, actor=user.name)


@router.post("/reports/{id}/status", response_model=StoredReport, tags=["triage"])
def set_status(id: ReportId, body: StatusIn, user: AnalystDep, store: StoreDep) -> StoredReport:
    """Set a report's status."""
    return store.update_triage(id, {"status": body.status}, actor=user.name)


@router.post(
    "/reports/{id}/duplicate", response_model=StoredReport, tags=["triage"], responses=_LINK_ERRORS
)
def set_duplicate(
    id: ReportId, body: DuplicateIn, user: AnalystDep, store: StoreDep
) -> StoredReport:
    """Mark a report as a duplicate of another (never counted twice), or unlink it."""
    return store.update_triage(id, {"duplicate_of": body.of}, actor=user.name)


@router.post(
    "/reports/{id}/incident", response_model=StoredReport, tags=["triage"], responses=_LINK_ERRORS
)
def set_incident(
    id: ReportId, body: IncidentLinkIn, user: AnalystDep, store: StoreDep
) -> StoredReport:
    """Attach a report to an incident (one incident may have several reports)."""
    return store.update_triage(id, {"incident_id": body.incident_id}, actor=user.name)


@router.get("/reports/{id}/audit", response_model=list[AuditOut], tags=["triage"])
def report_audit(id: ReportId, user: AnalystDep, store: StoreDep) -> list[AuditOut]:
    """Who did what to a report, oldest first: what the report's page shows analysts
    (and admins), the same entries under the same rule."""
    store.report_owner(id)  # NotFound
    return [AuditOut(**vars(e)) for e in store.audit_log(id, limit=AUDIT_SHOWN)]


# -- incidents ---------------------------------------------------------------------------


@router.post("/incidents", status_code=201, response_model=IncidentOut, tags=["triage"])
def add_incident(body: IncidentIn, user: AnalystDep, store: StoreDep) -> IncidentOut:
    """Open an incident (what happened), to which reports are then linked."""
    return _incident(store.add_incident(body.title, actor=user.name))


@router.get("/incidents/{id}", response_model=IncidentOut, tags=["triage"])
def get_incident(
    id: Annotated[int, Path(ge=1, le=2**31 - 1)], user: AnalystDep, store: StoreDep
) -> IncidentOut:
    """An incident and the ids of its reports."""
    return _incident(store.get_incident(id))


def _incident(inc: Any) -> IncidentOut:
    return IncidentOut(
        id=inc.id,
        title=inc.title,
        created_by=inc.created_by,
        created_at=inc.created_at,
        report_ids=list(inc.report_ids),
    )
