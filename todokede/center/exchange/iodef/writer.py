"""IODEF v2 export: one Incident per stored report, built with lxml."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from lxml import etree

from todokede.center import taxonomy
from todokede.center.exchange.iodef.mapping import (
    DISCOVERY,
    IMPACT,
    LANG,
    NODE_ROLE,
    NS,
    STATUS,
    center_domain,
)
from todokede.center.intake.schema import AffectedSystem, Discovery, Report, StoredReport
from todokede.center.publication.titles import public_narrative, public_title
from todokede.errors import ReportError

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _e(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> Any:
    el = etree.SubElement(
        parent, f"{{{NS}}}{tag}", {k.replace("_", "-"): v for k, v in attrs.items()}
    )
    if text is not None:
        el.text = _xml_text(text)
    return el


def _xml_text(text: str) -> str:
    # Characters XML cannot carry are replaced; texts that hold them go out as bytes.
    return _XML_INVALID.sub("\ufffd", text)


def _ml(parent: etree._Element, tag: str, text: str, lang: str) -> None:
    _e(parent, tag, text).set(LANG, lang)


def _labels(parent: etree._Element, tag: str, vocabulary: str, code: str) -> None:
    t = taxonomy.term(vocabulary, code)
    _ml(parent, tag, t.ja, "ja")
    _ml(parent, tag, t.en, "en")


def _time(d: date) -> str:
    # A calendar day as the reporter gave it: midnight, no zone (xs:dateTime allows it).
    return f"{d.isoformat()}T00:00:00"


def _extra(parent: etree._Element, meaning: str, text: str) -> None:
    _e(parent, "AdditionalData", text, dtype="string", meaning=f"todokede:{meaning}")


def _node(parent: etree._Element, host: str) -> None:
    node = _e(parent, "Node")
    try:
        addr = ipaddress.ip_address(host)
        _e(node, "Address", host, category=f"ipv{addr.version}-addr")
        return
    except ValueError:
        pass
    try:
        net = ipaddress.ip_network(host, strict=False)
        _e(node, "Address", host, category=f"ipv{net.version}-net")
        return
    except ValueError:
        pass
    _e(_e(node, "DomainData"), "Name", host)


def _contact_center(parent: etree._Element, domain: str) -> None:
    c = _e(parent, "Contact", role="creator", type="organization")
    _e(c, "ContactName", f"todokede reporting center ({domain})")
    _extra(c, "center", domain)  # so that an import does not take the center for the reporter


def _contact_reporter(parent: etree._Element, stored: StoredReport) -> None:
    r = stored.report.reporter
    if not any((r.organisation, r.name, r.email, r.phone, r.fax, r.address, r.type)):
        return
    # An organisation with a named person: the person is a Contact nested in it.
    nest = bool(r.organisation and r.name)
    outer = _e(
        parent, "Contact", role="reporter", type="organization" if r.organisation else "person"
    )
    if r.organisation or r.name:
        _e(outer, "ContactName", r.organisation or r.name)
    if r.address:
        _e(_e(outer, "PostalAddress"), "PAddress", r.address)
    if r.email and not nest:
        _e(_e(outer, "Email"), "EmailTo", r.email)
    if r.phone and not nest:
        _e(_e(outer, "Telephone", type="wired"), "TelephoneNumber", r.phone)
    if r.fax:
        _e(_e(outer, "Telephone", type="fax"), "TelephoneNumber", r.fax)
    if nest:
        inner = _e(outer, "Contact", role="reporter", type="person")
        _e(inner, "ContactName", r.name)
        if r.email:
            _e(_e(inner, "Email"), "EmailTo", r.email)
        if r.phone:
            _e(_e(inner, "Telephone", type="wired"), "TelephoneNumber", r.phone)
    if r.type:
        _extra(outer, "reporter_type", r.type)


def _incident(
    doc: etree._Element, stored: StoredReport, *, personal: bool, domain: str, now: str
) -> None:
    rep = stored.report
    # Without personal data the document goes to partner centers under TLP:AMBER.
    inc = _e(doc, "Incident", purpose="reporting", restriction="private" if personal else "amber")
    inc.set(LANG, rep.language)
    status = STATUS.get(stored.triage.status)
    if status:
        inc.set("status", status)
    else:
        inc.set("status", "ext-value")
        inc.set("ext-status", stored.triage.status)
    _e(inc, "IncidentID", str(stored.id), name=domain)
    if rep.discovered:
        _e(inc, "DetectTime", _time(rep.discovered))
    if rep.period and rep.period.start:
        _e(inc, "StartTime", _time(rep.period.start))
    if rep.period and rep.period.end:
        _e(inc, "EndTime", _time(rep.period.end))
    if rep.received:
        _e(inc, "ReportTime", _time(rep.received))
    _e(inc, "GenerationTime", now)
    # Without personal data only public text goes out: the reporter's words stay here.
    narrative = rep.narrative if personal else public_narrative(stored, rep.language)
    if narrative:
        _ml(inc, "Description", narrative, rep.language)
    if rep.discovery:
        _discovery(inc, rep.discovery, rep.language, personal=personal)
    _assessment(inc, stored)
    for code in stored.effective_methods():
        _labels(_e(inc, "Method"), "Description", "method", code)
    _contact_center(inc, domain)
    if personal:
        _contact_reporter(inc, stored)
    _event_data(inc, stored, personal=personal)
    if rep.additions:
        _history(inc, rep, personal=personal)
    texts = (
        (("title", rep.title), ("network", rep.network), ("countermeasures", rep.countermeasures))
        if personal
        else (("title", public_title(stored, rep.language)),)
    )
    for meaning, value in texts:
        if value:
            _extra(inc, meaning, value)


def _discovery(inc: etree._Element, d: Discovery, language: str, *, personal: bool) -> None:
    disc = _e(inc, "Discovery", **({"source": DISCOVERY[d.how]} if d.how else {}))
    if d.detail and personal:
        _ml(disc, "Description", d.detail, language)
    if d.tool and personal:
        app = _e(_e(disc, "DetectionPattern"), "Application")
        _e(app, "Description", d.tool)


def _assessment(inc: etree._Element, stored: StoredReport) -> None:
    damage = stored.effective_damage()
    # 実被害 unknown (neither the reporter nor an analyst said) leaves occurrence out.
    actual = stored.effective_actual_damage()
    assess = _e(inc, "Assessment")
    if actual is not None:
        assess.set("occurrence", "actual" if actual else "potential")
    for code in damage or ["other"]:
        impact = _e(assess, "SystemImpact", type=IMPACT[code])
        if code == "none":
            impact.set("completion", "failed")
        if damage:
            _labels(impact, "Description", "damage", code)
    attempts = stored.report.attempts
    if attempts is not None:
        _e(assess, "Counter", str(attempts), type="count", unit="event", meaning="attempts")
    for code in stored.effective_causes():
        _labels(assess, "Cause", "cause", code)


def _history(inc: etree._Element, rep: Report, *, personal: bool) -> None:
    hist = _e(inc, "History")
    for add in rep.additions:
        item = _e(hist, "HistoryItem", action="status-new-info")
        _e(item, "DateTime", add.at.isoformat())
        if add.text and personal:
            _ml(item, "Description", add.text, rep.language)


def _event_data(inc: etree._Element, stored: StoredReport, *, personal: bool) -> None:
    rep = stored.report
    evidence = rep.evidence if personal else []
    # Without personal data: target services as target codes, systems as device codes.
    targets = rep.targets if personal else [c for c in stored.effective_targets() if c != "other"]
    if not (rep.sources or rep.systems or targets or evidence):
        return
    ev = _e(inc, "EventData")
    if rep.sources or rep.systems or targets:
        flow = _e(ev, "Flow")
        for host in rep.sources:
            _node(_e(flow, "System", category="source"), host)
        systems: list[AffectedSystem | None] = list(rep.systems) or [None]
        for i, system in enumerate(systems):
            s = _e(flow, "System", category="target")
            # The report does not name the affected host: an explicit "unknown" address.
            _e(_e(s, "Node"), "Address", "unknown", category="ext-value", ext_category="unknown")
            if system is not None and system.device in NODE_ROLE:
                _e(s, "NodeRole", category=NODE_ROLE[system.device])
            if i == 0:
                for service in targets:
                    _e(_e(_e(s, "Service"), "ServiceName"), "IANAService", service)
            if system is not None and personal:
                for software in system.software:
                    _e(_e(_e(s, "Service"), "Application"), "Description", software)
                if system.os:
                    _e(_e(s, "OperatingSystem"), "Description", system.os)
                if system.role:
                    _e(s, "Description", system.role)
            if system is not None and system.device:
                _extra(s, "device", system.device)
    if evidence:
        record = _e(ev, "Record")
        for item in evidence:
            data = _e(record, "RecordData")
            if item.source:
                _e(data, "Description", item.source)
            if item.text:
                if _XML_INVALID.search(item.text):
                    raw = base64.b64encode(item.text.encode("utf-8", "surrogatepass")).decode()
                    _e(data, "RecordItem", raw, dtype="bytes", meaning=item.kind)
                else:
                    _e(data, "RecordItem", item.text, dtype="string", meaning=item.kind)
            if item.data is not None:
                _e(
                    data,
                    "RecordItem",
                    json.dumps(item.data, ensure_ascii=False),
                    dtype="json",
                    meaning=item.kind,
                )
            if not (item.text or item.data is not None):
                _e(data, "RecordItem", "", dtype="string", meaning=item.kind)


def to_iodef(
    reports: Sequence[StoredReport], *, personal: bool = False, domain: str | None = None
) -> bytes:
    """An IODEF-Document with one Incident per report (UTF-8 XML bytes).

    Unless ``personal`` is true the document is for partner centers (TLP:AMBER, IODEF
    ``restriction="amber"``): the codes, dates, counts, source addresses and target codes,
    and the public title and narrative; none of the reporter's contact details, evidence
    or free text. The center is always a Contact, as IODEF requires one.
    """
    if not reports:
        raise ReportError("nothing to export: IODEF needs at least one incident")
    dom = center_domain(domain)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    doc = etree.Element(f"{{{NS}}}IODEF-Document", {"version": "2.00"}, nsmap={None: NS})  # type: ignore[dict-item]
    langs = {s.report.language for s in reports}
    doc.set(LANG, langs.pop() if len(langs) == 1 else "ja")
    for stored in reports:
        try:
            _incident(doc, stored, personal=personal, domain=dom, now=now)
        except ValueError as exc:  # lxml refuses what XML cannot hold; never a traceback
            raise ReportError(f"report {stored.id} cannot be written as IODEF: {exc}") from None
    return bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True))
