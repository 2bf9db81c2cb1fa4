"""The report form and the classification form: HTML form values <-> the one Report model.

Form values are plain ``dict[str, str | list[str]]`` keyed by the input names the templates
use, so a form that fails validation is shown again exactly as typed, with the errors next
to their fields. Evidence travels beside the values as a list of ``Evidence``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from todokede.center.intake.draft import draft_from_findings
from todokede.center.intake.schema import Evidence, Report
from todokede.errors import ReportError

Values = dict[str, Any]

TEXT_FIELDS = (
    "title",
    "language",
    "reporter.organisation",
    "reporter.name",
    "reporter.email",
    "reporter.phone",
    "reporter.fax",
    "reporter.address",
    "reporter.type",
    "system.device",
    "system.role",
    "system.os",
    "system.software",
    "network",
    "discovered",
    "period.start",
    "period.end",
    "discovery.how",
    "discovery.tool",
    "discovery.detail",
    "actual_damage",
    "sources",
    "targets",
    "attempts",
    "narrative",
    "countermeasures",
    "evidence.text",
    "evidence.source",
    "scan_json",
)
LIST_FIELDS = ("methods", "damage", "causes")

# Form field -> the message key of its label (for the list of errors above the form).
FIELD_LABELS = {
    "title": "title",
    "language": "report_language",
    "reporter.organisation": "organisation",
    "reporter.name": "name",
    "reporter.email": "email",
    "reporter.phone": "phone",
    "reporter.fax": "fax",
    "reporter.address": "address",
    "reporter.type": "reporter_type",
    "system.device": "device",
    "system.role": "role",
    "system.os": "os",
    "system.software": "software",
    "network": "network",
    "discovered": "discovered",
    "period.start": "period_start",
    "period.end": "period_end",
    "discovery.how": "how",
    "discovery.tool": "tool",
    "discovery.detail": "detail",
    "methods": "method",
    "damage": "damage",
    "causes": "cause",
    "actual_damage": "actual_damage",
    "sources": "sources",
    "targets": "targets",
    "attempts": "attempts",
    "narrative": "narrative",
    "countermeasures": "countermeasures",
    "evidence.text": "evidence_text",
    "evidence.source": "evidence_source",
    "scan_json": "scan_json",
}


def read_values(form: Mapping[str, Any], getlist: Any) -> Values:
    """Values from a submitted form (``getlist`` is FormData.getlist)."""
    values: Values = {}
    for name in TEXT_FIELDS:
        raw = form.get(name)
        values[name] = raw if isinstance(raw, str) else ""
    for name in LIST_FIELDS:
        values[name] = [v for v in getlist(name) if isinstance(v, str)]
    return values


def _opt(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _whole(value: Any) -> int | str | None:
    """A typed whole number as an int; anything else as typed, for the model to refuse
    with its own message (a number too large is refused by its bound, not by a crash)."""
    text = _opt(value)
    if text is None:
        return None
    digits = text.replace(",", "").lstrip("#")
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 40 else text


def _lines(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [line.strip() for line in value.splitlines() if line.strip()]


def _commas(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [p.strip() for p in value.replace("\n", ",").split(",") if p.strip()]


_LOC_NAMES: dict[tuple[str, ...], str] = {
    ("systems",): "system.device",
    ("period",): "period.end",
}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if isinstance(p, str)]
    if not parts:
        return "form"
    if parts[0] == "systems":
        return "system." + (parts[1] if len(parts) > 1 else "device")
    if parts[0] in LIST_FIELDS:
        return parts[0]
    if parts[0] == "evidence":
        return "evidence.text"
    name = ".".join(parts[:2])
    return _LOC_NAMES.get(tuple(parts), name if name in TEXT_FIELDS else parts[0])


def errors_of(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        name = _field_name(tuple(err.get("loc", ())))
        msg = str(err.get("msg", "invalid"))
        out.setdefault(name, msg.removeprefix("Value error, "))
    return out


def to_report(
    values: Values, evidence: list[Evidence], base: Report | None = None
) -> tuple[Report | None, dict[str, str]]:
    """Build a Report from form values; on failure, None and {field name: message}."""
    system: dict[str, Any] = {
        "device": _opt(values.get("system.device")),
        "role": _opt(values.get("system.role")),
        "os": _opt(values.get("system.os")),
        "software": _lines(values.get("system.software")),
    }
    systems = [system] if any(system.values()) else []
    if base is not None:  # the form edits the first system; keep any others as they were
        systems += [s.model_dump() for s in base.systems[1:]]
    period = {"start": _opt(values.get("period.start")), "end": _opt(values.get("period.end"))}
    discovery = {
        "how": _opt(values.get("discovery.how")),
        "tool": _opt(values.get("discovery.tool")),
        "detail": _opt(values.get("discovery.detail")),
    }
    actual = values.get("actual_damage")
    data: dict[str, Any] = {
        "language": values.get("language") or "ja",
        "title": _opt(values.get("title")),
        "reporter": {
            k: _opt(values.get(f"reporter.{k}"))
            for k in ("organisation", "name", "email", "phone", "fax", "address", "type")
        },
        "discovered": _opt(values.get("discovered")),
        "period": period if any(period.values()) else None,
        "systems": systems,
        "network": _opt(values.get("network")),
        "discovery": discovery if any(discovery.values()) else None,
        "methods": list(values.get("methods") or []),
        "damage": list(values.get("damage") or []),
        "causes": list(values.get("causes") or []),
        "actual_damage": {"yes": True, "no": False}.get(actual)
        if isinstance(actual, str)
        else None,
        "sources": _lines(values.get("sources")),
        "targets": _commas(values.get("targets")),
        "attempts": _whole(values.get("attempts")),
        "narrative": _opt(values.get("narrative")),
        "countermeasures": _opt(values.get("countermeasures")),
        "evidence": [e.model_dump() for e in evidence],
        "received": base.received if base else None,
        "additions": [a.model_dump() for a in base.additions] if base else [],
    }
    try:
        return Report.model_validate(data), {}
    except ValidationError as exc:
        return None, errors_of(exc)


# What a report must tell, at least one of them, to be a report: the incident, not only
# who reports it.
CONTENT = (
    "title", "narrative", "methods", "damage", "sources", "targets", "evidence", "systems",
    "discovered", "period", "discovery", "network", "attempts", "countermeasures",
)  # fmt: skip


def is_empty(report: Report) -> bool:
    """Whether the form said nothing about what happened (an empty form is no report)."""
    return not any(getattr(report, name) for name in CONTENT)


def to_values(report: Report) -> Values:
    """Form values showing ``report``."""
    r = report.reporter
    system = report.systems[0] if report.systems else None
    d = report.discovery

    def s(value: object) -> str:
        return "" if value is None else str(value)

    return {
        "title": s(report.title),
        "language": report.language,
        "reporter.organisation": s(r.organisation),
        "reporter.name": s(r.name),
        "reporter.email": s(r.email),
        "reporter.phone": s(r.phone),
        "reporter.fax": s(r.fax),
        "reporter.address": s(r.address),
        "reporter.type": s(r.type),
        "system.device": s(system.device if system else None),
        "system.role": s(system.role if system else None),
        "system.os": s(system.os if system else None),
        "system.software": "\n".join(system.software) if system else "",
        "network": s(report.network),
        "discovered": s(report.discovered),
        "period.start": s(report.period.start if report.period else None),
        "period.end": s(report.period.end if report.period else None),
        "discovery.how": s(d.how if d else None),
        "discovery.tool": s(d.tool if d else None),
        "discovery.detail": s(d.detail if d else None),
        "methods": list(report.methods),
        "damage": list(report.damage),
        "causes": list(report.causes),
        "actual_damage": {True: "yes", False: "no", None: ""}[report.actual_damage],
        "sources": "\n".join(report.sources),
        "targets": ", ".join(report.targets),
        "attempts": s(report.attempts),
        "narrative": s(report.narrative),
        "countermeasures": s(report.countermeasures),
        "evidence.text": "",
        "evidence.source": "",
        "scan_json": "",
    }


def empty_values(lang: str) -> Values:
    values = to_values(Report(language="en" if lang == "en" else "ja"))
    return values


# --- evidence carried through the form -------------------------------------------------


def read_carried(raw: Any) -> list[Evidence]:
    """Evidence already attached, carried in a hidden field as JSON (validated again)."""
    if not isinstance(raw, str) or not raw.strip():
        return []
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise ReportError("attached evidence is not valid JSON", field="evidence") from exc
    if not isinstance(items, list):
        raise ReportError("attached evidence is not a list", field="evidence")
    try:
        return [Evidence.model_validate(item) for item in items[:200]]
    except ValidationError as exc:
        raise ReportError(f"attached evidence: {exc.errors()[0]['msg']}", field="evidence") from exc


def carried(evidence: list[Evidence]) -> str:
    return json.dumps([e.model_dump(mode="json") for e in evidence], ensure_ascii=False)


# --- scan --json ------------------------------------------------------------------------


def parse_findings(text: str, *, source: str = "scan --json") -> list[dict[str, Any]]:
    """Findings from ``scan --json`` output: JSON Lines, or one JSON array/object."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise ReportError(f"not valid JSON: {exc}", source=source) from exc
        if not isinstance(items, list):
            raise ReportError("expected a list of findings", source=source)
        found: list[dict[str, Any]] = []
        for i, item in enumerate(items, 1):
            found.append(_finding(item, source, i))
        return found
    findings = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ReportError(f"not valid JSON: {exc.args[0]}", source=source, line=number) from exc
        findings.append(_finding(item, source, number))
        if len(findings) > 1000:
            raise ReportError("more than 1000 findings; send fewer at a time", source=source)
    return findings


def _finding(item: Any, source: str, line: int) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("kind"), str):
        raise ReportError("a finding must be an object with a 'kind'", source=source, line=line)
    return item


def draft(findings: list[dict[str, Any]], lang: str) -> Report:
    """A draft report from findings (the same drafting as ``report draft --from-scan``)."""
    try:
        return draft_from_findings(findings, lang="en" if lang == "en" else "ja")
    except ReportError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ReportError(f"the findings could not be read: {exc}", source="scan --json") from exc


def merge(values: Values, drafted: Report) -> Values:
    """Fill empty form fields from a drafted report; lists are united, nothing typed is lost."""
    filled = to_values(drafted)
    out = dict(values)
    for key, value in filled.items():
        if key in LIST_FIELDS:
            out[key] = list(dict.fromkeys([*(values.get(key) or []), *value]))
        elif key in ("language", "scan_json", "evidence.text", "evidence.source"):
            continue
        elif not (values.get(key) or "").strip():
            out[key] = value
    return out
