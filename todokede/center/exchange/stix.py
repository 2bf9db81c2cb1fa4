"""STIX 2.1 export: a bundle with one ``incident`` per report and the source addresses.

Per report: an ``incident`` (name, description, labels = the effective method codes and
their RSIT classes, an external reference to the center's id), and per source address
or host name an ``ipv4-addr`` / ``ipv6-addr`` / ``domain-name`` observable with an
``indicator`` whose pattern matches it, both linked to the incident by ``related-to``
relationships. The center is the ``identity`` that created everything. The reporter's
identity is added only with ``personal=True``.

Without ``personal`` the bundle is for partner centers: it is marked TLP:AMBER and carries
the public title and narrative (never the reporter's); with it, TLP:RED.

Ids are stable: the same report exported twice gets the same ids (UUIDv5 from the
center's domain and the report id; observables get STIX's own deterministic ids).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import stix2

from todokede.center import taxonomy
from todokede.center.exchange.iodef import center_domain
from todokede.center.intake.schema import StoredReport
from todokede.center.publication.titles import public_narrative, public_title

_NAMESPACE = uuid.UUID("6b1f0c52-6d2b-5c55-9d61-746f646f6b65")  # fixed: ids stay stable
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$"
)


def _id(kind: str, *parts: object) -> str:
    return f"{kind}--{uuid.uuid5(_NAMESPACE, '/'.join(str(p) for p in parts))}"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _day(value: date) -> datetime:
    return datetime.combine(value, time(0, 0), tzinfo=UTC)


def observable(value: str, marking: list[str] | None = None) -> tuple[Any, str] | None:
    """The STIX cyber-observable for a source, and a pattern matching it (None if neither).
    ``marking``: the ids of the marking definitions it carries (its id does not change)."""
    try:
        addr = ipaddress.ip_address(value)
        kind = "ipv4-addr" if addr.version == 4 else "ipv6-addr"
        text = str(addr)
    except ValueError:
        try:
            net = ipaddress.ip_network(value, strict=False)
            kind = "ipv4-addr" if net.version == 4 else "ipv6-addr"
            text = str(net)
        except ValueError:
            if not _HOSTNAME.match(value) or "." not in value:
                return None
            kind, text = "domain-name", value.rstrip(".").lower()
    sco: Any = {
        "ipv4-addr": stix2.IPv4Address,
        "ipv6-addr": stix2.IPv6Address,
        "domain-name": stix2.DomainName,
    }[kind](value=text, object_marking_refs=marking or None)
    return sco, f"[{kind}:value = '{text}']"


def _reporter_identity(stored: StoredReport, center: Any) -> Any | None:
    r = stored.report.reporter
    name = r.organisation or r.name
    if not name:
        return None
    contact = "; ".join(x for x in (r.name, r.email, r.phone, r.address) if x)
    return stix2.Identity(
        id=_id("identity", "reporter", center.id, stored.id),
        created_by_ref=center.id,
        name=name,
        identity_class="organization" if r.organisation else "individual",
        roles=["reporter"],
        contact_information=contact or None,
    )


def _objects(stored: StoredReport, center: Any, *, personal: bool, domain: str) -> list[Any]:
    rep = stored.report
    created = _utc(stored.created_at)
    stamp = {"created_by_ref": center.id, "created": created}
    stamp["modified"] = max(created, _utc(stored.updated_at))
    marking = [(stix2.TLP_RED if personal else stix2.TLP_AMBER).id]
    incident = _incident(stored, stamp, marking, personal=personal, domain=domain)
    out: list[Any] = [incident]
    seen = rep.period.start if rep.period and rep.period.start else rep.received
    valid_from = _day(seen) if seen else created
    for source in rep.sources:
        found = observable(source, marking)
        if found is None:
            continue
        sco, pattern = found
        indicator = stix2.Indicator(
            id=_id("indicator", domain, stored.id, sco.id),
            name=f"{source} ({incident.name})",
            pattern=pattern,
            pattern_type="stix",
            valid_from=valid_from,
            indicator_types=["malicious-activity"],
            object_marking_refs=marking,
            **stamp,
        )
        out += [sco, indicator]
        for src, dst in ((incident.id, sco.id), (indicator.id, incident.id)):
            out.append(_related(src, dst, stamp, object_marking_refs=marking))
    if personal:
        who = _reporter_identity(stored, center)
        if who is not None:
            out.append(who)
            out.append(_related(who.id, incident.id, stamp, description="reporter"))
    return out


def _incident(
    stored: StoredReport, stamp: dict[str, Any], marking: list[str], *, personal: bool, domain: str
) -> Any:
    rep = stored.report
    lang = rep.language
    methods = stored.effective_methods()
    # Without personal data only public text: the reporter's title and narrative stay here.
    if personal:
        name = rep.title or (
            " / ".join(taxonomy.label("method", m, lang) for m in methods) or f"report {stored.id}"
        )
        narrative = rep.narrative
    else:
        name, narrative = public_title(stored, lang), public_narrative(stored, lang)
    labels = list(
        dict.fromkeys(methods + [taxonomy.term("method", m).rsit.lower() for m in methods])
    )
    return stix2.Incident(
        id=_id("incident", domain, stored.id),
        name=name,
        description=narrative or None,
        labels=labels or None,
        lang=lang,
        external_references=[{"source_name": domain, "external_id": str(stored.id)}],
        object_marking_refs=marking,
        **stamp,
    )


def _related(src: str, dst: str, stamp: dict[str, Any], **extra: Any) -> Any:
    return stix2.Relationship(
        id=_id("relationship", src, dst),
        relationship_type="related-to",
        source_ref=src,
        target_ref=dst,
        **stamp,
        **extra,
    )


def to_stix(
    reports: Sequence[StoredReport], *, personal: bool = False, domain: str | None = None
) -> bytes:
    """A STIX 2.1 bundle (UTF-8 JSON bytes) for the reports."""
    dom = center_domain(domain)
    center = stix2.Identity(
        id=_id("identity", "center", dom),
        created=datetime(1996, 8, 8, tzinfo=UTC),  # the scheme's start: a fixed, stable date
        modified=datetime(1996, 8, 8, tzinfo=UTC),
        name=f"todokede reporting center ({dom})",
        identity_class="organization",
    )
    # The TLP marking the objects refer to travels in the bundle (TLP:AMBER without personal
    # data: for partner centers; TLP:RED with it).
    tlp = stix2.TLP_RED if personal else stix2.TLP_AMBER
    objects: dict[str, Any] = {tlp.id: tlp, center.id: center}
    for stored in reports:
        for obj in _objects(stored, center, personal=personal, domain=dom):
            objects.setdefault(obj.id, obj)  # one observable shared by several reports
    bundle = stix2.Bundle(objects=list(objects.values()), allow_custom=False)
    return str(bundle.serialize(pretty=True, ensure_ascii=False)).encode("utf-8")
