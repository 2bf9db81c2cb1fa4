"""The mapping between a Report and IODEF v2, shared by export and import, and the schema.

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

from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from todokede import settings

NS = "urn:ietf:params:xml:ns:iodef-2.0"
XML_NS = "http://www.w3.org/XML/1998/namespace"
LANG = f"{{{XML_NS}}}lang"
SCHEMA_DIR = Path(__file__).parent.parent / "schemas"
DEFAULT_DOMAIN = settings.DEFAULT_DOMAIN

# The schema imports three documents by their published URL; they are bundled.
_LOCAL_SCHEMAS = {
    "http://www.iana.org/assignments/xml-registry/schema/iodef-enum-1.0.xsd": "iodef-enum-1.0.xsd",
    "http://www.iana.org/assignments/xml-registry/schema/iodef-sci-1.0.xsd": "iodef-sci-1.0.xsd",
    "http://www.w3.org/2009/01/xml.xsd": "xml.xsd",
}

# 被害内容 -> SystemImpact/@type (RFC 7970 section 3.12.2)
IMPACT = {
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
DISCOVERY = {
    "own_monitoring": "os-log",
    "service_anomaly": "internal-notification",
    "external": "external-notification",
    "other": "unknown",
}
DISCOVERY_BACK = {
    **{s: "own_monitoring" for s in ("nidps", "hips", "siem", "av", "os-log")},
    **{s: "own_monitoring" for s in ("application-log", "device-log", "network-flow", "audit")},
    **{s: "own_monitoring" for s in ("passive-dns", "investigation")},
    "internal-notification": "service_anomaly",
    **{s: "external" for s in ("external-notification", "third-party-monitoring", "leo")},
    **{s: "external" for s in ("partner", "incident")},
}
# 被害を受けた機器 -> NodeRole/@category
NODE_ROLE = {
    "mail_server": "mail",
    "web_server": "www",
    "dns_server": "name",
    "file_server": "file",
    "other_server": "server-internal",
    "pc": "client",
    "network_device": "infra",
}
NODE_ROLE_BACK = {v: k for k, v in NODE_ROLE.items()}
STATUS = {
    "draft": "new",
    "received": "new",
    "triaged": "in-progress",
    "published": "resolved",
    "closed": "resolved",
}


def center_domain(flag: str | None = None) -> str:
    """The center's domain, the name of its IncidentIDs: flag > TODOKEDE_DOMAIN > default."""
    return settings.domain(flag)


class _LocalSchemas(etree.Resolver):
    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]
        name = _LOCAL_SCHEMAS.get(system_url)
        if name is None and Path(system_url).name.endswith(".xsd"):
            name = Path(system_url).name
        if name is None or not (SCHEMA_DIR / name).is_file():
            return None
        return self.resolve_filename(str(SCHEMA_DIR / name), context)  # type: ignore[attr-defined]


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@cache
def schema() -> etree.XMLSchema:
    """RFC 7970's schema, compiled once, with its imports resolved to the bundled copies."""
    parser = safe_parser()
    parser.resolvers.add(_LocalSchemas())
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "iodef-2.0.xsd"), parser))
