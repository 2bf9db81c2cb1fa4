"""IODEF v2 import: parse safely, validate, map each Incident to a Report."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from functools import cache
from typing import Any

from lxml import etree
from pydantic import ValidationError

from todokede.center import taxonomy
from todokede.center.exchange.iodef.mapping import (
    DISCOVERY_BACK,
    LANG,
    NODE_ROLE_BACK,
    NS,
    safe_parser,
    schema,
)
from todokede.center.intake.schema import Report
from todokede.errors import ReportError

MAX_DOCUMENT = 20 * 1024 * 1024  # bytes: one import is bounded


def validate(data: bytes) -> None:
    """Raise ReportError (line, element path) unless ``data`` is a valid IODEF v2 document."""
    _parse(data)


def _parse(data: bytes) -> etree._Element:
    if len(data) > MAX_DOCUMENT:
        raise ReportError(f"document is larger than {MAX_DOCUMENT} bytes")
    try:
        tree = etree.fromstring(data, safe_parser()).getroottree()
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
        out["discovery"] = _discovery(disc)
    _read_methods(inc, out)
    _read_assessments(inc, out)
    reporter = _reporter(inc)
    if reporter:
        out["reporter"] = reporter
    _read_events(inc, out)
    additions = _additions(inc)
    if additions:
        out["additions"] = additions
    return out


def _discovery(disc: etree._Element) -> dict[str, Any]:
    d: dict[str, Any] = {}
    source = disc.get("source")
    if source in DISCOVERY_BACK:
        d["how"] = DISCOVERY_BACK[source]
    elif source == "unknown":
        d["how"] = "other"
    detail = [t for t in (_text(x) for x in _kids(disc, "Description")) if t]
    if detail:
        d["detail"] = "\n".join(detail)
    tool = _text(disc.find(f"{_q('DetectionPattern')}/{_q('Application')}/{_q('Description')}"))
    if tool:
        d["tool"] = tool
    return d


def _read_methods(inc: etree._Element, out: dict[str, Any]) -> None:
    """The methods, by code; one outside the taxonomy is "other", its words kept in the
    narrative."""
    methods: list[str] = []
    unknown: list[str] = []
    for m in _kids(inc, "Method"):
        found = _codes(list(_kids(m, "Description")), "method")
        if not found:
            found = ["other"]
            unknown += [t for t in (_text(d) for d in _kids(m, "Description")) if t]
        methods += found
    out["methods"] = list(dict.fromkeys(methods))
    if unknown:
        note = "Method: " + "; ".join(unknown)
        out["narrative"] = f"{out['narrative']}\n\n{note}" if "narrative" in out else note


def _read_assessments(inc: etree._Element, out: dict[str, Any]) -> None:
    """Damage, causes, whether the damage is actual and the number of attempts."""
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


def _read_events(inc: etree._Element, out: dict[str, Any]) -> None:
    """Sources, targeted services, the targeted systems and the evidence."""
    sources: list[str] = []
    targets: list[str] = []
    systems: list[dict[str, Any]] = []
    evidence: list[dict[str, Any]] = []
    for ev in inc.iter(_q("EventData")):
        for system in ev.iterfind(f"{_q('Flow')}/{_q('System')}"):
            if system.get("category") == "source":
                node = system.find(_q("Node"))
                if node is not None:
                    sources += [
                        t for t in (_text(x) for x in node.iter(_q("Address"), _q("Name"))) if t
                    ]
            elif system.get("category") == "target":
                entry = _target_system(system, targets)
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


def _target_system(system: etree._Element, targets: list[str]) -> dict[str, Any]:
    """A targeted system's description; its services' names are added to ``targets``."""
    entry: dict[str, Any] = {}
    device = _extras(system).get("device")
    role = system.find(_q("NodeRole"))
    if device:
        entry["device"] = device
    elif role is not None and role.get("category") in NODE_ROLE_BACK:
        entry["device"] = NODE_ROLE_BACK[role.get("category", "")]
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
    return entry


def _additions(inc: etree._Element) -> list[dict[str, Any]]:
    additions = []
    for item in inc.iterfind(f"{_q('History')}/{_q('HistoryItem')}"):
        at = datetime.fromisoformat((_text(item.find(_q("DateTime"))) or "").replace("Z", "+00:00"))
        text = "\n".join(t for t in (_text(x) for x in _kids(item, "Description")) if t)
        additions.append({"at": at, "text": text})
    return additions


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
