"""IPA's vocabularies for classifying reports, in Japanese and English, each value mapped
to an RSIT (Reference Security Incident Taxonomy) top class.

Codes are stable ASCII slugs; labels may change between taxonomy versions. The 1997 kinds
(mail bombing, SPAM relay, IMAP security-hole attack) sit beside the 2002-2006 names IPA
used in its statistics, so that reports from any period classify into one scheme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from todokede.errors import ReportError

TAXONOMY_VERSION = "ipa-1997+2006.1"

Lang = Literal["ja", "en"]
Vocabulary = Literal["method", "damage", "cause", "reporter_type", "discovery", "device", "target"]

RSIT_CLASSES = (
    "Abusive Content",
    "Malicious Code",
    "Information Gathering",
    "Intrusion Attempts",
    "Intrusions",
    "Availability",
    "Information Content Security",
    "Fraud",
    "Vulnerable",
    "Other",
    "Test",
)


@dataclass(frozen=True)
class Term:
    code: str
    ja: str
    en: str
    rsit: str

    def label(self, lang: Lang) -> str:
        return self.ja if lang == "ja" else self.en


def _vocab(*terms: Term) -> dict[str, Term]:
    for t in terms:
        assert t.rsit in RSIT_CLASSES, t
    return {t.code: t for t in terms}


# 届出種別 / 手口: several may apply to one report.
METHODS = _vocab(
    Term("access_probe", "アクセス形跡(未遂)", "Access probe (attempt)", "Intrusion Attempts"),
    Term(
        "security_hole_attack",
        "セキュリティホールアタック",
        "Security-hole attack",
        "Intrusion Attempts",
    ),
    Term("intrusion", "侵入", "Intrusion", "Intrusions"),
    Term("worm_probe", "ワーム形跡", "Worm probe", "Intrusion Attempts"),
    Term("worm_infection", "ワーム感染", "Worm infection", "Malicious Code"),
    Term("mail_relay", "メール不正中継", "Unauthorized mail relay", "Abusive Content"),
    Term("mail_bombing", "電子メール爆撃", "Mail bombing", "Availability"),
    Term("spam", "スパムメール", "Spam mail", "Abusive Content"),
    Term("address_spoofing", "アドレス詐称", "Source address spoofing", "Fraud"),
    Term("masquerading", "なりすまし", "Masquerading", "Fraud"),
    Term("malicious_code", "不正プログラム埋め込み", "Malicious code embedded", "Malicious Code"),
    Term("dos", "DoS", "Denial of service", "Availability"),
    Term("other", "その他", "Other", "Other"),
)

# 被害内容: several may apply.
DAMAGE = _vocab(
    Term("none", "被害なし", "No damage", "Other"),
    Term("file_alteration", "ファイル改ざん", "File alteration", "Information Content Security"),
    Term(
        "homepage_alteration",
        "ホームページ改ざん",
        "Home page alteration",
        "Information Content Security",
    ),
    Term("server_down", "サーバダウン", "Server down", "Availability"),
    Term("mail_relay", "メール不正中継", "Unauthorized mail relay", "Abusive Content"),
    Term(
        "password_theft",
        "パスワードファイル盗用",
        "Theft of password file",
        "Information Content Security",
    ),
    Term("service_lowering", "サービス低下", "Service lowering", "Availability"),
    Term("open_proxy", "オープンプロキシ", "Open proxy", "Vulnerable"),
    Term("unauthorized_account", "不正アカウント作成", "Unauthorized account", "Intrusions"),
    Term("stepping_stone", "踏み台", "Stepping stone", "Intrusions"),
    Term("other", "その他", "Other", "Other"),
)

# 原因
CAUSES = _vocab(
    Term(
        "password_management", "ID・パスワード管理不備", "Poor ID/password management", "Vulnerable"
    ),
    Term(
        "old_version",
        "古いバージョン・パッチ未導入",
        "Old version, patch not applied",
        "Vulnerable",
    ),
    Term("misconfiguration", "設定不備", "Misconfiguration", "Vulnerable"),
    Term("unknown", "不明", "Unknown", "Other"),
    Term("other", "その他", "Other", "Other"),
)

# 届出者種別: the 1997 form's 業務種別 and the 2019 categories.
REPORTER_TYPES = _vocab(
    Term("end_user", "エンドユーザ", "End user", "Other"),
    Term("system_admin", "システム管理者", "System administrator", "Other"),
    Term("network_provider", "ネットワークサービス事業者", "Network service provider", "Other"),
    Term("vendor", "HW・SWベンダ", "Hardware/software vendor", "Other"),
    Term("corporation", "法人", "Corporation", "Other"),
    Term("education_public", "教育・公的機関", "Educational or public body", "Other"),
    Term("individual", "個人", "Individual", "Other"),
    Term("other", "その他", "Other", "Other"),
)

# 発見契機
DISCOVERY = _vocab(
    Term(
        "own_monitoring",
        "自組織での監視(ログ・監視ツール)",
        "Own monitoring (logs, tools)",
        "Other",
    ),
    Term("service_anomaly", "サービスの異常", "Service anomaly noticed", "Other"),
    Term("external", "外部からの通知", "Told from outside", "Other"),
    Term("other", "その他", "Other", "Other"),
)

# 被害を受けた機器
DEVICES = _vocab(
    Term("mail_server", "メールサーバ", "Mail server", "Other"),
    Term("web_server", "ウェブサーバ", "Web server", "Other"),
    Term("dns_server", "DNSサーバ", "DNS server", "Other"),
    Term("file_server", "ファイルサーバ", "File server", "Other"),
    Term("other_server", "その他のサーバ", "Other server", "Other"),
    Term("pc", "PC", "PC", "Other"),
    Term("network_device", "ネットワーク機器", "Network device", "Other"),
    Term("other", "その他", "Other", "Other"),
)

# 対象サービス: the targeted services as public terms. What a reporter types in
# ``Report.targets`` is free text; only its mapping onto these codes goes public.
TARGETS = _vocab(
    Term("imap", "IMAPサーバ", "IMAP server", "Other"),
    Term("pop3", "POP3サーバ", "POP3 server", "Other"),
    Term("smtp", "電子メールサーバ", "Mail server", "Other"),
    Term("telnet", "telnetサーバ", "telnet server", "Other"),
    Term("ftp", "FTPサーバ", "FTP server", "Other"),
    Term("http", "ウェブサーバ", "Web server", "Other"),
    Term("ssh", "sshサーバ", "ssh server", "Other"),
    Term("finger", "fingerサーバ", "finger server", "Other"),
    Term("rsh", "rshサーバ", "rsh server", "Other"),
    Term("rlogin", "rloginサーバ", "rlogin server", "Other"),
    Term("dns", "DNSサーバ", "DNS server", "Other"),
    Term("other", "その他のサーバ", "Other server", "Other"),
)

# Daemon, program and service names as logs and reporters write them -> a target code.
SERVICE_ALIASES = {
    "imapd": "imap",
    "imap": "imap",
    "imap2": "imap",
    "imap4": "imap",
    "imaps": "imap",
    "dovecot": "imap",
    "ipop3d": "pop3",
    "pop3d": "pop3",
    "pop3": "pop3",
    "pop": "pop3",
    "sendmail": "smtp",
    "smtpd": "smtp",
    "smtp": "smtp",
    "postfix": "smtp",
    "mail": "smtp",
    "telnetd": "telnet",
    "telnet": "telnet",
    "ftpd": "ftp",
    "ftp": "ftp",
    "fingerd": "finger",
    "finger": "finger",
    "rshd": "rsh",
    "rsh": "rsh",
    "rlogind": "rlogin",
    "rlogin": "rlogin",
    "httpd": "http",
    "http": "http",
    "https": "http",
    "www": "http",
    "sshd": "ssh",
    "ssh": "ssh",
    "named": "dns",
    "dns": "dns",
    "domain": "dns",
}


def target_code(text: str) -> str:
    """The target code a reporter's service name stands for (``in.imapd`` -> ``imap``);
    ``other`` for anything not recognised, so no typed text becomes a public term."""
    name = text.strip().lower()
    if name in TARGETS:
        return name
    for part in (name.rsplit("/", 1)[0], name.rsplit("/", 1)[-1]):
        part = part.removeprefix("in.")
        if part in SERVICE_ALIASES:
            return SERVICE_ALIASES[part]
    return "other"


def target_codes(texts: list[str]) -> list[str]:
    """The target codes of a reporter's list of services, in order, each once."""
    return list(dict.fromkeys(target_code(t) for t in texts))


