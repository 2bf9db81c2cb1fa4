"""IODEF v2 export and import: every export validates against RFC 7970's schema (checked
by xmlschema, a validator independent of the lxml one the product uses), round trips
keep the report, personal data stays out unless asked for, and bad input is a
ReportError naming the element, never anything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from todokede.center import taxonomy
from todokede.center.exchange import iodef
from todokede.center.exchange.iodef import from_iodef, to_iodef
from todokede.center.intake.schema import Report, StoredReport, Triage
from todokede.errors import ReportError

DATA = Path(__file__).parent / "data" / "exchange"
SCHEMAS = iodef.SCHEMA_DIR
NS = {"i": iodef.NS}


def one(doc: Any, path: str) -> Any:
    """The element at ``path`` (which must be there)."""
    found = doc.find(path, NS)
    assert found is not None, path
    return found


def reports() -> list[Report]:
    raw = json.loads((DATA / "reports.json").read_text(encoding="utf-8"))
    return [Report.model_validate(r) for r in raw]


def stored(report: Report, id: int = 1, triage: Triage | None = None) -> StoredReport:
    at = datetime(1997, 9, 22, 9, 0, tzinfo=UTC)
    return StoredReport(
        id=id, report=report, triage=triage or Triage(), created_at=at, updated_at=at
    )


@pytest.fixture(scope="module")
def rfc_schema() -> xmlschema.XMLSchema:
    locations = {
        "http://www.iana.org/assignments/xml-registry/schema/iodef-enum-1.0.xsd": str(
            SCHEMAS / "iodef-enum-1.0.xsd"
        ),
        "http://www.iana.org/assignments/xml-registry/schema/iodef-sci-1.0.xsd": str(
            SCHEMAS / "iodef-sci-1.0.xsd"
        ),
        "http://www.w3.org/2009/01/xml.xsd": str(SCHEMAS / "xml.xsd"),
    }
    return xmlschema.XMLSchema(str(SCHEMAS / "iodef-2.0.xsd"), uri_mapper=locations, allow="local")


def test_bundled_schema_is_rfc_7970() -> None:
    text = (SCHEMAS / "iodef-2.0.xsd").read_text()
    assert 'targetNamespace="urn:ietf:params:xml:ns:iodef-2.0"' in text
    # the last simple type of section 8, and the size of the RFC's schema text
    assert text.rstrip().endswith("</xs:schema>")
    assert len(text) == 76919


@pytest.mark.parametrize("personal", [False, True])
def test_every_export_validates(rfc_schema: xmlschema.XMLSchema, personal: bool) -> None:
    data = to_iodef([stored(r, i) for i, r in enumerate(reports(), 1)], personal=personal)
    rfc_schema.validate(data.decode())
    iodef.validate(data)  # and the product's own validator agrees
    doc = etree.fromstring(data)
    assert doc.get("version") == "2.00"
    assert len(doc.findall("i:Incident", NS)) == 3
    ids = [e.text for e in doc.iterfind("i:Incident/i:IncidentID", NS)]
    assert ids == ["1", "2", "3"]
    names = {e.get("name") for e in doc.iterfind("i:Incident/i:IncidentID", NS)}
    assert names == {"todokede.invalid"}


@pytest.mark.parametrize("index", [0, 1, 2])
def test_personal_export_round_trips(index: int) -> None:
    report = reports()[index]
    back = from_iodef(to_iodef([stored(report)], personal=True))
    assert back == [report]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_personal_data_is_left_out_by_default(index: int) -> None:
    report = reports()[index]
    data = to_iodef([stored(report)]).decode()
    r = report.reporter
    for secret in (r.name, r.email, r.phone, r.fax, r.address, r.organisation):
        if secret:
            assert secret not in data
    for ev in report.evidence:
        if ev.text:
            assert ev.text.splitlines()[0] not in data
    back = from_iodef(data.encode())[0]
    assert back.reporter.model_dump(exclude_defaults=True) == {}
    assert back.evidence == []
    # what is not personal survives
    assert back.methods == report.methods
    assert back.sources == report.sources
    assert back.actual_damage == report.actual_damage


@pytest.mark.parametrize("index", [0, 1, 2])
def test_partner_export_is_amber_and_holds_no_reporter_text(index: int) -> None:
    report = reports()[index]
    doc = etree.fromstring(to_iodef([stored(report)]))
    text = etree.tostring(doc, encoding="unicode")
    assert one(doc, "i:Incident").get("restriction") == "amber"
    r = report
    texts = [r.title, r.narrative, r.network, r.countermeasures, *(a.text for a in r.additions)]
    texts += [r.discovery.tool, r.discovery.detail] if r.discovery else []
    texts += [x for s in r.systems for x in (s.role, s.os, *s.software)]
    # (a reporter's words that are a taxonomy label, "IMAPサーバ", are public anyway)
    labels = {t.ja for v in taxonomy.VOCABULARIES.values() for t in v.values()}
    assert [t for t in texts if t and t in text and t not in labels] == []
    # the attack's indicators stay: sources, and the services as target codes
    assert all(source in text for source in r.sources)
    services = [e.text for e in doc.iterfind(".//i:IANAService", NS)]
    assert set(services) <= set(taxonomy.TARGETS) - {"other"}
    personal = etree.fromstring(to_iodef([stored(report)], personal=True))
    assert one(personal, "i:Incident").get("restriction") == "private"


@pytest.mark.parametrize(
    ("actual", "occurrence"), [(True, "actual"), (False, "potential"), (None, None)]
)
def test_actual_damage_is_assessment_occurrence(
    actual: bool | None, occurrence: str | None
) -> None:
    report = reports()[2].model_copy(update={"actual_damage": actual})
    doc = etree.fromstring(to_iodef([stored(report)]))
    assert one(doc, "i:Incident/i:Assessment").get("occurrence") == occurrence


def test_triage_overrides_the_reporters_classification() -> None:
    report = reports()[0]
    triage = Triage(status="triaged", methods=["intrusion"], damage=["file_alteration"])
    triage = triage.model_copy(update={"actual_damage": True})
    data = to_iodef([stored(report, triage=triage)])
    doc = etree.fromstring(data)
    inc = one(doc, "i:Incident")
    assert inc.get("status") == "in-progress"
    methods = [d.text for d in inc.iterfind("i:Method/i:Description", NS)]
    assert methods == ["侵入", "Intrusion"]
    back = from_iodef(data)[0]
    assert (back.methods, back.damage, back.actual_damage) == (
        ["intrusion"],
        ["file_alteration"],
        True,
    )


def test_domain_names_the_incident_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TODOKEDE_DOMAIN", "ipa.example.jp")
    doc = etree.fromstring(to_iodef([stored(reports()[0], 42)]))
    assert one(doc, "i:Incident/i:IncidentID").get("name") == "ipa.example.jp"
    doc = etree.fromstring(to_iodef([stored(reports()[0], 42)], domain="other.example"))
    assert one(doc, "i:Incident/i:IncidentID").get("name") == "other.example"


def test_control_characters_in_evidence_round_trip() -> None:
    report = reports()[1]  # its log line holds an ANSI escape, which XML cannot carry
    assert "\x1b" in report.evidence[0].text
    back = from_iodef(to_iodef([stored(report)], personal=True))[0]
    assert back.evidence[0].text == report.evidence[0].text


def test_nothing_to_export_is_an_error() -> None:
    with pytest.raises(ReportError, match="at least one"):
        to_iodef([])


# ---------------------------------------------------------------------------- import


def test_imports_the_minimal_document() -> None:
    (report,) = from_iodef((DATA / "minimal.xml").read_bytes())
    assert report.language == "en"
    assert report.reporter.email == "contact@csirt.example.com"


def test_imports_another_teams_report() -> None:
    (report,) = from_iodef((DATA / "external-scan.xml").read_bytes())
    assert report.methods == ["access_probe", "other"]
    assert "dictionary attack on IMAP passwords" in (report.narrative or "")
    assert report.sources == ["192.0.2.200"]
    assert report.targets == ["imap"]
    assert report.discovered is not None and report.discovered.isoformat() == "2015-10-05"
    assert report.discovery is not None and report.discovery.how == "own_monitoring"
    assert report.actual_damage is False
    assert report.reporter.organisation == "Example CSIRT"
    assert report.evidence[0].text.startswith("Oct  5 21:40:01 mx imapd")


def _minimal(**replace: str) -> bytes:
    text = (DATA / "minimal.xml").read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text.encode()


@pytest.mark.parametrize(
    ("data", "message", "field"),
    [
        (b"", "not well-formed", None),
        (b"<IODEF-Document", "not well-formed", None),
        (b"<html/>", "expected IODEF-Document", "/"),
        (
            _minimal(**{'version="2.00"': 'version="1.00"'}),
            "version",
            "/IODEF-Document",
        ),
        (
            _minimal(**{'<IncidentID name="csirt.example.com">492382</IncidentID>': ""}),
            "GenerationTime",
            "/IODEF-Document/Incident",
        ),
        (
            _minimal(**{'purpose="reporting"': 'purpose="gossip"'}),
            "purpose",
            "/IODEF-Document/Incident",
        ),
        (
            _minimal(**{"2015-07-18T09:00:00-05:00": "yesterday"}),
            "yesterday",
            "/IODEF-Document/Incident/GenerationTime",
        ),
        (
            _minimal(**{"urn:ietf:params:xml:ns:iodef-2.0": "urn:ietf:params:xml:ns:iodef-1.0"}),
            "expected IODEF-Document",
            "/",
        ),
    ],
)
def test_bad_documents_name_the_element(data: bytes, message: str, field: str | None) -> None:
    with pytest.raises(ReportError, match=message) as caught:
        from_iodef(data)
    if field is not None:
        assert caught.value.field is not None
        assert caught.value.field.startswith(field)


@pytest.mark.parametrize(
    "doctype",
    [
        # billion laughs
        '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
        # external entity (XXE): must not read the file
        '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        # network DTD: must not be fetched
        '<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">',
    ],
)
def test_entities_and_dtds_are_refused(doctype: str) -> None:
    text = (DATA / "minimal.xml").read_text()
    text = text.replace("<IODEF-Document", doctype + "\n<IODEF-Document", 1)
    text = text.replace("csirt.example.com</EmailTo>", "&x;</EmailTo>")
    with pytest.raises(ReportError) as caught:
        from_iodef(text.encode())
    assert "root:" not in str(caught.value)


def test_model_limits_become_report_errors_with_the_incident_path() -> None:
    long_name = "x" * 400  # Reporter fields hold at most 300 characters
    data = _minimal(**{"contact@csirt.example.com": long_name})
    with pytest.raises(ReportError, match=r"reporter\.email") as caught:
        from_iodef(data)
    assert caught.value.field == "/IODEF-Document/Incident"


_EXTENSIONS = """<Method>
      <Reference>
        <enum:ReferenceName specIndex="1" ID="CVE-2014-0160"
            xmlns:enum="urn:ietf:params:xml:ns:iodef-enum-1.0">CVE-2014-0160</enum:ReferenceName>
      </Reference>
      <sci:AttackPattern SpecID="urn:example:capec"
          xmlns:sci="urn:ietf:params:xml:ns:iodef-sci-1.0">
        <sci:RawData dtype="xml"><Pattern xmlns="urn:example:capec">CAPEC-49</Pattern></sci:RawData>
      </sci:AttackPattern>
    </Method>
    <Contact"""


def test_elements_of_the_extension_schemas_are_accepted_and_left_out(
    rfc_schema: xmlschema.XMLSchema,
) -> None:
    data = _minimal(**{"<Contact": _EXTENSIONS})
    rfc_schema.validate(data.decode())
    iodef.validate(data)
    (report,) = from_iodef(data)
    assert report.methods == ["other"]
    assert "CVE-2014-0160" not in (report.narrative or "")


def test_an_unknown_element_in_method_is_refused() -> None:
    data = _minimal(**{"<Contact": "<Method><Bogus/></Method>\n    <Contact"})
    with pytest.raises(ReportError, match="Bogus") as caught:
        from_iodef(data)
    assert caught.value.field == "/IODEF-Document/Incident/Method/Bogus"


def test_too_large_a_document_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iodef.reader, "MAX_DOCUMENT", 100)
    with pytest.raises(ReportError, match="larger than"):
        from_iodef((DATA / "minimal.xml").read_bytes())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_bytes_give_reports_or_report_errors(data: bytes) -> None:
    try:
        result = from_iodef(data)
    except ReportError:
        return
    assert all(isinstance(r, Report) for r in result)


_VALID = (DATA / "external-scan.xml").read_bytes()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, len(_VALID) - 1),
    st.integers(0, 40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
)
def test_fuzz_mutated_documents_give_reports_or_report_errors(
    at: int, cut: int, insert: str
) -> None:
    data = _VALID[:at] + insert.encode() + _VALID[at + cut :]
    try:
        result = from_iodef(data)
    except ReportError:
        return
    assert all(isinstance(r, Report) for r in result)


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"),
    max_size=40,
).map(str.strip)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    methods=st.lists(st.sampled_from(list(taxonomy.METHODS)), unique=True, max_size=4),
    damage=st.lists(st.sampled_from(list(taxonomy.DAMAGE)), unique=True, max_size=3),
    causes=st.lists(st.sampled_from(list(taxonomy.CAUSES)), unique=True, max_size=2),
    actual=st.one_of(st.none(), st.booleans()),
    attempts=st.one_of(st.none(), st.integers(0, 10**6)),
    sources=st.lists(st.ip_addresses().map(str), unique=True, max_size=3),
    narrative=_TEXT,
    title=_TEXT,
    lang=st.sampled_from(["ja", "en"]),
)
def test_generated_reports_round_trip(
    methods: list[str],
    damage: list[str],
    causes: list[str],
    actual: bool | None,
    attempts: int | None,
    sources: list[str],
    narrative: str,
    title: str,
    lang: str,
) -> None:
    report = Report.model_validate(
        {
            "language": lang,
            "title": title or None,
            "methods": methods,
            "damage": damage,
            "causes": causes,
            "actual_damage": actual,
            "attempts": attempts,
            "sources": sources,
            "narrative": narrative or None,
        }
    )
    data = to_iodef([stored(report)], personal=True)
    assert from_iodef(data) == [report]
