"""The analyst's classification form read into a ``Triage``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from todokede.center import taxonomy
from todokede.center.intake.forms import _opt, _whole
from todokede.center.intake.schema import STATUSES, StoredReport, Triage


def to_triage(
    form: Mapping[str, Any], getlist: Any, stored: StoredReport
) -> tuple[Triage | None, dict[str, str]]:
    """The analyst's classification form -> Triage. A ticked set equal to the reporter's
    is stored as "no override", so a later correction by the reporter still shows."""
    report = stored.report

    def override(name: str, reported: Iterable[str]) -> list[str] | None:
        chosen = [v for v in getlist(name) if isinstance(v, str)]
        # the boxes come in taxonomy order, the reporter's list in any: compare as sets
        return None if set(chosen) == set(reported) else chosen

    def number(name: str) -> int | str | None:
        return _whole(form.get(name))

    # Unknown ("") leaves the reporter's answer: it never becomes "no".
    actual = form.get("actual_damage")
    actual_value = {"yes": True, "no": False}.get(actual) if isinstance(actual, str) else None
    reported_actual = report.actual_damage
    new_type = form.get("new_type")
    status = form.get("status")
    data = {
        "status": status if status in STATUSES else stored.triage.status,
        "methods": override("methods", report.methods),
        "damage": override("damage", report.damage),
        "causes": override("causes", report.causes),
        "targets": override("targets", taxonomy.target_codes(report.targets)),
        "actual_damage": None if actual_value == reported_actual else actual_value,
        "is_test": form.get("is_test") == "on",
        "duplicate_of": number("duplicate_of"),
        "incident_id": number("incident_id"),
        "new_type": {"yes": True, "no": False}.get(new_type) if isinstance(new_type, str) else None,
        "new_type_reason": _opt(form.get("new_type_reason")),
        "published_title": _opt(form.get("published_title")),
        "published_title_en": _opt(form.get("published_title_en")),
        "published_narrative": _opt(form.get("published_narrative")),
        "published_narrative_en": _opt(form.get("published_narrative_en")),
        "public_draft_approved": form.get("public_draft_approved") == "on",
        "note": _opt(form.get("note")),
    }
    if data["duplicate_of"] == stored.id:
        return None, {"duplicate_of": "a report cannot duplicate itself"}
    try:
        return Triage.model_validate(data), {}
    except ValidationError as exc:
        out: dict[str, str] = {}
        for err in exc.errors():
            loc = [p for p in err.get("loc", ()) if isinstance(p, str)]
            out.setdefault(loc[0] if loc else "form", str(err.get("msg", "invalid")))
        return None, out
