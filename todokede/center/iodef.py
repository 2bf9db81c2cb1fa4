"""IODEF v2 (RFC 7970) export and import of reports.

Export builds the XML with lxml; every document it writes validates against the schema
of RFC 7970 section 8, bundled in ``center/schemas`` so that validation works offline.
Import parses without network or entity expansion, validates against the same schema
and maps each ``Incident`` to one ``Report``; what does not fit raises ``ReportError``
naming the element path.

Mapping (both ways):

    Report                          IODEF
    ------------------------------  ---------------------------------------------------
    id, center domain               Incident/IncidentID (name = domain)
    discovered / period / received  DetectTime / StartTime, EndTime / ReportTime
    narrative                       Description
    discovery                       Discovery/@source, Description, DetectionPattern
    actual damage yes/no (実被害)   Assessment/@occurrence actual | potential
    damage (被害内容)               Assessment/SystemImpact (type + labels)
    causes (原因)                   Assessment/Cause (labels ja and en)
    attempts                        Assessment/Counter
    methods (手口)                  Method/Description (labels ja and en)
    reporter (personal=True only)   Contact role="reporter"; else the center only
    sources / systems, targets      EventData/Flow/System category source / target
    evidence (personal=True only)   EventData/Record/RecordData/RecordItem
    additions (追加報告)            History/HistoryItem
    title, network, countermeasures AdditionalData meaning="todokede:..."
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree
from pydantic import ValidationError

from todokede.center import taxonomy
from todokede.center.schema import AffectedSystem, Report, StoredReport
from todokede.errors import ReportError

NS = "urn:ietf:params:xml:ns:iodef-2.0"
XML_NS = "http://www.w3.org/XML/1998/namespace"
LANG = f"{{{XML_NS}}}lang"
SCHEMA_DIR = Path(__file__).parent / "schemas"
DEFAULT_DOMAIN = "todokede.invalid"
MAX_DOCUMENT = 20 * 1024 * 1024  # bytes: one import is bounded

# The schema imports three documents by their published URL; they are bundled.
_LOCAL_SCHEMAS = {
    "http://www.iana.org/assignments/xml-registry/schema/iodef-enum-1.0.xsd": "iodef-enum-1.0.xsd",
    "http://www.iana.org/assignments/xml-registry/schema/iodef-sci-1.0.xsd": "iodef-sci-1.0.xsd",
    "http://www.w3.org/2009/01/xml.xsd": "xml.xsd",
}

# 被害内容 -> SystemImpact/@type (RFC 7970 section 3.12.2)
_IMPACT = {
    "none": "unknown",
    "file_alteration": "integrity-data",
    "homepage_alteration": "integrity-data",
    "server_down": "availability-system",
    "mail_relay": "takeover-service",
    "password_theft": "breach-credential",
    "service_lowering": "availability-service",
    "open_proxy": "takeover-service",
    "unauthorized_account": "takeover-account",
    "stepping_stone": "takeover-system",
    "other": "unknown",
}
# 発見契機 -> Discovery/@source, and back (several sources read as one code)
_DISCOVERY = {
    "own_monitoring": "os-log",
    "service_anomaly": "internal-notification",
    "external": "external-notification",
    "other": "unknown",
}
_DISCOVERY_BACK = {
    **{s: "own_monitoring" for s in ("nidps", "hips", "siem", "av", "os-log")},
    **{s: "own_monitoring" for s in ("application-log", "device-log", "network-flow", "audit")},
    **{s: "own_monitoring" for s in ("passive-dns", "investigation")},
    "internal-notification": "service_anomaly",
    **{s: "external" for s in ("external-notification", "third-party-monitoring", "leo")},
    **{s: "external" for s in ("partner", "incident")},
}
# 被害を受けた機器 -> NodeRole/@category
_NODE_ROLE = {
    "mail_server": "mail",
    "web_server": "www",
    "dns_server": "name",
    "file_server": "file",
    "other_server": "server-internal",
    "pc": "client",
    "network_device": "infra",
}
_NODE_ROLE_BACK = {v: k for k, v in _NODE_ROLE.items()}
_STATUS = {
    "draft": "new",
    "received": "new",
    "triaged": "in-progress",
    "published": "resolved",
    "closed": "resolved",
}

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def center_domain(flag: str | None = None) -> str:
    """The center's domain, the name of its IncidentIDs: flag > TODOKEDE_DOMAIN > default."""
    return flag or os.environ.get("TODOKEDE_DOMAIN") or DEFAULT_DOMAIN


