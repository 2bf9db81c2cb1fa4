"""STIX 2.1 export: the bundle re-parses with stix2 (no custom content allowed), every
relationship points at an object of the bundle, ids are stable, and personal data is
left out unless asked for."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stix2

from todokede.center.exchange.stix import observable, to_stix
from todokede.center.intake.schema import Report, StoredReport, Triage

DATA = Path(__file__).parent / "data" / "exchange"


def reports() -> list[Report]:
    raw = json.loads((DATA / "reports.json").read_text(encoding="utf-8"))
    return [Report.model_validate(r) for r in raw]


def stored(report: Report, id: int = 1) -> StoredReport:
    at = datetime(1997, 9, 22, 9, 0, tzinfo=UTC)
    return StoredReport(id=id, report=report, triage=Triage(), created_at=at, updated_at=at)


def bundle(*, personal: bool = False) -> list[dict[str, Any]]:
    data = to_stix([stored(r, i) for i, r in enumerate(reports(), 1)], personal=personal)
    parsed = stix2.parse(data.decode(), allow_custom=False)
    assert parsed.type == "bundle"
    objects: list[dict[str, Any]] = json.loads(data)["objects"]
    return objects


def test_bundle_reparses_and_links_everything() -> None:
    objects = bundle()
    ids = {o["id"] for o in objects}
    kinds = [o["type"] for o in objects]
    assert kinds.count("incident") == 3
    assert kinds.count("identity") == 1  # the center only
    for o in objects:
        if o["type"] == "relationship":
            assert o["source_ref"] in ids and o["target_ref"] in ids
        if "created_by_ref" in o:
            assert o["created_by_ref"] in ids


@pytest.mark.parametrize(
    ("value", "kind", "pattern"),
    [
        ("192.0.2.7", "ipv4-addr", "[ipv4-addr:value = '192.0.2.7']"),
        ("2001:db8::7", "ipv6-addr", "[ipv6-addr:value = '2001:db8::7']"),
        ("198.51.100.0/24", "ipv4-addr", "[ipv4-addr:value = '198.51.100.0/24']"),
        (
            "Relay.Provider.Example.",
            "domain-name",
            "[domain-name:value = 'relay.provider.example']",
        ),
        ("unknown", None, None),
        ("'; DROP TABLE x; --", None, None),
    ],
)
def test_sources_become_observables(value: str, kind: str | None, pattern: str | None) -> None:
    found = observable(value)
    if kind is None:
        assert found is None
        return
    assert found is not None
    sco, pat = found
    assert (sco.type, pat) == (kind, pattern)


def test_each_source_is_observed_and_indicated_for_its_incident() -> None:
    objects = bundle()
    by_id = {o["id"]: o for o in objects}
    incident = next(o for o in objects if o["type"] == "incident" and o["name"].startswith("IMAP"))
    linked = {
        by_id[o["target_ref"]]["value"]
        for o in objects
        if o["type"] == "relationship" and o["source_ref"] == incident["id"]
    }
    assert linked == {"192.0.2.7", "unknown.example.net", "2001:db8::7"}
    indicators = [
        by_id[o["source_ref"]]
        for o in objects
        if o["type"] == "relationship" and o["target_ref"] == incident["id"]
    ]
    assert {i["pattern"] for i in indicators} == {
        "[ipv4-addr:value = '192.0.2.7']",
        "[domain-name:value = 'unknown.example.net']",
        "[ipv6-addr:value = '2001:db8::7']",
    }
    assert incident["labels"][:2] == ["access_probe", "security_hole_attack"]
    assert incident["external_references"] == [
        {"source_name": "todokede.invalid", "external_id": "1"}
    ]


def test_ids_are_stable_and_shared_observables_appear_once() -> None:
    twice = [stored(reports()[0], 1), stored(reports()[0], 2)]
    one = json.loads(to_stix(twice))["objects"]
    again = json.loads(to_stix(twice))["objects"]
    assert [o["id"] for o in one] == [o["id"] for o in again]
    assert sum(o["type"] == "ipv4-addr" for o in one) == 1  # one address, two incidents
    assert sum(o["type"] == "incident" for o in one) == 2


def test_personal_data_only_when_asked() -> None:
    secrets = [s for r in reports() for s in (r.reporter.name, r.reporter.email) if s]
    plain = json.dumps(bundle())
    assert not [s for s in secrets if s in plain]
    personal = bundle(personal=True)
    text = json.dumps(personal, ensure_ascii=False)
    assert all(s in text for s in secrets)
    reporters = [o for o in personal if o["type"] == "identity" and o.get("roles") == ["reporter"]]
    assert len(reporters) == 3


def test_partner_bundle_is_amber_and_holds_no_reporter_text() -> None:
    objects = bundle()
    amber = stix2.TLP_AMBER.id
    assert any(o["id"] == amber for o in objects)
    for o in objects:
        if o["type"] in ("incident", "indicator", "relationship", "ipv4-addr", "domain-name"):
            assert o["object_marking_refs"] == [amber]
    text = json.dumps(objects, ensure_ascii=False)
    for r in reports():
        for secret in (r.title, r.narrative, r.countermeasures, r.network):
            assert not secret or secret not in text
    personal = bundle(personal=True)
    assert any(o["id"] == stix2.TLP_RED.id for o in personal)
    title = reports()[0].title
    assert title is not None and title in json.dumps(personal, ensure_ascii=False)
