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


def draft_from_findings(findings: Iterable[Mapping[str, Any]], *, lang: Lang = "ja") -> Report:
    """The report a site would file for these findings (all from one site).

    Raises ReportError (naming the finding) for a malformed finding or when there is none.
    """
    items = list(findings)
    if not items:
        raise ReportError("no findings to draft a report from")
    methods: list[str] = []
    damage: list[str] = []
    targets: list[str] = []
    sources: list[str] = []
    evidence: list[Evidence] = []
    attempts = 0  # of the attempts that got through, or of all when none did
    tried = 0
    succeeded = False
    bounce_bytes = 0
    bounces = 0
    starts: list[date] = []
    ends: list[date] = []
    tools: set[str] = set()
    for n, finding in enumerate(items, 1):
        where = f"finding {n}"
        _check(finding, where)
        kind = str(finding["kind"])
        service = service_of(_clean(finding.get("service") or "unknown", 40) or "unknown")
        outcome = str(finding.get("outcome") or "")
        count = int(finding.get("count") or 0)
        details = finding.get("details") or {}
        # Dates as the log wrote them (its local time); mixed zones cannot be compared.
        starts.append(_when(finding["first_seen"], where).date())
        ends.append(_when(finding["last_seen"], where).date())
        if service not in targets and service != "unknown":
            targets.append(service)
        # A bounce storm's "sources" are MAILER-DAEMONs, not the attackers.
        for source in (finding.get("sources") or []) if kind != "bounce-storm" else []:
            source = _clean(source)
            if source and source not in sources and len(sources) < 1000:
                sources.append(source)
        failed = _failed(outcome)
        primary = False
        if kind == "access-probe":
            methods.append("access_probe")
            tools.add("tcp_wrapper")
            primary = True
        elif kind == "exploit-attempt":
            methods.append("security_hole_attack")
            primary = True
        elif kind == "relay-abuse":
            methods.append("mail_relay")
            damage.append("mail_relay" if not failed else "none")
            primary = True
        elif kind == "mail-bomb":
            methods.append("mail_bombing")
            damage.append("service_lowering")
            primary = True
        elif kind == "bounce-storm":
            damage.append("service_lowering")
            bounces += count
            bounce_bytes += _bytes(details) or 0
        succeeded = succeeded or not failed
        if primary:
            tried += count
            attempts += 0 if failed else count
        lines = [str(line) for line in (finding.get("evidence") or [])][:_EVIDENCE_LINES]
        try:
            evidence.append(
                Evidence(
                    kind="finding",
                    source="todokede scan",
                    text="\n".join(lines),
                    data=dict(finding),
                )
            )
        except ValidationError as exc:
            raise ReportError(
                f"evidence does not validate: {exc.errors()[0]['msg']}", source=where
            ) from None
    if not succeeded:
        damage = ["none"]
    attempts = attempts or tried
    damage = [d for d in damage if d != "none"] or ["none"]
    days = starts + ends
    try:
        period = Period(start=min(days), end=max(days))  # a date out of range: refused
        report = _report(
            lang, period, max(days), tools, methods, damage, succeeded, targets, sources,
            attempts, evidence,
        )  # fmt: skip
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or None
        raise ReportError(str(err.get("msg", "invalid")), field=field) from None
    extra = {"bounces": bounces, "bounce_bytes": bounce_bytes}
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
    tool = known_tool(tool)
    extra = extra or {}
    start = period.start if period else None
    end = period.end if period else None
    ja = lang == "ja"
    parts: list[str] = []
    where = _service(targets, lang)
    what = (
        _labels("method", methods, lang)
        if methods
        else ("不正アクセス" if ja else "unauthorized access")
    )
    if ja:
        found = f"{tool}のログを調査したところ、" if tool else "ログを調査したところ、"
        # A finding lists a host by name and by address: hosts are not counted here.
        hosts = "外部のホストから" if sources else "外部から"
        times = f"{attempts:,}{_unit(methods, lang)}" if attempts else ""
        parts.append(f"{found}{where}に対して{hosts}{what}が{times}あったことが判明した。")
        if start and end and start == end:
            parts.append(f"{_fmt_date(start, lang)}のことであった。")
        elif start and end:
            parts.append(f"期間は{_fmt_date(start, lang)}から{_fmt_date(end, lang)}までであった。")
        if extra.get("bounces"):
            size = extra.get("bounce_bytes", 0)
            mb = f"(約{round(size / 1_000_000):,} Mbyte)" if size >= 1_000_000 else ""
            parts.append(
                f"配送できなかった電子メールのエラー通知{extra['bounces']:,}通{mb}が管理者宛に届いた。"
            )
        if actual:
            parts.append(f"被害内容は{_labels('damage', damage, lang)}であった。")
        elif actual is None:
            parts.append("実被害の有無は分かっていない。")
        else:
            parts.append("接続は拒否され、実害は無かった。")
        return "".join(parts)
    hosts = " from outside hosts" if sources else ""
    times = f"{attempts:,}{_unit(methods, lang)} of " if attempts else ""
    found = (
        f"Examining the {tool} log, the administrator found "
        if tool
        else "Examining the logs, the administrator found "
    )
    parts.append(f"{found}{times}{what.lower()} against {where}{hosts}.")
    if start and end and start == end:
        parts.append(f"It happened on {_fmt_date(start, lang)}.")
    elif start and end:
        parts.append(f"They took place from {_fmt_date(start, lang)} to {_fmt_date(end, lang)}.")
    if extra.get("bounces"):
        size = extra.get("bounce_bytes", 0)
        mb = f" (about {round(size / 1_000_000):,} MB)" if size >= 1_000_000 else ""
        parts.append(
            f"{extra['bounces']:,} error notices for undeliverable mail{mb} "
            "reached the administrator."
        )
    if actual:
        parts.append(f"Damage: {_labels('damage', damage, lang).lower()}.")
    elif actual is None:
        parts.append("Whether there was actual damage is not known.")
    else:
        parts.append("The connections were refused and there was no actual damage.")
    return " ".join(parts)
