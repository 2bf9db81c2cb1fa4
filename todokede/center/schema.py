"""The one Report model: used by the API, the CLI, the web form, e-mail intake and the
exports. Modelled on IPA's report form. Partial reports are valid: almost every field
is optional, because the scheme accepts whatever the reporter can tell.

Two layers:
- ``Report``: what the reporter says (confidential parts: ``reporter`` and ``evidence``).
- ``Triage``: what the center decides about it (status, classification overrides, links).
A stored report is both plus an id and timestamps (``StoredReport``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from todokede.center import taxonomy

# Limits keep one report bounded: a hostile body cannot make the center store megabytes
# per field or recurse deeply.
Short = Annotated[str, StringConstraints(max_length=300, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=20_000)]
LogText = Annotated[str, StringConstraints(max_length=200_000)]

_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r"} | {"\x7f"}


def _no_control(value: str) -> str:
    bad = next((c for c in value if c in _CONTROL), None)
    if bad is not None:
        raise ValueError(f"control character U+{ord(bad):04X} is not allowed here")
    return value


Clean = Annotated[Short, AfterValidator(_no_control)]
CleanText = Annotated[Text, AfterValidator(_no_control)]


def _in(vocabulary: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in taxonomy.VOCABULARIES[vocabulary]:
            allowed = ", ".join(taxonomy.VOCABULARIES[vocabulary])
            raise ValueError(f"unknown {vocabulary} {value!r} (allowed: {allowed})")
        return value

    return check


MethodCode = Annotated[str, AfterValidator(_in("method"))]
DamageCode = Annotated[str, AfterValidator(_in("damage"))]
CauseCode = Annotated[str, AfterValidator(_in("cause"))]
ReporterTypeCode = Annotated[str, AfterValidator(_in("reporter_type"))]
DiscoveryCode = Annotated[str, AfterValidator(_in("discovery"))]
DeviceCode = Annotated[str, AfterValidator(_in("device"))]
TargetCode = Annotated[str, AfterValidator(_in("target"))]

Status = Literal["draft", "received", "triaged", "published", "closed", "rejected"]
STATUSES: tuple[str, ...] = ("draft", "received", "triaged", "published", "closed", "rejected")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Reporter(_Model):
    """届出者. Personal data: never in public output."""

    organisation: Clean | None = None
    name: Clean | None = None
    email: Clean | None = None
    phone: Clean | None = None
    fax: Clean | None = None
    address: Clean | None = None
    type: ReporterTypeCode | None = None


class Period(_Model):
    """When it happened: 発生期間."""

    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.start and self.end and self.end < self.start:
            raise ValueError("period.end is before period.start")
        return self


class AffectedSystem(_Model):
    """被害を受けたシステム: one machine or device."""

    device: DeviceCode | None = None
    role: Clean | None = None  # free text: "mail server", "IMAP server"
    os: Clean | None = None
    software: list[Clean] = Field(default_factory=list, max_length=50)


class Discovery(_Model):
    """発見契機: how it was found."""

    how: DiscoveryCode | None = None
    tool: Clean | None = None  # e.g. "tcp_wrapper", "todokede scan"
    detail: CleanText | None = None


class Evidence(_Model):
    """A log excerpt or a scan finding. Attacker-controlled text: always shown escaped."""

    kind: Literal["log", "finding", "probe", "mail", "other"] = "log"
    source: Clean | None = None  # file name, tool name
    text: LogText = ""
    data: dict[str, Any] | None = None  # a finding or probe result as JSON

    @field_validator("data")
    @classmethod
    def _shallow(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and _depth(value) > 8:
            raise ValueError("nested too deeply (more than 8 levels)")
        if value is not None:
            _storable(value)
        return value


def _storable(value: Any) -> None:
    """Free-form JSON must survive storage unchanged: no lone surrogates (not UTF-8), no
    NaN or infinities (JSON has none; they would come back as null)."""
    if isinstance(value, str):
        if any("\ud800" <= c <= "\udfff" for c in value):
            raise ValueError("text is not valid Unicode (lone surrogate)")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("numbers must be finite")
    elif isinstance(value, dict):
        for k, v in value.items():
            _storable(k)
            _storable(v)
    elif isinstance(value, list):
        for v in value:
            _storable(v)


def _depth(value: Any, level: int = 0) -> int:
    if level > 8:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


class Addition(_Model):
    """A later finding sent as an addition to the same report (追加報告)."""

    at: datetime
    text: CleanText = ""
    evidence: list[Evidence] = Field(default_factory=list, max_length=100)


class Report(_Model):
    """A report of unauthorized access as the reporter sends it (届出)."""

    language: Literal["ja", "en"] = "ja"
    title: Clean | None = None  # short summary (届出概要), drafted when absent
    # 届出年月日: set by the center (the day the report arrives, or its draft is sent);
    # the API refuses it in a submission, so no report can be backdated.
    received: date | None = Field(
        default=None, description="Set by the center; leave it out when submitting."
    )
    reporter: Reporter = Field(default_factory=Reporter)
    discovered: date | None = None  # 発見年月日
    period: Period | None = None
    systems: list[AffectedSystem] = Field(default_factory=list, max_length=50)
    network: CleanText | None = None  # 接続形態
    discovery: Discovery | None = None
    methods: list[MethodCode] = Field(default_factory=list, max_length=20)
    damage: list[DamageCode] = Field(default_factory=list, max_length=20)
    actual_damage: bool | None = None  # 実被害: yes, no, or None = unknown
    causes: list[CauseCode] = Field(default_factory=list, max_length=10)
    sources: list[Clean] = Field(default_factory=list, max_length=1000)  # hosts/addresses
    # Services as the reporter names them ("imap", "経理サーバ"): free text, never public;
    # only their target codes go public (``StoredReport.effective_targets``).
    targets: list[Clean] = Field(default_factory=list, max_length=50)
    attempts: int | None = Field(default=None, ge=0)  # how many attempts/messages, if counted
    narrative: CleanText | None = None  # 被害の状況
    evidence: list[Evidence] = Field(default_factory=list, max_length=200)
    countermeasures: CleanText | None = None  # 対策 (taken by the reporter)
    additions: list[Addition] = Field(default_factory=list, max_length=100)

    @field_validator("methods", "damage", "causes", "targets")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class Triage(_Model):
    """What the center decides about a report. Analysts only."""

    status: Status = "received"
    methods: list[MethodCode] | None = None  # classification overrides the reporter's
    damage: list[DamageCode] | None = None
    causes: list[CauseCode] | None = None
    targets: list[TargetCode] | None = None  # target services, as target codes
    # 実被害 as the analyst decides it; None leaves the reporter's answer (which may be
    # None too: unknown).
    actual_damage: bool | None = None
    is_test: bool = False
    duplicate_of: int | None = None
    incident_id: int | None = None
    new_type: bool | None = None  # analyst override of novelty; None = computed
    new_type_reason: CleanText | None = None
    published_title: Clean | None = None  # the case's heading in the publication
    published_title_en: Clean | None = None
    published_narrative: CleanText | None = None  # analyst-edited public narrative
    published_narrative_en: CleanText | None = None
    # The analyst approved the text drafted from the codes and counts (shown as a preview on
    # the classification form); until then public output uses the codes' labels alone.
    public_draft_approved: bool = False
    note: CleanText | None = None  # internal


class StoredReport(_Model):
    """A report as the center keeps it."""

    id: int
    report: Report
    triage: Triage
    owner: str | None = None  # user name of the submitter
    created_at: datetime
    updated_at: datetime

    def effective_methods(self) -> list[str]:
        return list(self.triage.methods if self.triage.methods is not None else self.report.methods)

    def effective_damage(self) -> list[str]:
        return list(self.triage.damage if self.triage.damage is not None else self.report.damage)

    def effective_causes(self) -> list[str]:
        return list(self.triage.causes if self.triage.causes is not None else self.report.causes)

    def effective_targets(self) -> list[str]:
        """Target services as target codes: the analyst's, else the reporter's mapped."""
        if self.triage.targets is not None:
            return list(self.triage.targets)
        return taxonomy.target_codes(self.report.targets)

    def effective_actual_damage(self) -> bool | None:
        """実被害: True (yes), False (no) or None (unknown: nobody has said)."""
        if self.triage.actual_damage is not None:
            return self.triage.actual_damage
        return self.report.actual_damage

    @property
    def counted(self) -> bool:
        """Whether statistics count it: test reports, duplicates and rejects are left out."""
        t = self.triage
        return not t.is_test and t.duplicate_of is None and t.status not in ("draft", "rejected")
