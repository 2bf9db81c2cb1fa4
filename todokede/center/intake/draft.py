"""Reports drafted from scan findings, and public narratives drafted from reports.

``draft_from_findings`` turns the JSON objects of ``todokede scan --json`` into the Report a
site would file: methods, damage, target services, period, attempt counts, the evidence.
``public_narrative`` and ``public_title`` describe a stored report for the monthly
publication: the analyst's text, else text drafted from its codes, counts and dates
(``drafted_*``, once the analyst approved it), else its taxonomy labels (``terms_*``).
Never the reporter's free text, so a publication cannot leak what the reporter typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from todokede.center import taxonomy
from todokede.center.intake.schema import Discovery, Evidence, Period, Report
from todokede.center.publication.advisories import advisory_for
from todokede.center.taxonomy import Lang
from todokede.errors import ReportError

KINDS = ("access-probe", "relay-abuse", "bounce-storm", "mail-bomb", "exploit-attempt")

_FAILED = ("refused", "denied", "reject", "blocked", "failed", "dropped")
_EVIDENCE_LINES = 50


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _clean(value: object, limit: int = 300) -> str:
    """Log-derived text without control characters (the report model refuses them)."""
    return _CONTROL.sub("", str(value)).strip()[:limit]


def service_of(name: str) -> str:
    """The service a daemon or program name stands for: ``in.imapd`` -> ``imap``; a name
    not known is kept (it is the reporter's draft, not public text)."""
    base = name.strip().lower().rsplit("/", 1)[0]  # postfix/smtpd -> postfix
    base = base.removeprefix("in.")
    if base in taxonomy.SERVICE_ALIASES:
        return taxonomy.SERVICE_ALIASES[base]
    tail = name.strip().lower().rsplit("/", 1)[-1].removeprefix("in.")
    return taxonomy.SERVICE_ALIASES.get(tail, tail or "unknown")


def _failed(outcome: str) -> bool:
    low = outcome.lower()
    return any(word in low for word in _FAILED)


def _when(value: Any, where: str) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ReportError(f"not an ISO 8601 time: {value!r}", source=where) from None


def _check(finding: Mapping[str, Any], where: str) -> None:
    if not isinstance(finding, Mapping):
        raise ReportError("a finding must be a JSON object", source=where)
    kind = finding.get("kind")
    if kind not in KINDS:
        raise ReportError(f"unknown kind {kind!r} (allowed: {', '.join(KINDS)})", source=where)
    for key in ("first_seen", "last_seen"):
        if key not in finding:
            raise ReportError("missing", source=where, field=key)


def _bytes(details: Mapping[str, Any]) -> int | None:
    for key in ("bytes", "total_bytes", "size"):
        value = details.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


@dataclass
class _Tally:
    """What a site's findings add up to, one finding at a time."""

    methods: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    attempts: int = 0  # of the attempts that got through, or of all when none did
    tried: int = 0
    succeeded: bool = False
    bounce_bytes: int = 0
    bounces: int = 0
    days: list[date] = field(default_factory=list)
    tools: set[str] = field(default_factory=set)

    def add(self, finding: Mapping[str, Any], where: str) -> None:
        _check(finding, where)
        kind = str(finding["kind"])
        service = service_of(_clean(finding.get("service") or "unknown", 40) or "unknown")
        # Dates as the log wrote them (its local time); mixed zones cannot be compared.
        self.days.append(_when(finding["first_seen"], where).date())
        self.days.append(_when(finding["last_seen"], where).date())
        if service not in self.targets and service != "unknown":
            self.targets.append(service)
        # A bounce storm's "sources" are MAILER-DAEMONs, not the attackers.
        for source in (finding.get("sources") or []) if kind != "bounce-storm" else []:
            source = _clean(source)
            if source and source not in self.sources and len(self.sources) < 1000:
                self.sources.append(source)
        failed = _failed(str(finding.get("outcome") or ""))
        count = int(finding.get("count") or 0)
        if self._classify(kind, failed, count, finding.get("details") or {}):
            self.tried += count
            self.attempts += 0 if failed else count
        self.succeeded = self.succeeded or not failed
        self.evidence.append(_evidence(finding, where))

    def _classify(self, kind: str, failed: bool, count: int, details: Mapping[str, Any]) -> bool:
        """Record the finding's method and damage; whether it is an attack itself (its
        count counts as attempts) rather than a side effect of one."""
        if kind == "access-probe":
            self.methods.append("access_probe")
            self.tools.add("tcp_wrapper")
        elif kind == "exploit-attempt":
            self.methods.append("security_hole_attack")
        elif kind == "relay-abuse":
            self.methods.append("mail_relay")
            self.damage.append("mail_relay" if not failed else "none")
        elif kind == "mail-bomb":
            self.methods.append("mail_bombing")
            self.damage.append("service_lowering")
        elif kind == "bounce-storm":
            self.damage.append("service_lowering")
            self.bounces += count
            self.bounce_bytes += _bytes(details) or 0
            return False
        return True


def _evidence(finding: Mapping[str, Any], where: str) -> Evidence:
    lines = [str(line) for line in (finding.get("evidence") or [])][:_EVIDENCE_LINES]
    try:
        return Evidence(
            kind="finding", source="todokede scan", text="\n".join(lines), data=dict(finding)
        )
    except ValidationError as exc:
        raise ReportError(
            f"evidence does not validate: {exc.errors()[0]['msg']}", source=where
        ) from None


def draft_from_findings(findings: Iterable[Mapping[str, Any]], *, lang: Lang = "ja") -> Report:
    """The report a site would file for these findings (all from one site).

    Raises ReportError (naming the finding) for a malformed finding or when there is none.
    """
    items = list(findings)
    if not items:
        raise ReportError("no findings to draft a report from")
    t = _Tally()
    for n, finding in enumerate(items, 1):
        t.add(finding, f"finding {n}")
    damage = [d for d in t.damage if d != "none"] if t.succeeded else []
    try:
        period = Period(start=min(t.days), end=max(t.days))  # a date out of range: refused
        report = _report(
            lang, period, max(t.days), t.tools, t.methods, damage or ["none"], t.succeeded,
            t.targets, t.sources, t.attempts or t.tried, t.evidence,
        )  # fmt: skip
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or None
        raise ReportError(str(err.get("msg", "invalid")), field=loc) from None
    extra = {"bounces": t.bounces, "bounce_bytes": t.bounce_bytes}
    report.title = _title(report.methods, report.targets, report.attempts, lang)
    report.narrative = _narrative(report, lang, extra)
    return report


def _report(
    lang: Lang,
    period: Period,
    discovered: date,
    tools: set[str],
    methods: list[str],
    damage: list[str],
    succeeded: bool,
    targets: list[str],
    sources: list[str],
    attempts: int,
    evidence: list[Evidence],
) -> Report:
    return Report(
        language=lang,
        discovered=discovered,
        period=period,
        discovery=Discovery(how="own_monitoring", tool=", ".join(sorted(tools)) or "todokede scan"),
        methods=methods,
        damage=damage,
        actual_damage=succeeded,
        targets=targets,
        sources=sources,
        attempts=attempts or None,
        evidence=evidence,
    )


def _fmt_date(day: date | None, lang: Lang) -> str:
    if day is None:
        return "?"
    return f"{day.year}年{day.month}月{day.day}日" if lang == "ja" else day.strftime("%d %b %Y")


def _unit(methods: Iterable[str], lang: Lang) -> str:
    mail = bool({"mail_bombing", "mail_relay", "spam"} & set(methods))
    if lang == "ja":
        return "通" if mail else "回"
    return " messages" if mail else " attempts"


def _title(methods: list[str], targets: list[str], attempts: int | None, lang: Lang) -> str:
    advisory = advisory_for(methods, targets)
    if advisory is not None:
        head = advisory.case(lang)
    elif methods:
        head = taxonomy.label("method", methods[0], lang)
    else:
        head = "その他" if lang == "ja" else "Other"
    if attempts:
        head += (
            f"({attempts:,}{_unit(methods, lang)})"
            if lang == "ja"
            else f" ({attempts:,}{_unit(methods, lang)})"
        )
    return head


def _service(targets: list[str], lang: Lang) -> str:
    """The first target service as public words (its target code's label)."""
    if not targets:
        return "サーバ" if lang == "ja" else "a server"
    name = taxonomy.label("target", taxonomy.target_code(targets[0]), lang)
    return name if lang == "ja" else f"the {lower_first(name)}"


def lower_first(text: str) -> str:
    """The first letter lowered for use mid-sentence, unless it starts an acronym:
    ``Mail server`` -> ``mail server``, ``IMAP server`` stays."""
    return text[0].lower() + text[1:] if text[1:2].islower() else text


def known_tool(tool: str | None) -> str | None:
    """The tool a report was found with, only when it is one the publication may name."""
    low = (tool or "").lower()
    return "tcp_wrapper" if "tcp_wrapper" in low or "tcpd" in low else None


def _labels(vocabulary: str, codes: Iterable[str], lang: Lang) -> str:
    sep = "、" if lang == "ja" else ", "
    return sep.join(taxonomy.label(vocabulary, c, lang) for c in codes)


def _narrative(report: Report, lang: Lang, extra: Mapping[str, int] | None = None) -> str:
    return describe(
        methods=report.methods,
        damage=report.damage,
        targets=report.targets,
        attempts=report.attempts,
        sources=len(report.sources),
        period=report.period,
        tool=report.discovery.tool if report.discovery else None,
        actual=report.actual_damage,
        lang=lang,
        extra=extra or {},
    )


def describe(
    *,
    methods: list[str],
    damage: list[str],
    targets: list[str],
    attempts: int | None,
    sources: int,
    period: Period | None,
    tool: str | None,
    actual: bool | None,
    lang: Lang,
    extra: Mapping[str, int] | None = None,
) -> str:
    """A plain account of a report built only from its codes, counts and dates: the one
    free-text field it looks at (``tool``) is only checked for a tool it may name."""
    facts = _Facts(
        methods=methods,
        damage=damage,
        where=_service(targets, lang),
        what=_labels("method", methods, lang) if methods else "",
        attempts=attempts,
        sources=sources,
        start=period.start if period else None,
        end=period.end if period else None,
        tool=known_tool(tool),
        actual=actual,
        extra=extra or {},
    )
    return _describe_ja(facts) if lang == "ja" else _describe_en(facts)


@dataclass(frozen=True)
class _Facts:
    """What a public account of a report may say."""

    methods: list[str]
    damage: list[str]
    where: str
    what: str
    attempts: int | None
    sources: int
    start: date | None
    end: date | None
    tool: str | None
    actual: bool | None
    extra: Mapping[str, int]


def _describe_ja(f: _Facts) -> str:
    parts: list[str] = []
    found = f"{f.tool}のログを調査したところ、" if f.tool else "ログを調査したところ、"
    # A finding lists a host by name and by address: hosts are not counted here.
    hosts = "外部のホストから" if f.sources else "外部から"
    times = f"{f.attempts:,}{_unit(f.methods, 'ja')}" if f.attempts else ""
    what = f.what or "不正アクセス"
    parts.append(f"{found}{f.where}に対して{hosts}{what}が{times}あったことが判明した。")
    if f.start and f.end and f.start == f.end:
        parts.append(f"{_fmt_date(f.start, 'ja')}のことであった。")
    elif f.start and f.end:
        parts.append(f"期間は{_fmt_date(f.start, 'ja')}から{_fmt_date(f.end, 'ja')}までであった。")
    if f.extra.get("bounces"):
        size = f.extra.get("bounce_bytes", 0)
        mb = f"(約{round(size / 1_000_000):,} Mbyte)" if size >= 1_000_000 else ""
        parts.append(
            f"配送できなかった電子メールのエラー通知{f.extra['bounces']:,}通{mb}が管理者宛に届いた。"
        )
    if f.actual:
        parts.append(f"被害内容は{_labels('damage', f.damage, 'ja')}であった。")
    elif f.actual is None:
        parts.append("実被害の有無は分かっていない。")
    else:
        parts.append("接続は拒否され、実害は無かった。")
    return "".join(parts)


def _describe_en(f: _Facts) -> str:
    parts: list[str] = []
    hosts = " from outside hosts" if f.sources else ""
    times = f"{f.attempts:,}{_unit(f.methods, 'en')} of " if f.attempts else ""
    found = (
        f"Examining the {f.tool} log, the administrator found "
        if f.tool
        else "Examining the logs, the administrator found "
    )
    what = f.what or "unauthorized access"
    parts.append(f"{found}{times}{what.lower()} against {f.where}{hosts}.")
    if f.start and f.end and f.start == f.end:
        parts.append(f"It happened on {_fmt_date(f.start, 'en')}.")
    elif f.start and f.end:
        parts.append(
            f"They took place from {_fmt_date(f.start, 'en')} to {_fmt_date(f.end, 'en')}."
        )
    if f.extra.get("bounces"):
        size = f.extra.get("bounce_bytes", 0)
        mb = f" (about {round(size / 1_000_000):,} MB)" if size >= 1_000_000 else ""
        parts.append(
            f"{f.extra['bounces']:,} error notices for undeliverable mail{mb} "
            "reached the administrator."
        )
    if f.actual:
        parts.append(f"Damage: {_labels('damage', f.damage, 'en').lower()}.")
    elif f.actual is None:
        parts.append("Whether there was actual damage is not known.")
    else:
        parts.append("The connections were refused and there was no actual damage.")
    return " ".join(parts)
