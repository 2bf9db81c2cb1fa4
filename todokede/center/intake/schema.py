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
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
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


# What the OpenAPI schema says of the same rule.
_NO_CONTROL = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"
Clean = Annotated[
    Short,
    AfterValidator(_no_control),
    WithJsonSchema({"type": "string", "maxLength": 300, "pattern": _NO_CONTROL}),
]
CleanText = Annotated[
    Text,
    AfterValidator(_no_control),
    WithJsonSchema({"type": "string", "maxLength": 20_000, "pattern": _NO_CONTROL}),
]


def _in(vocabulary: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in taxonomy.VOCABULARIES[vocabulary]:
            allowed = ", ".join(taxonomy.VOCABULARIES[vocabulary])
            raise ValueError(f"unknown {vocabulary} {value!r} (allowed: {allowed})")
        return value

    return check


def _listed(vocabulary: taxonomy.Vocabulary) -> WithJsonSchema:
    """The OpenAPI schema of a vocabulary's codes: an enum of them."""
    codes = list(taxonomy.VOCABULARIES[vocabulary])
    return WithJsonSchema({"type": "string", "enum": codes, "title": vocabulary})


MethodCode = Annotated[str, AfterValidator(_in("method")), _listed("method")]
DamageCode = Annotated[str, AfterValidator(_in("damage")), _listed("damage")]
CauseCode = Annotated[str, AfterValidator(_in("cause")), _listed("cause")]
ReporterTypeCode = Annotated[str, AfterValidator(_in("reporter_type")), _listed("reporter_type")]
DiscoveryCode = Annotated[str, AfterValidator(_in("discovery")), _listed("discovery")]
DeviceCode = Annotated[str, AfterValidator(_in("device")), _listed("device")]
TargetCode = Annotated[str, AfterValidator(_in("target")), _listed("target")]

# Every number and date a client sends is bounded, so that none can overflow a database
# column or a date computation: ids fit PostgreSQL's INTEGER, counts a 64-bit integer,
# dates lie between 1970 and 2099. Booleans, numbers and dates are taken only as JSON
# writes them (``0`` is not ``false``, ``"5"`` is not 5, a number is not a date).
ID_MAX = 2**31 - 1
COUNT_MAX = 2**53 - 1  # the largest integer every JSON reader keeps exactly
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2099, 12, 31)
# What the OpenAPI schema says of the same rule, as patterns (JSON Schema has no range for
# dates): the years 1970-2099, each month's days, 29 February in leap years only.
_YEAR = r"(19[7-9][0-9]|20[0-9][0-9])"
_LEAP = r"(19(7[26]|8[048]|9[26])|20([02468][048]|[13579][26]))"
_MONTH_DAY = (
    r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|02-(0[1-9]|1[0-9]|2[0-8]))"
)
_DATE = rf"({_YEAR}-{_MONTH_DAY}|{_LEAP}-02-29)"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
_ZONE = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
DAY_PATTERN = rf"^{_DATE}$"
MOMENT_PATTERN = rf"^{_DATE}T{_TIME}{_ZONE}?$"


def _not_a_number(value: Any) -> Any:
    if isinstance(value, int | float):
        raise ValueError("a date is written as text (ISO 8601: YYYY-MM-DD), not a number")
    return value


def _day_in_range(value: date) -> date:
    day = value.date() if isinstance(value, datetime) else value
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return value


def _whole_number(value: Any) -> Any:
    """JSON's whole numbers (``12``, ``12.0``), not text or true/false."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a whole number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Id = Annotated[int, Field(ge=1, le=ID_MAX), BeforeValidator(_whole_number)]
Count = Annotated[int, Field(ge=0, le=COUNT_MAX), BeforeValidator(_whole_number)]
Day = Annotated[
    date,
    BeforeValidator(_not_a_number),
    AfterValidator(_day_in_range),
    WithJsonSchema({"type": "string", "pattern": DAY_PATTERN, "description": "YYYY-MM-DD"}),
]
Moment = Annotated[
    datetime,
    BeforeValidator(_not_a_number),
    AfterValidator(_day_in_range),
    WithJsonSchema(
        {"type": "string", "pattern": MOMENT_PATTERN, "description": "ISO 8601 date and time"}
    ),
]

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

    start: Day | None = None
    end: Day | None = None

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

    at: Moment
    text: CleanText = ""
    evidence: list[Evidence] = Field(default_factory=list, max_length=100)


class Report(_Model):
    """A report of unauthorized access as the reporter sends it (届出)."""

    language: Literal["ja", "en"] = "ja"
    title: Clean | None = None  # short summary (届出概要), drafted when absent
    # 届出年月日: set by the center (the day the report arrives, or its draft is sent);
    # the API refuses it in a submission, so no report can be backdated.
    received: Day | None = Field(
        default=None,
        description="Set by the center; leave it out when submitting.",
        json_schema_extra={"readOnly": True},
    )
    reporter: Reporter = Field(default_factory=Reporter)
    discovered: Day | None = None  # 発見年月日
    period: Period | None = None
    systems: list[AffectedSystem] = Field(default_factory=list, max_length=50)
    network: CleanText | None = None  # 接続形態
    discovery: Discovery | None = None
    methods: list[MethodCode] = Field(default_factory=list, max_length=20)
    damage: list[DamageCode] = Field(default_factory=list, max_length=20)
    actual_damage: StrictBool | None = None  # 実被害: yes, no, or None = unknown
    causes: list[CauseCode] = Field(default_factory=list, max_length=10)
    sources: list[Clean] = Field(default_factory=list, max_length=1000)  # hosts/addresses
    # Services as the reporter names them ("imap", "経理サーバ"): free text, never public;
    # only their target codes go public (``StoredReport.effective_targets``).
    targets: list[Clean] = Field(default_factory=list, max_length=50)
    attempts: Count | None = None  # how many attempts/messages, if counted
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
    actual_damage: StrictBool | None = None
    is_test: StrictBool = False
    duplicate_of: Id | None = None
    incident_id: Id | None = None
    new_type: StrictBool | None = None  # analyst override of novelty; None = computed
    new_type_reason: CleanText | None = None
    published_title: Clean | None = None  # the case's heading in the publication
    published_title_en: Clean | None = None
    published_narrative: CleanText | None = None  # analyst-edited public narrative
    published_narrative_en: CleanText | None = None
    # The analyst approved the text drafted from the codes and counts (shown as a preview on
    # the classification form); until then public output uses the codes' labels alone.
    public_draft_approved: StrictBool = False
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