class _LocalSchemas(etree.Resolver):
    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]
        name = _LOCAL_SCHEMAS.get(system_url)
        if name is None and Path(system_url).name.endswith(".xsd"):
            name = Path(system_url).name
        if name is None or not (SCHEMA_DIR / name).is_file():
            return None
        return self.resolve_filename(str(SCHEMA_DIR / name), context)  # type: ignore[attr-defined]


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@cache
def schema() -> etree.XMLSchema:
    """RFC 7970's schema, compiled once, with its imports resolved to the bundled copies."""
    parser = _safe_parser()
    parser.resolvers.add(_LocalSchemas())
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "iodef-2.0.xsd"), parser))


# ---------------------------------------------------------------------------- export


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
    inc = _e(
        doc,
        "Incident",
        purpose="reporting",
        restriction="private" if personal else "need-to-know",
    )
    inc.set(LANG, rep.language)
    status = _STATUS.get(stored.triage.status)
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
    narrative = rep.narrative if personal else (stored.triage.published_narrative or rep.narrative)
    if narrative:
        _ml(inc, "Description", narrative, rep.language)
    if rep.discovery:
        d = rep.discovery
        disc = _e(inc, "Discovery", **({"source": _DISCOVERY[d.how]} if d.how else {}))
        if d.detail:
            _ml(disc, "Description", d.detail, rep.language)
        if d.tool:
            app = _e(_e(disc, "DetectionPattern"), "Application")
            _e(app, "Description", d.tool)
    damage = stored.effective_damage()
    # 実被害 unknown (neither the reporter nor an analyst said) leaves occurrence out.
    actual = stored.triage.actual_damage
    actual = rep.actual_damage if actual is None else actual
    assess = _e(inc, "Assessment")
    if actual is not None:
        assess.set("occurrence", "actual" if actual else "potential")
    for code in damage or ["other"]:
        impact = _e(assess, "SystemImpact", type=_IMPACT[code])
        if code == "none":
            impact.set("completion", "failed")
        if damage:
            _labels(impact, "Description", "damage", code)
    if rep.attempts is not None:
        _e(assess, "Counter", str(rep.attempts), type="count", unit="event", meaning="attempts")
    for code in stored.effective_causes():
        _labels(assess, "Cause", "cause", code)
    for code in stored.effective_methods():
        _labels(_e(inc, "Method"), "Description", "method", code)
    _contact_center(inc, domain)
    if personal:
        _contact_reporter(inc, stored)
    _event_data(inc, stored, personal=personal)
    if rep.additions:
        hist = _e(inc, "History")
        for add in rep.additions:
            item = _e(hist, "HistoryItem", action="status-new-info")
            _e(item, "DateTime", add.at.isoformat())
            if add.text:
                _ml(item, "Description", add.text, rep.language)
    for meaning, value in (
        ("title", rep.title),
        ("network", rep.network),
        ("countermeasures", rep.countermeasures),
    ):
        if value:
            _extra(inc, meaning, value)


