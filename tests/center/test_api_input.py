"""Bad input never makes a 5xx: malformed JSON, wrong types, huge bodies, deep nesting,
control characters, unknown categories... each gets a 4xx JSON error naming the field.
Then schemathesis, generating requests from /openapi.json, finds no 5xx either."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from todokede.center.store import Store
from todokede.center.web.app import create_app

JSON = {"content-type": "application/json"}


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": 1}
    for _ in range(levels):
        value = {"x": value}
    return value


# (name, raw body, extra headers, expected status, expected field)
CASES: list[tuple[str, bytes, dict[str, str], int, str | None]] = [
    ("malformed JSON", b'{"title": "x",', {}, 400, None),
    ("not JSON at all", b"hello", {}, 400, None),
    ("invalid UTF-8", b'{"title": "\xff\xfe"}', {}, 400, None),
    ("empty body", b"", {}, 400, None),
    ("a list, not an object", b"[]", {}, 422, None),
    ("JSON null", b"null", {}, 422, None),
    ("wrong type: attempts", b'{"attempts": "many"}', {}, 422, "attempts"),
    ("negative attempts", b'{"attempts": -1}', {}, 422, "attempts"),
    ("wrong type: nested", b'{"reporter": {"email": 5}}', {}, 422, "reporter.email"),
    ("wrong type: in list", b'{"systems": [{"software": [1]}]}', {}, 422, "systems[0].software[0]"),
    ("unknown method", b'{"methods": ["hacking"]}', {}, 422, "methods[0]"),
    ("unknown damage", b'{"damage": ["none", "stolen"]}', {}, 422, "damage[1]"),
    ("unknown device", b'{"systems": [{"device": "toaster"}]}', {}, 422, "systems[0].device"),
    ("unknown reporter type", b'{"reporter": {"type": "spy"}}', {}, 422, "reporter.type"),
    ("unknown field", b'{"colour": "red"}', {}, 422, "colour"),
    ("unknown language", b'{"language": "fr"}', {}, 422, "language"),
    ("impossible date", b'{"received": "1997-02-30"}', {}, 422, "received"),
    ("period backwards", b'{"period": {"start": "1997-09-10", "end": "1997-08-01"}}', {}, 422,
     "period"),
    ("control character", b'{"title": "a\\u0007b"}', {}, 422, "title"),
    ("NUL in a name", b'{"reporter": {"name": "a\\u0000b"}}', {}, 422, "reporter.name"),
    # Not Unicode: refused by the JSON parser itself.
    ("lone surrogate", b'{"narrative": "\\ud800"}', {}, 400, None),
    ("surrogate in free JSON", b'{"evidence": [{"data": {"k": "\\udc00"}}]}', {}, 400, None),
    ("infinity in free JSON", b'{"evidence": [{"data": {"k": 1e999}}]}', {}, 422,
     "evidence[0].data"),
    ("NaN in free JSON", b'{"evidence": [{"data": {"k": NaN}}]}', {}, 422, "evidence[0].data"),
    ("deep nesting (parser)", b"[" * 200_000 + b"]" * 200_000, {}, 400, None),
    ("deep nesting (parser, small)", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, {}, 400, None),
    ("deep nesting (evidence data)", json.dumps({"evidence": [{"data": _deep(20)}]}).encode(), {},
     422, "evidence[0].data"),
    ("huge body", b'{"narrative": "' + b"a" * 5_000_000 + b'"}', {}, 413, None),
    ("huge body, chunked", b"", {"x-chunked": "1"}, 413, None),
    ("field too long", json.dumps({"title": "t" * 301}).encode(), {}, 422, "title"),
    ("too many sources", json.dumps({"sources": ["h"] * 1001}).encode(), {}, 422, "sources"),
    ("wrong content type", b'{"title": "x"}', {"content-type": "text/plain"}, 415, None),
    ("bad Idempotency-Key", b"{}", {"Idempotency-Key": "k" * 201}, 422, "Idempotency-Key"),
]  # fmt: skip


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """One SQLite center for the input tables: validation happens before the store (the
    store-touching cases run on both backends below)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('input') / 'center.db'}")
    token = store.add_user("alice", "reporter")
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        yield client, token
    store.close()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_report_bodies(sqlite_api: tuple[Any, str], case: tuple[Any, ...]) -> None:
    client, token = sqlite_api
    name, body, headers, status, field = case
    h = {**JSON, "Authorization": f"Bearer {token}", **headers}
    if h.pop("x-chunked", None):
        # No Content-Length: the limit must hold for a streamed body too.
        def chunks() -> Any:
            for _ in range(80):
                yield b"a" * 65536

        r = client.post("/api/reports", content=chunks(), headers=h)
    else:
        r = client.post("/api/reports", content=body, headers=h)
    assert r.status_code == status, (name, r.text[:300])
    data = r.json()
    assert isinstance(data["error"], str) and data["error"]
    assert data["field"] == field, data
    assert len(r.content) < 20_000  # the offending input is not echoed back whole


def test_nothing_stored_from_bad_input(client: Any, tokens: dict[str, str], store: Store) -> None:
    h = {**JSON, "Authorization": f"Bearer {tokens['alice']}"}
    for _, body, _, _, _ in CASES[:24]:
        client.post("/api/reports", content=body, headers=h)
    assert store.list_reports()[1] == 0


def test_control_characters_are_kept_in_log_text(client: Any, tokens: dict[str, str]) -> None:
    """Log excerpts are evidence: odd bytes in them are kept exactly, not refused."""
    text = "Sep  1 03:12:44 mail imapd[210]: \x00\x1b[31m AUTHENTICATE \u202e"
    h = {"Authorization": f"Bearer {tokens['alice']}"}
    rid = client.post("/api/reports", json={"evidence": [{"text": text}]}, headers=h).json()["id"]
    got = client.get(f"/api/reports/{rid}", headers=h).json()
    assert got["report"]["evidence"][0]["text"] == text


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [("/api/reports?limit=0", 422, "limit"), ("/api/reports?limit=abc", 422, "limit"),
     ("/api/reports?offset=-1", 422, "offset"), ("/api/reports?month=1997-13", 422, "month"),
     ("/api/reports?status=lost", 422, "status"),
     # A path that cannot name a record names nothing that exists.
     ("/api/reports/0", 404, "id"), ("/api/reports/abc", 404, "id"),
     ("/api/reports/99999999999", 404, "id")],
)  # fmt: skip
def test_bad_parameters(sqlite_api: tuple[Any, str], path: str, status: int, field: str) -> None:
    client, token = sqlite_api
    r = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == status and r.json()["field"] == field, r.text


def test_unknown_report_is_404(client: Any, tokens: dict[str, str]) -> None:
    r = client.get("/api/reports/4242", headers={"Authorization": f"Bearer {tokens['analyst']}"})
    assert r.status_code == 404 and "4242" in r.json()["error"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["title", "methods", "reporter", "evidence", "data", "text", "x",
                         "systems", "period", "start", "attempts", "received"]),
        inner, max_size=4),
    max_leaves=20,
))  # fmt: skip
def test_random_json_never_5xx(sqlite_api: tuple[Any, str], body: Any) -> None:
    client, token = sqlite_api
    h = {"Authorization": f"Bearer {token}"}
    r = client.post("/api/reports", content=json.dumps(body), headers={**JSON, **h})
    assert r.status_code in (201, 400, 422), r.text[:300]
