"""The JSON API on both backends: submission, listing, triage, publication, and access
control as a table (every endpoint x every role x own/other's report)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from todokede.center.intake.schema import Report, Triage
from todokede.center.store import Store


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def next_month_start() -> date:
    """The first day of next month: the center's calendar when this month has closed."""
    return (datetime.now(UTC).date().replace(day=1) + timedelta(days=32)).replace(day=1)


IMAP = {
    "title": "tcp_wrapperのログにIMAPへの不審なアクセス",
    "reporter": {"organisation": "Example Univ.", "name": "Taro Yamada",
                 "email": "taro@example.ac.jp", "phone": "03-0000-0000", "type": "system_admin"},
    "methods": ["access_probe"],
    "damage": ["none"],
    "actual_damage": False,
    "targets": ["imap"],
    "sources": ["192.0.2.7", "dialup-12.example.net"],
    "narrative": "Taro Yamada found 9 refused attempts; call 03-0000-0000.",
    "evidence": [{"kind": "log", "text": "Sep  1 03:12:44 mail imapd[210]: refused connect "
                  "from dialup-12.example.net; contact taro@example.ac.jp"}],
}  # fmt: skip


def test_submit_then_get(client: Any, tokens: dict[str, str], store: Store) -> None:
    r = client.post("/api/reports", json=IMAP, headers=bearer(tokens["alice"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "received" and body["url"] == f"/api/reports/{body['id']}"
    got = client.get(body["url"], headers=bearer(tokens["alice"]))
    assert got.status_code == 200
    stored = Report.model_validate(got.json()["report"])
    assert stored.received == datetime.now(UTC).date()  # set by the center
    assert stored.model_copy(update={"received": None}) == Report.model_validate(IMAP)
    assert got.json()["owner"] == "alice"
    assert [e.action for e in store.audit_log(body["id"])] == ["create", "read"]


def test_partial_report_is_accepted(client: Any, tokens: dict[str, str]) -> None:
    r = client.post("/api/reports", json={}, headers=bearer(tokens["alice"]))
    assert r.status_code == 201
    assert r.json()["received"]  # set by the center


def test_idempotency_key_header(client: Any, tokens: dict[str, str]) -> None:
    h = {**bearer(tokens["alice"]), "Idempotency-Key": "7f1c-retry"}
    first = client.post("/api/reports", json=IMAP, headers=h)
    again = client.post("/api/reports", json=IMAP, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    listed = client.get("/api/reports", headers=bearer(tokens["alice"])).json()
    assert listed["total"] == 1


def test_list_pages_and_filters(client: Any, tokens: dict[str, str], store: Store) -> None:
    for day in ("1997-08-20", "1997-09-17", "1997-09-19", "1997-09-21"):
        # Dated by the center (as when loading its history): no submission sets it.
        store.add_report(Report.model_validate({**IMAP, "received": day}), owner="bob")
    h = bearer(tokens["analyst"])
    page = client.get("/api/reports?limit=2&offset=1", headers=h).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    assert [i["received"] for i in page["items"]] == ["1997-09-17", "1997-09-19"]
    month = client.get("/api/reports?month=1997-09", headers=h).json()
    assert month["total"] == 3
    # A list never carries confidential parts.
    dumped = json.dumps(page)
    assert "taro@example.ac.jp" not in dumped and "Yamada" not in dumped


def test_reporter_lists_only_own(client: Any, tokens: dict[str, str]) -> None:
    mine = client.post("/api/reports", json=IMAP, headers=bearer(tokens["alice"])).json()["id"]
    client.post("/api/reports", json=IMAP, headers=bearer(tokens["bob"]))
    page = client.get("/api/reports", headers=bearer(tokens["alice"])).json()
    assert [i["id"] for i in page["items"]] == [mine] and page["total"] == 1
    assert client.get("/api/reports", headers=bearer(tokens["analyst"])).json()["total"] == 2


def test_triage_flow(client: Any, tokens: dict[str, str], store: Store) -> None:
    h = bearer(tokens["analyst"])
    a = client.post("/api/reports", json=IMAP, headers=bearer(tokens["alice"])).json()["id"]
    b = client.post("/api/reports", json=IMAP, headers=bearer(tokens["bob"])).json()["id"]
    triage = {"status": "triaged", "methods": ["access_probe", "security_hole_attack"],
              "note": "internal: same source as last month"}  # fmt: skip
    r = client.put(f"/api/reports/{a}/triage", json=triage, headers=h)
    assert r.status_code == 200 and r.json()["triage"]["methods"][1] == "security_hole_attack"
    assert client.post(f"/api/reports/{b}/duplicate", json={"of": a}, headers=h).status_code == 200
    inc = client.post("/api/incidents", json={"title": "IMAP sweep"}, headers=h)
    assert inc.status_code == 201
    iid = inc.json()["id"]
    for rid in (a, b):
        r = client.post(f"/api/reports/{rid}/incident", json={"incident_id": iid}, headers=h)
        assert r.status_code == 200
    assert client.get(f"/api/incidents/{iid}", headers=h).json()["report_ids"] == [a, b]
    r = client.post(f"/api/reports/{b}/status", json={"status": "closed"}, headers=h)
    assert r.json()["triage"]["status"] == "closed" and r.json()["triage"]["duplicate_of"] == a
    summary = client.get("/api/reports", headers=h).json()["items"]
    assert [(i["id"], i["counted"]) for i in summary] == [(a, True), (b, False)]
    # The reporter sees its status but not the analyst's internal note.
    own = client.get(f"/api/reports/{a}", headers=bearer(tokens["alice"])).json()
    assert own["triage"]["status"] == "triaged" and own["triage"]["note"] is None
    assert "internal" in client.get(f"/api/reports/{a}", headers=h).json()["triage"]["note"]
    # Links are checked: well-formed, but refused by the stored records (409).
    r = client.post(f"/api/reports/{a}/duplicate", json={"of": a}, headers=h)
    assert (r.status_code, r.json()["field"]) == (409, "duplicate_of")
    r = client.post(f"/api/reports/{a}/incident", json={"incident_id": 999}, headers=h)
    assert (r.status_code, r.json()["field"]) == (409, "incident_id")
    actions = [e.action for e in store.audit_log(b)]
    assert actions.count("triage") == 3


def test_additions(client: Any, tokens: dict[str, str]) -> None:
    rid = client.post("/api/reports", json=IMAP, headers=bearer(tokens["alice"])).json()["id"]
    add = {"at": "1997-09-20T09:00:00+09:00", "text": "9/19にも2回",
           "evidence": [{"kind": "log", "text": "Sep 19 ... refused"}]}  # fmt: skip
    r = client.post(f"/api/reports/{rid}/additions", json=add, headers=bearer(tokens["alice"]))
    assert r.status_code == 200
    assert r.json()["report"]["additions"][0]["text"] == "9/19にも2回"
    bad = client.post(f"/api/reports/{rid}/additions", json={"text": "x"},
                      headers=bearer(tokens["alice"]))  # fmt: skip
    assert (bad.status_code, bad.json()["field"]) == (422, "at")


def test_public_endpoints_serve_only_published_anonymised(
    client: Any, tokens: dict[str, str]
) -> None:
    h = bearer(tokens["analyst"])
    month = datetime.now(UTC).strftime("%Y-%m")  # the reports are received today
    client.app.state.today = lambda: next_month_start()  # ... and the month has closed
    ok = client.post("/api/reports", json=IMAP, headers=bearer(tokens["alice"])).json()["id"]
    unreviewed = client.post("/api/reports", json=IMAP, headers=bearer(tokens["alice"])).json()
    dup = client.post("/api/reports", json=IMAP, headers=bearer(tokens["bob"])).json()["id"]
    rejected = client.post("/api/reports", json=IMAP, headers=bearer(tokens["bob"])).json()["id"]
    client.put(
        f"/api/reports/{ok}/triage",
        json={"status": "triaged", "published_title": "IMAPサーバへのアクセス形跡",
              "published_narrative": "tcp_wrapperのログに9回の拒否記録。",
              "published_narrative_en": "Nine refused attempts in tcp_wrapper's log.",
              "note": "reporter is Taro"},
        headers=h,
    )  # fmt: skip
    client.put(f"/api/reports/{dup}/triage", json={"status": "triaged", "duplicate_of": ok},
               headers=h)  # fmt: skip
    client.post(f"/api/reports/{rejected}/status", json={"status": "rejected"}, headers=h)

    assert client.get("/api/public/months").json() == {"months": [], "withdrawn": []}
    assert client.get(f"/api/public/months/{month}").status_code == 404
    preview = client.get(f"/api/months/{month}/preview", headers=h).json()
    published = client.post(
        f"/api/months/{month}/publish", json={"digest": preview["digest"]}, headers=h
    )
    assert published.status_code == 200 and published.json()["revision"] == 1
    assert client.get("/api/public/months").json() == {"months": [month], "withdrawn": []}
    page = client.get(f"/api/public/months/{month}")
    assert page.status_code == 200
    data = page.json()
    assert [r["id"] for r in data["reports"]] == [ok]
    assert unreviewed["id"] not in [r["id"] for r in data["reports"]]
    case = data["reports"][0]
    assert case["title"] == "IMAPサーバへのアクセス形跡" and case["methods"] == ["access_probe"]
    assert case["narrative_en"].startswith("Nine refused")
    assert data["reports"] == preview["reports"]  # what the preview showed
    dumped = page.text
    for secret in ("Yamada", "taro@", "03-0000-0000", "Example Univ", "192.0.2.7",
                   "dialup-12", "reporter is Taro", "refused connect", "alice"):  # fmt: skip
        assert secret not in dumped, secret


def test_draft_update_and_send(client: Any, tokens: dict[str, str], store: Store) -> None:
    alice = bearer(tokens["alice"])
    r = client.post("/api/reports?draft=true", json={"title": "half"}, headers=alice)
    assert r.status_code == 201 and r.json()["status"] == "draft"
    rid = r.json()["id"]
    assert not store.get_report(rid).counted
    r = client.put(f"/api/reports/{rid}", json=IMAP, headers=alice)
    assert r.status_code == 200, r.text
    assert r.json()["report"]["title"] == IMAP["title"] and r.json()["triage"]["status"] == "draft"
    got = client.get(f"/api/reports/{rid}", headers=alice).json()
    assert got["report"]["methods"] == ["access_probe"] and got["report"]["reporter"]["name"]
    # Still a draft: the analysts' counts do not see it.
    assert store.list_reports(status="draft")[1] == 1
    sent = client.post(f"/api/reports/{rid}/send", headers=alice)
    assert sent.status_code == 200 and sent.json()["triage"]["status"] == "received"
    assert sent.json()["report"]["received"] == sent.json()["updated_at"][:10]
    assert store.get_report(rid).counted
    # Sent: no more changes, only additions.
    for again in (client.put(f"/api/reports/{rid}", json={"title": "rewritten"}, headers=alice),
                  client.post(f"/api/reports/{rid}/send", headers=alice)):  # fmt: skip
        assert again.status_code == 409 and "sent" in again.json()["error"], again.text
    assert store.get_report(rid).report.title == IMAP["title"]
    actions = [e.action for e in store.audit_log(rid)]
    assert actions.count("update") == 1 and actions.count("send") == 1
    # An analyst may not rewrite another's draft; a reporter does not even see it.
    draft = client.post("/api/reports?draft=1", json={}, headers=bearer(tokens["bob"])).json()
    # The analysts' list leaves drafts out unless asked; the reporter's own list has them.
    analyst = bearer(tokens["analyst"])
    ids = [i["id"] for i in client.get("/api/reports", headers=analyst).json()["items"]]
    assert rid in ids and draft["id"] not in ids
    asked = client.get("/api/reports?status=draft", headers=analyst).json()["items"]
    assert [i["id"] for i in asked] == [draft["id"]]
    mine = client.get("/api/reports", headers=bearer(tokens["bob"])).json()["items"]
    assert draft["id"] in [i["id"] for i in mine]
    assert client.put(f"/api/reports/{draft['id']}", json={}, headers=alice).status_code == 404
    r = client.put(f"/api/reports/{draft['id']}", json={}, headers=bearer(tokens["analyst"]))
    assert r.status_code == 403
    assert client.put("/api/reports/999999", json={}, headers=alice).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [(b'{"title": ', 400, None), (b"[]", 422, None), (b'{"methods": ["hacking"]}', 422,
      "methods[0]"), (b'{"systems": [{"device": "toaster"}]}', 422, "systems[0].device"),
     (b'{"title": "a\\u0007b"}', 422, "title"), (b'{"colour": "red"}', 422, "colour"),
     (b'{"additions": [{"at": "1997-09-20T00:00:00Z", "text": "x"}]}', 422, "additions"),
     (b'{"evidence": [{"data": {"k": NaN}}]}', 422, "evidence[0].data")],
)  # fmt: skip
def test_draft_update_bad_input(
    client: Any, tokens: dict[str, str], store: Store, body: bytes, status: int,
    field: str | None,
) -> None:  # fmt: skip
    alice = bearer(tokens["alice"])
    rid = client.post("/api/reports?draft=true", json={"title": "kept"}, headers=alice).json()["id"]
    r = client.put(
        f"/api/reports/{rid}", content=body, headers={**alice, "content-type": "application/json"}
    )
    assert (r.status_code, r.json()["field"]) == (status, field), r.text
    assert store.get_report(rid).report.title == "kept"  # nothing changed
    assert "update" not in [e.action for e in store.audit_log(rid)]


def test_draft_flag_must_be_a_boolean(client: Any, tokens: dict[str, str]) -> None:
    r = client.post("/api/reports?draft=maybe", json={}, headers=bearer(tokens["alice"]))
    assert (r.status_code, r.json()["field"]) == (422, "draft")


def test_openapi_is_served(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in ("/api/reports", "/api/reports/{id}", "/api/reports/{id}/triage",
                 "/api/reports/{id}/send", "/api/public/months/{month}"):  # fmt: skip
        assert path in spec["paths"]
    assert {"get", "put"} <= set(spec["paths"]["/api/reports/{id}"])
    assert "409" in spec["paths"]["/api/reports/{id}"]["put"]["responses"]
    submit = spec["paths"]["/api/reports"]["post"]["parameters"]
    assert "draft" in [p["name"] for p in submit]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


# -- access control: every endpoint x every role x own/other's report --------------------

ROLES = ["anon", "reporter", "analyst", "admin"]
USER_OF_ROLE = {"reporter": "alice", "analyst": "analyst", "admin": "admin"}

# (method, path, body); {id} is the report under test, {inc} an incident.
ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/api/reports/{id}", None),
    ("PUT", "/api/reports/{id}", {"title": "finished draft", "methods": ["mail_bombing"]}),
    ("POST", "/api/reports/{id}/send", None),
    ("POST", "/api/reports/{id}/additions", {"at": "1997-09-20T00:00:00Z", "text": "more"}),
    ("PUT", "/api/reports/{id}/triage", {"status": "triaged"}),
    ("POST", "/api/reports/{id}/status", {"status": "triaged"}),
    ("POST", "/api/reports/{id}/duplicate", {"of": None}),
    ("POST", "/api/reports/{id}/incident", {"incident_id": None}),
    ("GET", "/api/reports/{id}/audit", None),
    ("GET", "/api/reports", None),
    ("POST", "/api/reports", {"methods": ["mail_bombing"]}),
    ("POST", "/api/incidents", {"title": "mail bomb wave"}),
    ("GET", "/api/incidents/{inc}", None),
    ("GET", "/api/months/1997-09/preview", None),
    ("POST", "/api/months/1997-09/publish", {"digest": "0" * 64}),
    ("GET", "/api/months/1997-09/revisions", None),
    ("POST", "/api/users", {"name": "carol", "role": "reporter"}),
    ("GET", "/api/me", None),
    ("GET", "/api/public/months", None),
]

# Expected status per endpoint: {role: (own report, other's report)}.
OWN_OR_ANALYST = {"anon": (401, 401), "reporter": (200, 404), "analyst": (200, 200),
                  "admin": (200, 200)}  # fmt: skip
ANALYST = {"anon": (401, 401), "reporter": (403, 403), "analyst": (200, 200), "admin": (200, 200)}
ADMIN = {"anon": (401, 401), "reporter": (403, 403), "analyst": (403, 403), "admin": (200, 200)}
ANY_USER = {"anon": (401, 401), "reporter": (200, 200), "analyst": (200, 200), "admin": (200, 200)}
OWNER_OR_ADMIN = {"anon": (401, 401), "reporter": (200, 404), "analyst": (200, 403),
                  "admin": (200, 200)}  # fmt: skip
# Endpoints that change a draft: the report under test is a draft for these.
ON_DRAFTS = {"PUT /api/reports/{id}", "POST /api/reports/{id}/send"}
EXPECTED: dict[str, dict[str, tuple[int, int]]] = {
    "GET /api/reports/{id}": OWN_OR_ANALYST,
    "PUT /api/reports/{id}": OWNER_OR_ADMIN,
    "POST /api/reports/{id}/send": OWNER_OR_ADMIN,
    "POST /api/reports/{id}/additions": OWN_OR_ANALYST,
    "PUT /api/reports/{id}/triage": ANALYST,
    "POST /api/reports/{id}/status": ANALYST,
    "POST /api/reports/{id}/duplicate": ANALYST,
    "POST /api/reports/{id}/incident": ANALYST,
    "GET /api/reports/{id}/audit": ANALYST,  # as the report's page shows it
    "GET /api/reports": ANY_USER,
    "POST /api/reports": {k: (201, 201) if v[0] == 200 else v for k, v in ANY_USER.items()},
    "POST /api/incidents": {k: (201, 201) if v[0] == 200 else v for k, v in ANALYST.items()},
    "GET /api/incidents/{inc}": ANALYST,
    "GET /api/months/1997-09/preview": ANALYST,
    # Allowed, but the digest is not the preview's: nothing is published.
    "POST /api/months/1997-09/publish": {
        k: (409, 409) if v[0] == 200 else v for k, v in ANALYST.items()
    },
    "GET /api/months/1997-09/revisions": ANALYST,
    "POST /api/users": {k: (201, 201) if v[0] == 200 else v for k, v in ADMIN.items()},
    "GET /api/me": ANY_USER,
    "GET /api/public/months": {k: (200, 200) for k in ROLES},
}


@pytest.mark.parametrize("whose", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
def test_access_control(
    client: Any, store: Store, tokens: dict[str, str], role: str, whose: str
) -> None:
    """One store per (role, whose); every endpoint checked against the table."""
    inc = store.add_incident("existing incident", actor="ana")
    token = tokens[USER_OF_ROLE[role]] if role != "anon" else None
    me = store.user_for_token(token).name if token else None  # type: ignore[union-attr]
    owner = me if (whose == "own" and me) else "bob"
    failures = []
    for method, template, body in ENDPOINTS:
        # A fresh report per endpoint, owned by the caller (own) or by bob (other).
        key = f"{method} {template}"
        triage = Triage(status="draft") if key in ON_DRAFTS else None
        rid = store.add_report(Report.model_validate(IMAP), owner=owner, triage=triage).id
        path = template.format(id=rid, inc=inc.id)
        if body is not None and "name" in body:
            body = {**body, "name": f"carol-{role}-{whose}"}
        r = client.request(method, path, json=body, headers=bearer(token))
        want = EXPECTED[key][role][0 if whose == "own" else 1]
        if r.status_code != want:
            failures.append(f"{method} {path}: {r.status_code} (want {want}) {r.text[:200]}")
        if r.status_code >= 400:
            assert set(r.json()) >= {"error", "field"}, r.text
        if r.status_code == 401:
            assert r.headers.get("www-authenticate") == "Bearer"
    assert not failures, "\n".join(failures)
    assert {f"{m} {p}" for m, p, _ in ENDPOINTS} == set(EXPECTED)


@pytest.mark.parametrize(
    "header", ["Bearer nope", "Bearer " + "x" * 5000, "Basic YWxpY2U6cHc=", "Bearer", "tdk_"]
)
def test_bad_tokens_are_401(client: Any, tokens: dict[str, str], header: str) -> None:
    r = client.get("/api/reports", headers={"Authorization": header})
    assert r.status_code == 401 and r.json()["error"]


def test_reporter_cannot_set_triage_through_submission(client: Any, tokens: dict[str, str]) -> None:
    body = {**IMAP, "triage": {"status": "published"}}
    r = client.post("/api/reports", json=body, headers=bearer(tokens["alice"]))
    assert (r.status_code, r.json()["field"]) == (422, "triage")
