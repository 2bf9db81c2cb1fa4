"""Countermeasures: a small knowledge base of advice keyed by taxonomy values, in Japanese
and English, each with its references (JPCERT/CC advisories and technical documents).

An advisory applies to a report when one of the report's effective methods is in
``methods`` and, if ``targets`` is not empty, one of its target services is too. The most
specific advisories (those naming targets) come first, so an IMAP attack gets the IMAP
advice rather than the generic "keep software current" one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from todokede.center.taxonomy import Lang


@dataclass(frozen=True)
class Reference:
    id: str  # "JPCERT/CC 97-0004"
    url: str
    title_ja: str
    title_en: str

    def title(self, lang: Lang) -> str:
        return self.title_ja if lang == "ja" else self.title_en


@dataclass(frozen=True)
class Advisory:
    key: str
    methods: frozenset[str]
    targets: frozenset[str]
    case_ja: str  # the kind of case, as a heading: "IMAPセキュリティホールアタック"
    case_en: str
    text_ja: tuple[str, ...]  # paragraphs
    text_en: tuple[str, ...]
    short_ja: str  # one line for the attachment's 対策 column
    short_en: str
    references: tuple[Reference, ...] = ()

    def case(self, lang: Lang) -> str:
        return self.case_ja if lang == "ja" else self.case_en

    def text(self, lang: Lang) -> tuple[str, ...]:
        return self.text_ja if lang == "ja" else self.text_en

    def short(self, lang: Lang) -> str:
        return self.short_ja if lang == "ja" else self.short_en

    def applies(self, methods: Iterable[str], targets: Iterable[str]) -> bool:
        if not self.methods & set(methods):
            return False
        return not self.targets or bool(self.targets & set(targets))


JPCERT_97_0004 = Reference(
    "JPCERT/CC 97-0004",
    "http://www.jpcert.or.jp/info/97-0004/",
    "IMAP サーバプログラムの脆弱性",
    "Vulnerability in IMAP server programs",
)
JPCERT_97_0001 = Reference(
    "JPCERT/CC 97-0001",
    "http://www.jpcert.or.jp/tech/97-0001/",
    "電子メールの不正中継に関する技術メモ",
    "Technical memo on unauthorized mail relaying",
)

ADVISORIES: tuple[Advisory, ...] = (
    Advisory(
        key="imap_hole",
        methods=frozenset({"security_hole_attack", "access_probe", "intrusion"}),
        targets=frozenset({"imap"}),
        case_ja="IMAPセキュリティホールアタック",
        case_en="IMAP security-hole attack",
        text_ja=(
            "IMAPのセキュリティホールを利用すると、IMAPサーバへアクセスしたリモートホストから"
            "システム管理者の権限で任意のコマンドを実行されたり、任意のプログラムを送り込まれた上で"
            "それらを実行される可能性がある。IMAPを利用している者はIMAPのバージョンが"
            "IMAP4rev1以降のものであるかどうか確認し、そうでない場合は対応をとっていただきたい。",
            "tcp_wrapperのような監視用ソフトウェアを導入し、IMAPなど外部から利用する必要のない"
            "サービスへの接続を拒否することは不正アクセス対策として有効であるので、導入をお薦めする。",
        ),
        text_en=(
            "Through the IMAP security hole, a remote host that reaches the IMAP server may run "
            "any command with administrator privileges, or send in any program and run it. "
            "Those who use IMAP should check whether their IMAP server is IMAP4rev1 or later "
            "and act if it is not.",
            "Installing monitoring software such as tcp_wrapper, and refusing outside "
            "connections to services such as IMAP that need not be reachable from outside, is "
            "an effective countermeasure against unauthorized access and is recommended.",
        ),
        short_ja="IMAP4rev1以降への更新、tcp_wrapper等による接続制限",
        short_en="Upgrade to IMAP4rev1 or later; restrict connections with tcp_wrapper",
        references=(JPCERT_97_0004,),
    ),
    Advisory(
        key="mail_relay",
        methods=frozenset({"mail_relay", "spam"}),
        targets=frozenset(),
        case_ja="SPAM中継",
        case_en="SPAM relay",
        text_ja=(
            "SPAM(インターネット上で同一メッセージの大量のコピーを電子メールやネットニュースを"
            "使用して送る行為)や電子メール爆撃では、他の電子メールサーバを中継に使用することがある。"
            "不正な中継に利用されると、大量の電子メールの処理で電子メールサーバの応答が低下し、"
            "配送できなかった電子メールのエラー通知が管理者宛に大量に届く。",
            "電子メールの不正な中継に利用されないようにする為、電子メールの不要な中継は許可しないように"
            "電子メール配送プログラムを設定していただきたい。",
        ),
        text_en=(
            "SPAM (sending many copies of one message by e-mail or net news) and mail bombing "
            "may use other mail servers as relays. A server misused as a relay slows down under "
            "the load and its administrator receives a flood of error notices for mail that "
            "could not be delivered.",
            "To avoid being used as an unauthorized relay, configure the mail delivery program "
            "not to permit unnecessary relaying.",
        ),
        short_ja="不要な中継を許可しないよう電子メール配送プログラムを設定",
        short_en="Configure the mail delivery program to refuse unnecessary relaying",
        references=(JPCERT_97_0001,),
    ),
    Advisory(
        key="mail_bombing",
        methods=frozenset({"mail_bombing"}),
        targets=frozenset(),
        case_ja="電子メール爆撃",
        case_en="Mail bombing",
        text_ja=(
            "電子メール爆撃(同一の宛先に大量の電子メールを送りつける行為)を受けた場合は、"
            "送信元からの電子メールを受信しないよう電子メールサーバやルータで遮断し、"
            "ディスク容量を監視していただきたい。電子メール爆撃では他の電子メールサーバを中継に"
            "使用することがあるので、自らの電子メールサーバが不正な中継に利用されないよう設定して"
            "いただきたい。",
        ),
        text_en=(
            "Under mail bombing (a flood of mail sent to one address), block mail from the "
            "sender at the mail server or router and watch disk space. Mail bombers often "
            "relay through other mail servers: make sure your own server cannot be used as "
            "a relay.",
        ),
        short_ja="送信元からの電子メールを遮断、不要な中継の禁止",
        short_en="Block mail from the sender; refuse unnecessary relaying",
        references=(JPCERT_97_0001,),
    ),
    Advisory(
        key="password",
        methods=frozenset({"intrusion", "masquerading"}),
        targets=frozenset(),
        case_ja="侵入",
        case_en="Intrusion",
        text_ja=(
            "推測されにくいパスワードを使用し、定期的に変更していただきたい。"
            "使用していないアカウントは削除し、パスワードファイルを読まれないよう"
            "シャドウパスワードを使用していただきたい。",
        ),
        text_en=(
            "Use passwords that are hard to guess and change them regularly. Remove unused "
            "accounts and use shadow passwords so that the password file cannot be read.",
        ),
        short_ja="パスワード管理の徹底、不要アカウントの削除",
        short_en="Manage passwords strictly; remove unused accounts",
    ),
    Advisory(
        key="security_hole",
        methods=frozenset({"security_hole_attack", "malicious_code", "worm_infection"}),
        targets=frozenset(),
        case_ja="セキュリティホールアタック",
        case_en="Security-hole attack",
        text_ja=(
            "ソフトウェアは最新のバージョンを使用し、ベンダや JPCERT/CC の公開するパッチを"
            "速やかに適用していただきたい。",
        ),
        text_en=(
            "Run current versions of software and apply the patches published by vendors and "
            "JPCERT/CC promptly.",
        ),
        short_ja="最新版への更新、パッチの適用",
        short_en="Upgrade; apply patches",
    ),
    Advisory(
        key="monitoring",
        methods=frozenset({"access_probe", "worm_probe", "address_spoofing", "dos", "other"}),
        targets=frozenset(),
        case_ja="アクセス形跡",
        case_en="Access probe",
        text_ja=(
            "tcp_wrapperのような監視用ソフトウェアを導入してログを定期的に確認し、"
            "外部から利用する必要のないサービスへの接続は拒否していただきたい。",
        ),
        text_en=(
            "Install monitoring software such as tcp_wrapper, read its logs regularly, and "
            "refuse outside connections to services that need not be reachable from outside.",
        ),
        short_ja="監視用ソフトウェアの導入、不要なサービスへの接続拒否",
        short_en="Monitor with tcp_wrapper; refuse unneeded services",
    ),
)

BY_KEY: dict[str, Advisory] = {a.key: a for a in ADVISORIES}


def _specificity(advisory: Advisory) -> int:
    return 0 if advisory.targets else 1


def advisories_for(methods: Iterable[str], targets: Iterable[str]) -> list[Advisory]:
    """Every advisory that applies, the most specific first."""
    methods, targets = list(methods), list(targets)
    found = [a for a in ADVISORIES if a.applies(methods, targets)]
    return sorted(found, key=_specificity)


def advisory_for(methods: Iterable[str], targets: Iterable[str]) -> Advisory | None:
    """The one advisory that fits best, or None."""
    found = advisories_for(methods, targets)
    return found[0] if found else None
