from __future__ import annotations

import contextlib
import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.center.intake import forms
from todokede.center.intake.schema import (
    AffectedSystem,
    Discovery,
    Evidence,
    Period,
    Report,
    Reporter,
    StoredReport,
    Triage,
)
from todokede.center.web import triage as triage_form
from todokede.errors import ReportError

FULL = Report(
    language="en",
    title="IMAP probes",
    reporter=Reporter(
        organisation="Example", name="Taro", email="t@example.jp", type="system_admin"
    ),
    discovered=date(1997, 9, 17),
    period=Period(start=date(1997, 8, 14), end=date(1997, 9, 16)),
    systems=[
        AffectedSystem(
            device="mail_server",
            role="IMAP server",
            os="SunOS 4.1.4",
            software=["imapd 10.1", "tcpd 7.4"],
        )
    ],
    network="behind a router",
    discovery=Discovery(how="own_monitoring", tool="tcp_wrapper", detail="tcpd log"),
    methods=["access_probe"],
    damage=["none"],
    actual_damage=False,
    causes=["unknown"],
    sources=["ppp12.example.net", "192.0.2.7"],
    targets=["imap", "pop3"],
    attempts=9,
    narrative="nine refused",
    countermeasures="IMAP4rev1",
)


def test_values_round_trip() -> None:
    values = forms.to_values(FULL)
    report, errors = forms.to_report(values, [])
    assert errors == {}
    assert report is not None
    assert report.model_dump(exclude={"received"}) == FULL.model_dump(exclude={"received"})


def test_empty_form_is_a_valid_partial_report_but_empty() -> None:
    report, errors = forms.to_report(forms.empty_values("ja"), [])
    assert errors == {} and report is not None
    assert report.systems == [] and report.period is None and report.discovery is None
    assert forms.is_empty(report)
    with_contact = {**forms.empty_values("ja"), "reporter.name": "Yamada"}
    contact_only, _ = forms.to_report(with_contact, [])
    assert contact_only is not None and forms.is_empty(contact_only)


@pytest.mark.parametrize("field", ["title", "narrative", "sources", "attempts", "discovered"])
def test_one_fact_about_the_incident_makes_a_report(field: str) -> None:
    value = {"discovered": "1997-09-17", "attempts": "3"}.get(field, "something")
    report, errors = forms.to_report({**forms.empty_values("en"), field: value}, [])
    assert errors == {} and report is not None and not forms.is_empty(report)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"period.start": "1997-09-17", "period.end": "1997-09-01"}, "period.end"),
        ({"attempts": "-1"}, "attempts"),
        ({"attempts": "nine"}, "attempts"),
        ({"attempts": "9" * 30}, "attempts"),
        ({"attempts": "9" * 400}, "attempts"),
        ({"discovered": "1969-12-31"}, "discovered"),
        ({"period.start": "0001-01-01"}, "period.start"),
        ({"discovered": "17/09/1997"}, "discovered"),
        ({"reporter.name": "x" * 301}, "reporter.name"),
        ({"reporter.name": "a\x07b"}, "reporter.name"),
        ({"system.os": "y" * 400}, "system.os"),
        ({"methods": ["not_a_method"]}, "methods"),
        ({"reporter.type": "alien"}, "reporter.type"),
    ],
)
def test_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    values = {**forms.to_values(FULL), **change}
    report, errors = forms.to_report(values, [])
    assert report is None
    assert field in errors, errors


def test_base_keeps_received_additions_and_other_systems() -> None:
    base = FULL.model_copy(
        update={
            "received": date(1997, 9, 17),
            "systems": [*FULL.systems, AffectedSystem(device="pc", role="second")],
        }
    )
    report, _ = forms.to_report(forms.to_values(base), [], base)
    assert report is not None
    assert report.received == date(1997, 9, 17)
    assert [s.role for s in report.systems] == ["IMAP server", "second"]


def test_carried_evidence_round_trip_and_bad_input() -> None:
    evidence = [Evidence(kind="log", source="<b>messages</b>", text="Sep 17 </textarea>")]
    assert forms.read_carried(forms.carried(evidence)) == evidence
    assert forms.read_carried("") == []
    with pytest.raises(ReportError):
        forms.read_carried("{not json")
    with pytest.raises(ReportError):
        forms.read_carried(json.dumps([{"kind": "script"}]))


FINDING = {
    "kind": "mail-bomb",
    "service": "sendmail",
    "sources": ["bomber.example.com"],
    "count": 3200,
    "first_seen": "1997-09-21T01:00:00",
    "last_seen": "1997-09-21T03:00:00",
    "outcome": "delivered",
    "evidence": ["Sep 21 01:00:00 mail sendmail[1]: from=<x@bomber.example.com>"],
    "targets": ["root"],
    "details": {"subject": "happy today"},
}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(FINDING),
        json.dumps(FINDING) + "\n\n" + json.dumps(FINDING),
        json.dumps([FINDING]),
    ],
)
def test_parse_findings(text: str) -> None:
    found = forms.parse_findings(text)
    assert found and all(f["kind"] == "mail-bomb" for f in found)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("{nope", 1),
        (json.dumps(FINDING) + "\n[1, 2]", 2),
        (json.dumps(FINDING) + "\n" + json.dumps({"no": "kind"}), 2),
    ],
)
def test_parse_findings_errors_say_where(text: str, line: int) -> None:
    with pytest.raises(ReportError) as err:
        forms.parse_findings(text)
    assert err.value.line == line