VOCABULARIES: dict[str, dict[str, Term]] = {
    "method": METHODS,
    "damage": DAMAGE,
    "cause": CAUSES,
    "reporter_type": REPORTER_TYPES,
    "discovery": DISCOVERY,
    "device": DEVICES,
    "target": TARGETS,
}

VOCABULARY_LABELS: dict[str, tuple[str, str]] = {
    "method": ("手口", "Method"),
    "damage": ("被害内容", "Damage"),
    "cause": ("原因", "Cause"),
    "reporter_type": ("届出者種別", "Reporter type"),
    "discovery": ("発見契機", "How it was found"),
    "device": ("被害を受けた機器", "Affected device"),
    "target": ("対象サービス", "Target service"),
}


def term(vocabulary: str, code: str) -> Term:
    """The term for ``code``; raises ReportError naming the vocabulary and the allowed codes."""
    terms = VOCABULARIES[vocabulary]
    found = terms.get(code)
    if found is None:
        allowed = ", ".join(terms)
        raise ReportError(f"unknown {vocabulary} {code!r} (allowed: {allowed})", field=vocabulary)
    return found


def label(vocabulary: str, code: str, lang: Lang) -> str:
    return term(vocabulary, code).label(lang)


def codes(vocabulary: str) -> list[str]:
    return list(VOCABULARIES[vocabulary])
