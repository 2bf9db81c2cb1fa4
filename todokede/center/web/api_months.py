"""The API's months and users under ``/api``: previewing, publishing and withdrawing a
month, the public (anonymised, published-only) months, and users. Registered on the
router of ``api``; the JSON shapes are in ``shapes.py``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import Request

from todokede.center.publication import snapshot
from todokede.center.store import Store
from todokede.center.web.api import AdminDep, AnalystDep, MonthPath, StoreDep, UserDep
from todokede.center.web.api import router as router  # the routes here are on it
from todokede.center.web.shapes import (
    ErrorOut,
    Me,
    Months,
    Preview,
    PublicMonth,
    Published,
    PublishIn,
    UserCreated,
    UserIn,
    WithdrawIn,
)

# -- publication -------------------------------------------------------------------------


def _today(request: Request) -> date:
    today: Callable[[], date] = request.app.state.today
    return today()


def _take(store: Store, month: str, request: Request) -> snapshot.Taken:
    snapshot.check_month(month, _today(request))
    return snapshot.take(store, month)


_MONTH_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "A month that cannot be published (not closed, "
          "in the future, before the scheme), or changed since the preview (`digest`)"}
}  # fmt: skip


@router.get(
    "/months/{month}/preview", response_model=Preview, tags=["publication"], responses=_MONTH_ERRORS
)
def preview(month: MonthPath, request: Request, user: AnalystDep, store: StoreDep) -> Preview:
    """What publishing a closed month now would publish, exactly as the public will see
    it, and its `digest`: publish by confirming that digest."""
    taken = _take(store, month, request)
    now = store.revision(month)
    return Preview(
        month=month,
        revision=(now.revision if now else 0) + 1,
        digest=taken.digest,
        total=len(taken.snapshot.reports),
        with_actual_damage=taken.snapshot.with_actual_damage,
        without_actual_damage=taken.snapshot.without_actual_damage,
        actual_damage_unknown=taken.snapshot.actual_damage_unknown,
        reports=taken.snapshot.reports,
        current=Published.of(now) if now else None,
    )


@router.post(
    "/months/{month}/publish",
    response_model=Published,
    tags=["publication"],
    responses=_MONTH_ERRORS,
)
def publish(
    month: MonthPath, body: PublishIn, request: Request, user: AnalystDep, store: StoreDep
) -> Published:
    """Publish a closed month as its next revision (1, 2, ...): its snapshot is frozen
    and every public view serves it until the month is published again. `digest` is the
    preview's: if the month changed since, nothing is published (409 on `digest`)."""
    snapshot.check_month(month, _today(request))
    rev = store.publish_month(month, actor=user.name, today=_today(request), digest=body.digest)
    return Published.of(rev)


@router.post(
    "/months/{month}/withdraw",
    response_model=Published,
    tags=["publication"],
    responses={409: {"model": ErrorOut, "description": "Withdrawn already"}},
)
def withdraw(month: MonthPath, body: WithdrawIn, user: AnalystDep, store: StoreDep) -> Published:
    """Withdraw a published month: its public views show a withdrawal notice (410). 404
    if it was never published, 409 if it is withdrawn already."""
    return Published.of(store.withdraw_month(month, actor=user.name, reason=body.reason))


@router.get("/months/{month}/revisions", response_model=list[Published], tags=["publication"])
def revisions(month: MonthPath, user: AnalystDep, store: StoreDep) -> list[Published]:
    """Every revision of a month, oldest first (the audit log has who and when)."""
    return [Published.of(r) for r in store.revisions(month)]


@router.get("/public/months", response_model=Months, tags=["public"])
def public_months(store: StoreDep) -> Months:
    """The published months, and the withdrawn ones (no authentication)."""
    states = store.latest_revisions()
    return Months(
        months=[r.month for r in states if not r.withdrawn],
        withdrawn=[r.month for r in states if r.withdrawn],
    )


@router.get(
    "/public/months/{month}",
    response_model=PublicMonth,
    tags=["public"],
    responses={410: {"model": ErrorOut, "description": "Withdrawn"}},
)
def public_month(month: MonthPath, store: StoreDep) -> PublicMonth:
    """A published month's cases as published (its current revision), anonymised: no
    reporter, no evidence, no source addresses, no reporter-written text — only the
    classification codes, dates and the public text (the analyst's, else the approved
    draft, else the codes' labels; no authentication). 410 once withdrawn."""
    frozen = snapshot.published(store, month)
    snap = frozen.snapshot
    return PublicMonth(
        month=month,
        revision=frozen.revision.revision,
        published_at=frozen.revision.published_at,
        total=len(snap.reports),
        with_actual_damage=snap.with_actual_damage,
        without_actual_damage=snap.without_actual_damage,
        actual_damage_unknown=snap.actual_damage_unknown,
        reports=snap.reports,
    )


# -- users -------------------------------------------------------------------------------


@router.get("/me", response_model=Me, tags=["users"])
def me(user: UserDep) -> Me:
    """Who the token belongs to."""
    return Me(name=user.name, role=user.role)


@router.post("/users", status_code=201, response_model=UserCreated, tags=["admin"])
def add_user(body: UserIn, user: AdminDep, store: StoreDep) -> UserCreated:
    """Create a user; the response holds its API token (shown once)."""
    token = store.add_user(body.name, body.role, body.password)
    return UserCreated(name=body.name, role=body.role, token=token)