@given(st.text(max_size=300))
@settings(max_examples=150, deadline=None)
def test_parse_findings_never_crashes(text: str) -> None:
    with contextlib.suppress(ReportError):
        forms.parse_findings(text)


def test_merge_fills_blanks_and_keeps_what_was_typed() -> None:
    drafted = forms.draft([FINDING], "en")
    values = {**forms.empty_values("en"), "title": "my own title", "methods": ["spam"]}
    merged = forms.merge(values, drafted)
    assert merged["title"] == "my own title"
    assert merged["methods"][0] == "spam" and "mail_bombing" in merged["methods"]
    assert "bomber.example.com" in merged["sources"]
    assert drafted.evidence and "bomber.example.com" in drafted.evidence[0].text


class FakeForm(dict[str, Any]):
    """A submitted form as Starlette's FormData offers it (get + getlist)."""

    def getlist(self, name: str) -> list[Any]:
        value = self.get(name)
        return value if isinstance(value, list) else ([] if value is None else [value])


def stored(report: Report, triage: Triage | None = None) -> StoredReport:
    from datetime import UTC, datetime

    now = datetime(1997, 9, 17, tzinfo=UTC)
    return StoredReport(
        id=7, report=report, triage=triage or Triage(), created_at=now, updated_at=now
    )


def test_triage_overrides_only_what_changed() -> None:
    form = FakeForm(
        status="triaged",
        methods=["access_probe", "security_hole_attack"],
        damage=["none"],
        causes=["unknown"],
        actual_damage="no",
        new_type="yes",
        published_title="IMAP",
        duplicate_of="",
        incident_id="",
    )
    triage, errors = triage_form.to_triage(form, form.getlist, stored(FULL))
    assert errors == {} and triage is not None
    assert triage.status == "triaged"
    assert triage.methods == ["access_probe", "security_hole_attack"]
    assert triage.damage is None and triage.causes is None and triage.actual_damage is None
    assert triage.new_type is True and triage.published_title == "IMAP"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duplicate_of": "7"}, "duplicate_of"),
        ({"duplicate_of": "x"}, "duplicate_of"),
        ({"duplicate_of": "0"}, "duplicate_of"),
        ({"duplicate_of": str(2**63)}, "duplicate_of"),
        ({"duplicate_of": "9" * 300}, "duplicate_of"),
        ({"incident_id": str(2**31)}, "incident_id"),
        ({"incident_id": "-5"}, "incident_id"),
        ({"methods": ["bogus"]}, "methods"),
    ],
)
def test_triage_errors(change: dict[str, Any], field: str) -> None:
    form = FakeForm(status="received", **change)
    triage, errors = triage_form.to_triage(form, form.getlist, stored(FULL))
    assert triage is None and field in errors


def test_every_form_field_has_a_label() -> None:
    from todokede.center.web import i18n

    for name in (*forms.TEXT_FIELDS, *forms.LIST_FIELDS):
        assert forms.FIELD_LABELS[name] in i18n.MESSAGES, name


@given(
    st.dictionaries(
        st.sampled_from(forms.TEXT_FIELDS),
        st.text(max_size=400),
        max_size=len(forms.TEXT_FIELDS),
    ),
    st.lists(st.text(max_size=30), max_size=5),
)
@settings(max_examples=150, deadline=None)
def test_any_form_gives_a_report_or_named_errors(typed: dict[str, str], methods: list[str]) -> None:
    values = {**forms.empty_values("en"), **typed, "methods": methods}
    report, errors = forms.to_report(values, [])
    assert (report is None) == bool(errors)
    for name in errors:
        assert name in forms.FIELD_LABELS or name == "form", name


@pytest.mark.parametrize(
    ("reported", "ticked", "override"),
    [
        (["smtp", "in.imapd"], ["imap", "smtp"], None),  # the same codes in another order
        (["経理サーバ"], ["other"], None),  # an unknown service is "other"
        (["imap"], ["imap", "pop3"], ["imap", "pop3"]),
        (["imap"], [], []),
    ],
)
def test_targets_are_classified_as_target_codes(
    reported: list[str], ticked: list[str], override: list[str] | None
) -> None:
    form = FakeForm(status="triaged", targets=ticked)
    triage, errors = triage_form.to_triage(form, form.getlist, stored(Report(targets=reported)))
    assert errors == {} and triage is not None and triage.targets == override


@pytest.mark.parametrize(
    ("reported", "chosen", "stored_as", "effective"),
    [
        (None, "", None, None),  # unknown stays unknown, never "no"
        (None, "no", False, False),
        (True, "", None, True),  # unknown leaves the reporter's answer
        (True, "no", False, False),
        (False, "no", None, False),
    ],
)
def test_actual_damage_is_three_answers(
    reported: bool | None, chosen: str, stored_as: bool | None, effective: bool | None
) -> None:
    form = FakeForm(status="triaged", actual_damage=chosen, public_draft_approved="on")
    sr = stored(Report(actual_damage=reported))
    triage, errors = triage_form.to_triage(form, form.getlist, sr)
    assert errors == {} and triage is not None
    assert triage.actual_damage is stored_as and triage.public_draft_approved is True
    assert sr.model_copy(update={"triage": triage}).effective_actual_damage() is effective
