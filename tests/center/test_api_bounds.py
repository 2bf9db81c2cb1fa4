"""What the API promises beyond the happy path, on both backends: every number and date is
bounded (a huge id is a 422 naming the field, never a 500 or a dropped connection),
booleans, numbers and dates are taken only as JSON writes them, vocabularies are enums in
the schema, every answer carries no-store and nosniff, /api/docs comes from the package,
analysts read a report's audit trail, and GET /api/reports takes the inbox's filters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.center.conftest import bearer
from todokede.center import taxonomy
from todokede.center.intake.schema import ID_MAX, Report, Triage
from todokede.center.store import Store
from todokede.center.web.site import CSP

HUGE = [2**31, 2**63, 2**63 - 1, 10**40, -1, 0]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/reports/{id}/duplicate", lambda v: {"of": v}, "of"),
        ("POST", "/api/reports/{id}/incident", lambda v: {"incident_id": v}, "incident_id"),
        ("PUT", "/api/reports/{id}/triage", lambda v: {"duplicate_of": v}, "duplicate_of"),
        ("PUT", "/api/reports/{id}/triage", lambda v: {"incident_id": v}, "incident_id"),
        ("POST", "/api/reports", lambda v: {"attempts": v * 2**32 if v > 0 else v - 1}, "attempts"),
    ],
)
def test_huge_integers_are_refused_with_the_field(
    client: Any,
    tokens: dict[str, str],
    store: Store,
    method: str,
    path: str,
    body: Any,
    field: str,
    value: int,
) -> None:
    rid = store.add_report(Report(title="x"), owner="alice").id
    r = client.request(
        method, path.format(id=rid), json=body(value), headers=bearer(tokens["analyst"])
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"additions": [{"at": 0}]}, "additions[0].at"),
        ({"additions": [{"at": "0001-01-01T00:00:00Z"}]}, "additions[0].at"),
        ({"received": "2999-12-01"}, "received"),
        ({"discovered": 19970917}, "discovered"),
        ({"period": {"start": "1969-12-31"}}, "period.start"),
        ({"actual_damage": 0}, "actual_damage"),
        ({"attempts": "5"}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"methods": ["no_such_method"]}, "methods[0]"),
    ],
)
def test_reports_take_json_as_written(
    client: Any, tokens: dict[str, str], body: dict[str, Any], field: str
) -> None:
    r = client.post("/api/reports", json=body, headers=bearer(tokens["alice"]))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"new_type": 0}, "new_type"),
        ({"is_test": "yes"}, "is_test"),
        ({"duplicate_of": 1.5}, "duplicate_of"),
    ],
)
def test_triage_takes_json_as_written(
    client: Any, tokens: dict[str, str], store: Store, body: dict[str, Any], field: str
) -> None:
    rid = store.add_report(Report(title="x"), owner="alice").id
    r = client.put(f"/api/reports/{rid}/triage", json=body, headers=bearer(tokens["analyst"]))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_whole_numbers_written_with_a_point_are_whole(client: Any, tokens: dict[str, str]) -> None:
    r = client.post("/api/reports", json={"attempts": 12.0}, headers=bearer(tokens["alice"]))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("body", "field"),
    [({"of": 999_999}, "of"), ({"of": "self"}, "of")],
)
def test_links_to_nothing_are_conflicts(
    client: Any, tokens: dict[str, str], store: Store, body: dict[str, Any], field: str
) -> None:
    rid = store.add_report(Report(title="x"), owner="alice").id
    sent = {"of": rid} if body["of"] == "self" else body
    r = client.post(f"/api/reports/{rid}/duplicate", json=sent, headers=bearer(tokens["analyst"]))
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "duplicate_of"


@pytest.mark.parametrize("path", ["/api/reports/None", f"/api/reports/{ID_MAX + 1}"])
def test_a_path_naming_no_possible_record_is_not_found(
    client: Any, tokens: dict[str, str], path: str
) -> None:
    r = client.get(path, headers=bearer(tokens["analyst"]))
    assert r.status_code == 404 and r.json()["field"] == "id"


def test_vocabularies_are_enums_in_the_schema(client: Any) -> None:
    schema = client.get("/openapi.json").json()
    found: dict[str, list[str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "enum" in node and node.get("title") in taxonomy.VOCABULARIES:
                found[node["title"]] = node["enum"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert set(found) == set(taxonomy.VOCABULARIES)
    for vocabulary, codes in found.items():
        assert codes == list(taxonomy.VOCABULARIES[vocabulary])


@pytest.mark.parametrize(
    ("method", "path", "who", "status"),
    [
        ("GET", "/api/reports", "alice", 200),
        ("GET", "/api/reports", None, 401),
        ("GET", "/api/reports/999999", "analyst", 404),
        ("GET", "/api/reports?limit=0", "alice", 422),
        ("GET", "/api/public/months", None, 200),
        ("GET", "/openapi.json", None, 200),
        ("POST", "/api/reports", "alice", 201),
        ("DELETE", "/api/reports", "alice", 405),
        ("GET", "/api/nothing-here", None, 404),
    ],
)
def test_every_api_answer_is_not_stored_and_not_sniffed(
    client: Any, tokens: dict[str, str], method: str, path: str, who: str | None, status: int
) -> None:
    headers = bearer(tokens[who]) if who else {}
    r = client.request(method, path, json={} if method == "POST" else None, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-frame-options"] == "DENY"


def test_api_docs_come_from_the_package(client: Any) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "https://" not in page.text and "http://" not in page.text
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    for path, kind in [
        ("/static/swagger/swagger-ui-bundle.js", "text/javascript"),
        ("/static/swagger/swagger-ui.css", "text/css"),
        ("/static/api-docs.js", "text/javascript"),
    ]:
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert f'"{path}"' in page.text
    assert client.get("/static/swagger/redoc.standalone.js").status_code == 404
    assert "SwaggerUIBundle" in client.get("/static/swagger/swagger-ui-bundle.js").text


def test_analysts_read_the_audit_trail_as_the_page_shows_it(
    client: Any, tokens: dict[str, str], store: Store
) -> None:
    rid = store.add_report(Report(title="x"), owner="alice").id
    store.set_triage(rid, Triage(status="triaged"), actor="ana")
    r = client.get(f"/api/reports/{rid}/audit", headers=bearer(tokens["analyst"]))
    assert r.status_code == 200, r.text
    assert [(e["actor"], e["action"]) for e in r.json()] == [
        (e.actor, e.action) for e in store.audit_log(rid)
    ]
    assert (
        client.get(f"/api/reports/{rid}/audit", headers=bearer(tokens["alice"])).status_code == 403
    )


def test_the_api_list_takes_the_inbox_filters(
    client: Any, tokens: dict[str, str], store: Store
) -> None:
    inc = store.add_incident("incident", actor="ana")
    made = {
        "probe": Report(title="IMAP probe", methods=["access_probe"], damage=["none"]),
        "relay": Report(title="relay abuse", methods=["mail_relay"], damage=["mail_relay"],
                        actual_damage=True),
        "bomb": Report(title="mail bomb", methods=["mail_bombing"], damage=["service_lowering"],
                       actual_damage=True),
        "quiet": Report(title="quiet worm", methods=["worm_probe"], actual_damage=False),
    }  # fmt: skip
    ids = {k: store.add_report(r, owner="alice").id for k, r in made.items()}
    store.set_triage(ids["bomb"], Triage(status="triaged", incident_id=inc.id), actor="ana")
    draft = store.add_report(Report(title="draft relay", methods=["mail_relay"]),
                             owner="alice", triage=Triage(status="draft")).id  # fmt: skip

    def listed(who: str, **params: Any) -> list[int]:
        r = client.get("/api/reports", params=params, headers=bearer(tokens[who]))
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["items"]]

    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({"method": "mail_relay"}, [ids["relay"]]),
        ({"damage": "service_lowering"}, [ids["bomb"]]),
        ({"actual_damage": "yes"}, [ids["relay"], ids["bomb"]]),
        ({"actual_damage": "no"}, [ids["quiet"]]),
        ({"actual_damage": "unknown"}, [ids["probe"]]),  # unknown is not "no"
        ({"q": "imap"}, [ids["probe"]]),
        ({"q": f"#{ids['relay']}"}, [ids["relay"]]),
        ({"q": "mail abuse"}, [ids["relay"]]),
        ({"incident": inc.id}, [ids["bomb"]]),
        ({"status": "triaged"}, [ids["bomb"]]),
        ({"status": "draft", "method": "mail_relay"}, [draft]),
    ]
    for params, want in cases:
        assert listed("analyst", **params) == want, params
    # A reporter's list filters the same, among its own reports (drafts included).
    assert listed("alice", method="mail_relay") == [ids["relay"], draft]
    assert listed("bob", method="mail_relay") == []
    for bad in ({"method": "nope"}, {"incident": 2**40}, {"q": "x" * 201},
                {"actual_damage": "false"}):  # fmt: skip
        r = client.get("/api/reports", params=bad, headers=bearer(tokens["analyst"]))
        assert r.status_code == 422, (bad, r.text)
