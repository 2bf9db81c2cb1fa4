"""IPA's filled-in text form: ``key: value`` lines, as reporters have mailed them since
1996, in Japanese or English. ``parse_form`` finds the answers; ``report_from_form`` turns
them into Report fields, matching the taxonomy's labels (and common phrases) and the
ways people write dates (1997/9/17, 1997年9月17日, 平成9年9月17日).

Keys are compared after NFKC normalisation and without spaces or brackets, so full-width
letters and colons, numbering ("1.", "(2)") and 【】 around keys all work.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from todokede.center import taxonomy

MAX_NARRATIVE = 20_000  # CleanText's limit
MAX_SHORT = 300  # Short's limit
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# form key (normalised: NFKC, casefolded, no spaces) -> field
_KEYS: dict[str, str] = {}


def _keys(target: str, *names: str) -> None:
    for name in names:
        _KEYS[_norm_key(name)] = target


def _norm_key(key: str) -> str:
    key = unicodedata.normalize("NFKC", key).casefold()
    return re.sub(r"[\s_\-・()（）「」【】\[\]]", "", key)


_keys("title", "届出概要", "概要", "件名", "表題", "title", "summary", "subject")
_keys("reporter.name", "届出者", "氏名", "名前", "担当者", "reporter", "name", "reporter name")
_keys(
    "reporter.organisation",
    "企業・組織名",
    "組織名",
    "組織",
    "会社名",
    "所属",
    "organisation",
    "organization",
    "company",
)
_keys("reporter.email", "e-mail", "email", "電子メール", "メールアドレス", "mail address")
_keys("reporter.phone", "tel", "電話", "電話番号", "phone", "telephone")
_keys("reporter.fax", "fax", "ファックス")
_keys("reporter.address", "住所", "所在地", "address")
_keys(
    "reporter.type",
    "届出者種別",
    "業務種別",
    "届出者の業務種別",
    "reporter type",
    "type of reporter",
)
_keys("received", "届出日", "届出年月日", "date reported", "report date", "received")
_keys("discovered", "発見年月日", "発見日", "発見日時", "date discovered", "discovered")
_keys("period", "発生期間", "期間", "period", "period of occurrence")
_keys("system.device", "被害を受けた機器", "機器", "device", "affected device")
_keys("system.role", "被害を受けたシステムの構成", "システム構成", "役割", "system", "role")
_keys("system.os", "os", "オペレーティングシステム", "operating system")
_keys("system.software", "ソフトウェア", "バージョン", "software", "software and versions")
_keys("network", "接続形態", "ネットワーク構成", "network", "network environment")
_keys(
    "discovery",
    "発見契機",
    "発見の方法",
    "発見の方法又は疑いを持った理由",
    "発見の方法または疑いを持った理由",
    "how found",
    "how it was found",
    "discovery",
)
_keys("discovery.tool", "発見ツール", "ツール", "tool", "detected by")
_keys("methods", "手口", "届出種別", "種別", "method", "methods", "type of incident")
_keys("damage", "被害内容", "被害", "damage")
_keys("actual_damage", "実被害", "実被害の有無", "actual damage")
_keys("causes", "原因", "cause", "causes")
_keys("sources", "攻撃元", "発信元", "送信元", "アクセス元", "source", "sources", "source hosts")
_keys("targets", "対象サービス", "サービス", "target", "targets", "target services", "service")
_keys("attempts", "回数", "件数", "通数", "attempts", "count", "number of attempts")
_keys(
    "narrative",
    "被害の状況",
    "状況",
    "内容",
    "詳細",
    "経緯",
    "narrative",
    "description",
    "details",
    "what happened",
)
_keys("route", "侵入経路", "route of intrusion")
_keys("countermeasures", "対策", "対処", "countermeasures", "countermeasure", "actions taken")

# "1. key: value", "(2) key：value", "・key: value", "【key】value", "[key] value"
_LINE = re.compile(
    r"^\s*(?:[0-9０-９]+[.．)）]\s*|[(（][0-9０-９]+[)）]\s*|[・■□◆●*\-]\s*)?"
    r"(?:[【\[](?P<bkey>[^】\]\n]{1,40})[】\]]\s*[:：]?|(?P<key>[^:：\n]{1,40}?)\s*[:：])"
    r"\s?(?P<value>.*)$"
)
_LONG = {"narrative", "countermeasures", "route", "discovery", "network"}
_YES = {"有", "あり", "有り", "はい", "yes", "y", "true", "actual", "○"}
_NO = {"無", "なし", "無し", "いいえ", "no", "n", "false", "potential", "×"}
# A stated "don't know" is an answer (実被害 unknown), not something to triage by hand.
_UNKNOWN = {"不明", "わからない", "分からない", "不詳", "unknown", "?", "？", "-"}
_SPLIT = re.compile(r"\s*(?:[,、，;；/／]|\s・\s|\n)\s*")
# Free phrases people write in the form, beside the exact labels.
_PHRASES: dict[str, dict[str, str]] = {
    "method": {
        "メール爆弾": "mail_bombing",
        "mail bomb": "mail_bombing",
        "不正中継": "mail_relay",
        "relay": "mail_relay",
        "spam": "spam",
        "スパム": "spam",
        "アクセス形跡": "access_probe",
        "probe": "access_probe",
        "侵入": "intrusion",
        "intrusion": "intrusion",
        "セキュリティホール": "security_hole_attack",
        "ワーム": "worm_probe",
        "dos": "dos",
    },
    "damage": {"なし": "none", "無": "none", "none": "none", "中継": "mail_relay"},
    "discovery": {
        "ログ": "own_monitoring",
        "log": "own_monitoring",
        "監視": "own_monitoring",
        "外部": "external",
        "通知": "external",
        "outside": "external",
        "異常": "service_anomaly",
    },
}


def clean(text: str, limit: int) -> str:
    text = _CONTROL.sub("", text.replace("\r\n", "\n"))
    return text[:limit]


def short(text: str) -> str:
    return clean(" ".join(text.split()), MAX_SHORT)


def parse_form(text: str) -> tuple[dict[str, str], list[str]]:
    """IPA-style ``key: value`` lines -> {field: value} and the lines that were not keys.

    A value continues on the following lines until the next recognised key, so a
    multi-line 被害の状況 stays whole. Keys are matched after NFKC normalisation, so
    full-width letters and colons work; unknown keys stay in the returned lines.
    """
    fields: dict[str, str] = {}
    rest: list[str] = []
    current: str | None = None
    for line in text.splitlines():
        m = _LINE.match(line)
        target = _KEYS.get(_norm_key(m.group("bkey") or m.group("key"))) if m else None
        if target is not None:
            current = target
            value = m.group("value").strip() if m else ""
            fields[target] = f"{fields[target]}\n{value}" if fields.get(target) else value
        elif current is not None and line.strip():
            fields[current] += "\n" + line.strip()
        elif current in _LONG and not line.strip():
            fields[current] += "\n"  # a paragraph break inside a long answer
        else:
            current = None
            rest.append(line)
    return {k: v.strip() for k, v in fields.items()}, rest


def _codes(vocabulary: str, value: str) -> tuple[list[str], list[str]]:
    """Codes named in ``value`` (labels, codes or common phrases) and the unknown parts."""
    index = {}
    for t in taxonomy.VOCABULARIES[vocabulary].values():
        for key in (t.code, t.ja, t.en):
            index[unicodedata.normalize("NFKC", key).casefold()] = t.code
    found: list[str] = []
    unknown: list[str] = []
    for part in _SPLIT.split(value):
        part = part.strip(" 　.。")
        if not part:
            continue
        key = unicodedata.normalize("NFKC", part).casefold()
        code = index.get(key)
        if code is None:
            code = next(
                (c for phrase, c in _PHRASES.get(vocabulary, {}).items() if phrase in key), None
            )
        if code is None:
            code = next((c for label, c in index.items() if len(label) > 2 and label in key), None)
        if code is None:
            unknown.append(part)
        elif code not in found:
            found.append(code)
    return found, unknown


_DATE = re.compile(
    r"(?P<y>\d{4}|\d{2}|平成\s*\d{1,2}|H\s*\d{1,2})\s*[年/.\-]\s*(?P<m>\d{1,2})\s*[月/.\-]\s*(?P<d>\d{1,2})"
)


def parse_date(value: str) -> date | None:
    """A date as people write it: 1997-09-17, 1997/9/17, 97/9/17, 1997年9月17日,
    平成9年9月17日, H9.9.17."""
    m = _DATE.search(unicodedata.normalize("NFKC", value))
    if not m:
        return None
    y = m.group("y").replace(" ", "")
    if not y.isdigit():  # 平成 (Heisei) 1 = 1989
        year = int(re.sub(r"\D", "", y)) + 1988
    elif len(y) == 2:  # 97/9/17: the scheme started in 1996
        year = int(y) + (1900 if int(y) >= 50 else 2000)
    else:
        year = int(y)
    try:
        return date(year, int(m.group("m")), int(m.group("d")))
    except ValueError:
        return None


def report_from_form(fields: dict[str, str], *, notes: list[str]) -> dict[str, Any]:
    """The Report fields a parsed form gives; what cannot be read goes to ``notes``."""
    out: dict[str, Any] = {}
    reporter: dict[str, Any] = {}
    system: dict[str, Any] = {}
    discovery: dict[str, Any] = {}
    extra_narrative: list[str] = []
    for key, value in fields.items():
        if not value:
            continue
        if key.startswith("reporter."):
            _reporter_field(reporter, key.removeprefix("reporter."), value, notes)
        elif key.startswith("system."):
            _system_field(system, key.removeprefix("system."), value)
        elif key == "discovery":
            codes, _ = _codes("discovery", value)
            if codes:
                discovery["how"] = codes[0]
            discovery["detail"] = clean(value, MAX_NARRATIVE)
        elif key == "discovery.tool":
            discovery["tool"] = short(value)
        elif key in ("methods", "damage", "causes"):
            vocabulary = {"methods": "method", "damage": "damage", "causes": "cause"}[key]
            codes, unknown = _codes(vocabulary, value)
            if unknown:
                codes = [*codes, "other"] if "other" not in codes else codes
                extra_narrative.append(f"{key}: {value}")
            out[key] = codes
        elif key == "route":
            extra_narrative.append(f"侵入経路: {value}")
        else:
            _report_field(out, key, value, notes)
    if extra_narrative:
        out["narrative"] = "\n\n".join(filter(None, [out.get("narrative"), *extra_narrative]))
    if reporter:
        out["reporter"] = reporter
    if system:
        out["systems"] = [system]
    if discovery:
        out["discovery"] = discovery
    return out


def _reporter_field(reporter: dict[str, Any], name: str, value: str, notes: list[str]) -> None:
    if name == "type":
        codes, _ = _codes("reporter_type", value)
        if codes:
            reporter["type"] = codes[0]
        else:
            notes.append(f"reporter type not understood: {value!r}")
    elif name in ("email", "phone", "fax"):  # full-width ＠ and digits are common
        reporter[name] = short(unicodedata.normalize("NFKC", value))
    else:
        reporter[name] = short(value)


def _system_field(system: dict[str, Any], name: str, value: str) -> None:
    if name == "device":
        codes, _ = _codes("device", value)
        system["device"] = codes[0] if codes else "other"
        if not codes:
            system.setdefault("role", short(value))
    elif name == "software":
        system["software"] = [short(s) for s in _SPLIT.split(value) if s.strip()]
    else:
        system[name] = short(value)


def _report_field(out: dict[str, Any], key: str, value: str, notes: list[str]) -> None:
    """A field of the report itself: dates, counts, hosts and its texts."""
    if key in ("received", "discovered"):
        day = parse_date(value)
        if day is None:
            notes.append(f"{key}: not a date: {value!r}")
        else:
            out[key] = day
    elif key == "period":
        days = [parse_date(p) for p in re.split(r"[〜～~]|から|to|\s-\s", value)]
        found = [d for d in days if d]
        if found:
            out["period"] = {"start": found[0], "end": found[-1] if len(found) > 1 else None}
        else:
            notes.append(f"period: no dates in {value!r}")
    elif key == "actual_damage":
        word = unicodedata.normalize("NFKC", value).casefold().strip(" 。.")
        if word in _YES or word.startswith(("有", "あり")) or re.match(r"yes\b", word):
            out["actual_damage"] = True
        elif word in _NO or word.startswith(("無", "なし")) or re.match(r"no\b", word):
            out["actual_damage"] = False
        elif word not in _UNKNOWN:
            notes.append(f"actual damage: neither yes nor no: {value!r}")
    elif key == "sources":
        value = unicodedata.normalize("NFKC", value)
        out["sources"] = [short(s) for s in re.split(r"[\s,、;]+", value) if s.strip()]
    elif key == "targets":
        out["targets"] = [short(s).lower() for s in _SPLIT.split(value) if s.strip()]
    elif key == "attempts":
        digits = re.search(r"\d[\d,]*", unicodedata.normalize("NFKC", value))
        if digits:
            out["attempts"] = int(digits.group().replace(",", ""))
        else:
            notes.append(f"attempts: no number in {value!r}")
    elif key == "title":
        out["title"] = short(value)
    else:  # narrative, network, countermeasures
        out[key] = clean(value, MAX_NARRATIVE)