def _event_data(inc: etree._Element, stored: StoredReport, *, personal: bool) -> None:
    rep = stored.report
    evidence = rep.evidence if personal else []
    if not (rep.sources or rep.systems or rep.targets or evidence):
        return
    ev = _e(inc, "EventData")
    if rep.sources or rep.systems or rep.targets:
        flow = _e(ev, "Flow")
        for host in rep.sources:
            _node(_e(flow, "System", category="source"), host)
        systems: list[AffectedSystem | None] = list(rep.systems) or [None]
        for i, system in enumerate(systems):
            s = _e(flow, "System", category="target")
            # The report does not name the affected host: an explicit "unknown" address.
            _e(_e(s, "Node"), "Address", "unknown", category="ext-value", ext_category="unknown")
            if system is not None and system.device in _NODE_ROLE:
                _e(s, "NodeRole", category=_NODE_ROLE[system.device])
            if i == 0:
                for service in rep.targets:
                    _e(_e(_e(s, "Service"), "ServiceName"), "IANAService", service)
            if system is not None:
                for software in system.software:
                    _e(_e(_e(s, "Service"), "Application"), "Description", software)
                if system.os:
                    _e(_e(s, "OperatingSystem"), "Description", system.os)
                if system.role:
                    _e(s, "Description", system.role)
                if system.device:
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

    Personal data (the reporter's contact details, the evidence) is left out unless
    ``personal`` is true; the center is always a Contact, as IODEF requires one.
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


def validate(data: bytes) -> None:
    """Raise ReportError (line, element path) unless ``data`` is a valid IODEF v2 document."""
    _parse(data)


# ---------------------------------------------------------------------------- import


def _parse(data: bytes) -> etree._Element:
    if len(data) > MAX_DOCUMENT:
        raise ReportError(f"document is larger than {MAX_DOCUMENT} bytes")
    try:
        tree = etree.fromstring(data, _safe_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise ReportError(f"not well-formed XML: {exc.msg}", line=exc.lineno) from None
    except ValueError as exc:  # e.g. a str with an encoding declaration
        raise ReportError(f"not XML: {exc}") from None
    info: Any = tree.docinfo
    if info.doctype or info.internalDTD is not None:
        raise ReportError("a DOCTYPE is not accepted in an IODEF document")
    root = tree.getroot()
    if root.tag != f"{{{NS}}}IODEF-Document":
        raise ReportError(
            f"root element is {root.tag!r}, expected IODEF-Document in namespace {NS}",
            line=_line(root),
            field="/",
        )
    checker = schema()
    if not checker.validate(tree):
        log: Any = checker.error_log
        err = log[0]
        found: Any = tree.xpath(err.path) if err.path else []
        where = element_path(found[0]) if found and isinstance(found[0], etree._Element) else None
        message = str(err.message).replace(f"{{{NS}}}", "")
        raise ReportError(message, line=err.line, field=where or err.path or None)
    return root


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _kids(el: etree._Element, tag: str) -> Iterator[etree._Element]:
    return iter(el.findall(_q(tag)))


def _text(el: etree._Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    value = el.text.strip()
    return value or None


def _day(el: etree._Element | None) -> date | None:
    value = _text(el)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        return date.fromisoformat(value[:10])


@cache
def _label_index(vocabulary: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for t in taxonomy.VOCABULARIES[vocabulary].values():
        for key in (t.code, t.ja, t.en):
            index[key.casefold()] = t.code
    return index


def _codes(elements: Sequence[etree._Element], vocabulary: str) -> list[str]:
    index = _label_index(vocabulary)
    found = [index.get((_text(e) or "").casefold()) for e in elements]
    return list(dict.fromkeys(c for c in found if c))


def _extras(el: etree._Element) -> dict[str, str]:
    out: dict[str, str] = {}
    for add in _kids(el, "AdditionalData"):
        meaning = add.get("meaning") or ""
        if meaning.startswith("todokede:") and add.text:
            out[meaning.removeprefix("todokede:")] = add.text
    return out


def _reporter(inc: etree._Element) -> dict[str, Any]:
    contacts = list(_kids(inc, "Contact"))
    contacts = [c for c in contacts if "center" not in _extras(c)]
    chosen = None
    for roles in (("reporter",), ("creator",), ("victim", "user", "admin", "tech")):
        chosen = next((c for c in contacts if c.get("role") in roles), None)
        if chosen is not None:
            break
    if chosen is None:
        return {}
    out: dict[str, Any] = {}

    def take(c: etree._Element) -> None:
        name = _text(c.find(_q("ContactName")))
        if name:
            key = "organisation" if c.get("type") == "organization" else "name"
            out.setdefault(key, name)
        addr = _text(c.find(f"{_q('PostalAddress')}/{_q('PAddress')}"))
        if addr:
            out.setdefault("address", addr)
        email = _text(c.find(f"{_q('Email')}/{_q('EmailTo')}"))
        if email:
            out.setdefault("email", email)
        for tel in _kids(c, "Telephone"):
            number = _text(tel.find(_q("TelephoneNumber")))
            if number:
                out.setdefault("fax" if tel.get("type") == "fax" else "phone", number)
        rtype = _extras(c).get("reporter_type")
        if rtype:
            out.setdefault("type", rtype)
        for inner in _kids(c, "Contact"):
            take(inner)

    take(chosen)
    return out


def _incident_to_dict(inc: etree._Element) -> dict[str, Any]:
    parent = inc.getparent()
    lang = (inc.get(LANG) or (parent.get(LANG) if parent is not None else None) or "ja").lower()
    language = "ja" if lang.startswith("ja") else "en"
    extras = _extras(inc)
    out: dict[str, Any] = {"language": language}
    for key in ("title", "network", "countermeasures"):
        if key in extras:
            out[key] = extras[key]
    discovered = _day(inc.find(_q("DetectTime")))
    if discovered:
        out["discovered"] = discovered
    start, end = _day(inc.find(_q("StartTime"))), _day(inc.find(_q("EndTime")))
    if start or end:
        out["period"] = {"start": start, "end": end}
    received = _day(inc.find(_q("ReportTime")))
    if received:
        out["received"] = received
    descriptions = [t for t in (_text(d) for d in _kids(inc, "Description")) if t]
    if descriptions:
        out["narrative"] = "\n\n".join(descriptions)
    disc = inc.find(_q("Discovery"))
    if disc is not None:
        d: dict[str, Any] = {}
        source = disc.get("source")
        if source in _DISCOVERY_BACK:
            d["how"] = _DISCOVERY_BACK[source]
        elif source == "unknown":
            d["how"] = "other"
        detail = [t for t in (_text(x) for x in _kids(disc, "Description")) if t]
        if detail:
            d["detail"] = "\n".join(detail)
        tool = _text(disc.find(f"{_q('DetectionPattern')}/{_q('Application')}/{_q('Description')}"))
        if tool:
            d["tool"] = tool
        out["discovery"] = d
    methods: list[str] = []
    unknown: list[str] = []
    for m in _kids(inc, "Method"):
        found = _codes(list(_kids(m, "Description")), "method")
        if not found:
            # A method outside the taxonomy: "other", and its words kept in the narrative.
            found = ["other"]
            unknown += [t for t in (_text(d) for d in _kids(m, "Description")) if t]
        methods += found
    out["methods"] = list(dict.fromkeys(methods))
    if unknown:
        note = "Method: " + "; ".join(unknown)
        out["narrative"] = f"{out['narrative']}\n\n{note}" if "narrative" in out else note
    damage: list[str] = []
    causes: list[str] = []
    occurrence = None
    for a in _kids(inc, "Assessment"):
        occurrence = occurrence or a.get("occurrence")
        for impact in _kids(a, "SystemImpact"):
            damage += _codes(list(_kids(impact, "Description")), "damage")
        causes += _codes(list(_kids(a, "Cause")), "cause")
        counter = a.find(_q("Counter"))
        if counter is not None and counter.get("meaning") == "attempts" and counter.text:
            out["attempts"] = int(float(counter.text))
    out["damage"] = list(dict.fromkeys(damage))
    out["causes"] = list(dict.fromkeys(causes))
    if occurrence is not None:
        out["actual_damage"] = occurrence == "actual"
    reporter = _reporter(inc)
    if reporter:
        out["reporter"] = reporter
    sources: list[str] = []
    targets: list[str] = []
    systems: list[dict[str, Any]] = []
    evidence: list[dict[str, Any]] = []
    for ev in inc.iter(_q("EventData")):
        for system in ev.iterfind(f"{_q('Flow')}/{_q('System')}"):
            node = system.find(_q("Node"))
            hosts = (
                []
                if node is None
                else [t for t in (_text(x) for x in node.iter(_q("Address"), _q("Name"))) if t]
            )
            if system.get("category") == "source":
                sources += hosts
                continue
            if system.get("category") != "target":
                continue
            entry: dict[str, Any] = {}
            device = _extras(system).get("device")
            role = system.find(_q("NodeRole"))
            if device:
                entry["device"] = device
            elif role is not None and role.get("category") in _NODE_ROLE_BACK:
                entry["device"] = _NODE_ROLE_BACK[role.get("category", "")]
            desc = _text(system.find(_q("Description")))
            if desc:
                entry["role"] = desc
            os_name = _text(system.find(f"{_q('OperatingSystem')}/{_q('Description')}"))
            if os_name:
                entry["os"] = os_name
            software = []
            for service in _kids(system, "Service"):
                name = _text(service.find(f"{_q('ServiceName')}/{_q('IANAService')}"))
                if name:
                    targets.append(name)
                app = _text(service.find(f"{_q('Application')}/{_q('Description')}"))
                if app:
                    software.append(app)
            if software:
                entry["software"] = software
            if entry:
                systems.append(entry)
        for data in ev.iterfind(f"{_q('Record')}/{_q('RecordData')}"):
            evidence.append(_evidence(data))
    if sources:
        out["sources"] = list(dict.fromkeys(sources))
    if targets:
        out["targets"] = targets
    if systems:
        out["systems"] = systems
    if evidence:
        out["evidence"] = evidence
    additions = []
    for item in inc.iterfind(f"{_q('History')}/{_q('HistoryItem')}"):
        at = datetime.fromisoformat((_text(item.find(_q("DateTime"))) or "").replace("Z", "+00:00"))
        text = "\n".join(t for t in (_text(x) for x in _kids(item, "Description")) if t)
        additions.append({"at": at, "text": text})
    if additions:
        out["additions"] = additions
    return out


def _evidence(data: etree._Element) -> dict[str, Any]:
    kinds = ("log", "finding", "probe", "mail", "other")
    item: dict[str, Any] = {"kind": "log"}
    source = _text(data.find(_q("Description")))
    if source:
        item["source"] = source
    texts = []
    for rec in _kids(data, "RecordItem"):
        kind = rec.get("meaning")
        if kind in kinds:
            item["kind"] = kind
        body = rec.text or ""
        dtype = rec.get("dtype")
        if dtype == "json":
            try:
                value = json.loads(body)
            except ValueError:
                value = None
            if isinstance(value, dict):
                item["data"] = value
                continue
        if dtype == "bytes":
            with contextlib.suppress(ValueError):
                body = base64.b64decode(body, validate=True).decode("utf-8", "replace")
        texts.append(body)
    item["text"] = "\n".join(texts)
    return item


def element_path(el: etree._Element) -> str:
    """``/IODEF-Document/Incident[2]/Contact``: local names, indexed where ambiguous."""
    steps = []
    node: etree._Element | None = el
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))


def from_iodef(data: bytes) -> list[Report]:
    """Each Incident of an IODEF v2 document as a Report (ReportError names the element)."""
    root = _parse(data)
    reports = []
    for inc in _kids(root, "Incident"):
        where = element_path(inc)
        try:
            fields = _incident_to_dict(inc)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ReportError(str(exc), line=_line(inc), field=where) from None
        try:
            reports.append(Report.model_validate(fields))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ReportError(f"{loc}: {first['msg']}", line=_line(inc), field=where) from None
    return reports


def _line(el: etree._Element) -> int | None:
    line: Any = el.sourceline
    return line if isinstance(line, int) else None
