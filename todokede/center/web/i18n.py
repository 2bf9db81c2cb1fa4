"""Japanese and English for the center's pages: the message catalogue, language choice
(a cookie set by the switch beats Accept-Language) and dates in the reader's convention."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from starlette.requests import Request

Lang = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = ("ja", "en")
COOKIE = "todokede_lang"

# key -> (ja, en). Keys are short English slugs so templates read naturally.
MESSAGES: dict[str, tuple[str, str]] = {
    "site": ("不正アクセス届出センター", "Unauthorized Access Reporting Center"),
    "skip": ("本文へ移動", "Skip to content"),
    "home": ("ホーム", "Home"),
    "published": ("公表された月例報告", "Published monthly reports"),
    "statistics": ("統計", "Statistics"),
    "login": ("ログイン", "Sign in"),
    "logout": ("ログアウト", "Sign out"),
    "signed_in_as": ("ログイン中", "Signed in as"),
    "username": ("ユーザ名", "User name"),
    "password": ("パスワード", "Password"),
    "login_failed": (
        "ユーザ名またはパスワードが正しくありません。",
        "The user name or password is not correct.",
    ),
    "login_limited": (
        "ログインの失敗が続いたため、しばらく受け付けません。時間をおいて再度お試しください。",
        "Too many failed sign-ins. Please wait a few minutes and try again.",
    ),
    "language": ("言語", "Language"),
    "my_reports": ("自分の届出", "My reports"),
    "new_report": ("新しい届出", "New report"),
    "inbox": ("受付箱", "Inbox"),
    "dashboard": ("統計ダッシュボード", "Statistics dashboard"),
    "intro": (
        "コンピュータ不正アクセスの被害や形跡を見つけた方は、ここから届け出てください。"
        "届出は部分的でも、既に他の機関に送ったものでも受け付けます。後から分かったことは"
        "同じ届出への追加として送れます。",
        "If you have found unauthorized computer access, or traces of it, report it here. "
        "Partial reports and reports already sent elsewhere are welcome; later findings can "
        "be sent as additions to the same report.",
    ),
    "public_intro": (
        "センターは届出を分類・集計し、毎月その概要を公表しています。公表資料に個人情報は含まれません。",
        "The center classifies and counts the reports and publishes a summary every month. "
        "Publications contain no personal data.",
    ),
    "no_published": ("公表された報告はまだありません。", "Nothing has been published yet."),
    "month": ("月", "Month"),
    "month_report": ("{month}の届出状況", "Reports received in {month}"),
    "html": ("HTML", "HTML"),
    "pdf": ("PDF", "PDF"),
    "markdown": ("Markdown", "Markdown"),
    "reports_n": ("届出件数", "Reports"),
    "actual_damage": ("実被害", "Actual damage"),
    "n_actual": ("件数 (実被害)", "Reports (actual damage)"),
    "count": ("件数", "Count"),
    "stats_note": (
        "N (実被害 M): 届出件数と、そのうち実際に被害があった件数。1件の届出に複数の手口が"
        "あり得るため、手口別の件数の合計は届出件数と一致しません。",
        "N (actual damage M): reports, and of those the ones with actual damage. A report may "
        "name several methods, so the method counts do not add up to the report count.",
    ),
    "cases": ("事例", "Cases"),
    "received": ("届出年月日", "Received"),
    "summary": ("届出概要", "Summary"),
    "countermeasures": ("対策", "Countermeasures"),
    "status": ("状態", "Status"),
    "title": ("件名(届出概要)", "Title (summary)"),
    "title_help": (
        "何が起きたかを一行で。例: IMAPサーバへの不審なアクセス",
        "One line on what happened. Example: suspicious access attempts on the IMAP server",
    ),
    "report_language": ("届出の言語", "Language of the report"),
    "sec_reporter": ("1. 届出者", "1. Reporter"),
    "sec_reporter_help": (
        "連絡先はセンターからの問い合わせにだけ使い、公表しません。",
        "Contact details are used only for the center's questions and are never published.",
    ),
    "organisation": ("企業・組織名", "Organisation"),
    "name": ("氏名", "Name"),
    "email": ("E-mail", "E-mail"),
    "phone": ("TEL", "Phone"),
    "fax": ("FAX", "Fax"),
    "address": ("住所", "Address"),
    "reporter_type": ("業務種別", "Reporter type"),
    "sec_system": ("2. 被害を受けたシステム", "2. The affected system"),
    "device": ("被害を受けた機器", "Affected device"),
    "role": ("システムの役割", "Role of the system"),
    "role_help": ("例: メールサーバ、IMAPサーバ", "Example: mail server, IMAP server"),
    "os": ("OS", "Operating system"),
    "software": ("ソフトウェア", "Software"),
    "software_help": (
        "1行に1つ。例: sendmail 8.8.5",
        "One per line. Example: sendmail 8.8.5",
    ),
    "network": ("接続形態", "Network connection"),
    "network_help": (
        "インターネットとの接続のしかた(ファイアウォール、専用線など)。",
        "How the system is connected to the Internet (firewall, leased line, ...).",
    ),
    "sec_discovery": ("3. 発見", "3. Discovery"),
    "discovered": ("発見年月日", "Date discovered"),
    "period_start": ("発生期間(開始)", "Period: from"),
    "period_end": ("発生期間(終了)", "Period: to"),
    "how": ("発見契機", "How it was found"),
    "tool": ("使ったツール", "Tool used"),
    "tool_help": ("例: tcp_wrapper のログ", "Example: tcp_wrapper's log"),
    "detail": ("発見の方法又は疑いを持った理由", "How it was found, or why you suspected it"),
    "sec_what": ("4. 手口と被害", "4. What happened"),
    "method": ("手口", "Method"),
    "damage": ("被害内容", "Damage"),
    "cause": ("原因", "Cause"),
    "several": ("当てはまるものをすべて選んでください。", "Tick all that apply."),
    "actual_damage_q": ("実際の被害はありましたか", "Was there actual damage?"),
    "yes": ("はい", "Yes"),
    "no": ("いいえ", "No"),
    "unknown": ("不明", "Unknown"),
    "sources": ("攻撃元(ホスト名・アドレス)", "Sources (host names, addresses)"),
    "sources_help": ("1行に1つ。", "One per line."),
    "targets": ("対象サービス", "Targeted services"),
    "targets_help": ("カンマ区切り。例: imap, smtp", "Comma separated. Example: imap, smtp"),
    "attempts": ("回数(試行・メール通数)", "Number of attempts or messages"),
    "narrative": ("被害の状況", "What happened, in your words"),
    "sec_evidence": ("5. 証拠(ログ)", "5. Evidence (logs)"),
    "evidence_help": (
        "ログの抜粋を貼り付けるか、ファイルを添付してください。`todokede scan --json` の出力を"
        "貼り付けて「scan結果で入力」を押すと、フォームが埋まります。",
        "Paste a log excerpt or attach a file. Paste the output of `todokede scan --json` and "
        "press “Fill from scan” to fill the form.",
    ),
    "evidence_text": ("ログの抜粋", "Log excerpt"),
    "evidence_source": ("ログの出所(ファイル名など)", "Where the log is from (file name)"),
    "evidence_file": ("ログファイルを添付", "Attach a log file"),
    "scan_json": ("scan --json の出力", "Output of scan --json"),
    "fill_from_scan": ("scan結果で入力", "Fill from scan"),
    "filled_from_scan": (
        "scan の結果からフォームを埋めました。内容を確かめてから送信してください。",
        "The form has been filled from the scan. Check it before you send it.",
    ),
    "existing_evidence": ("添付済みの証拠", "Evidence already attached"),
    "sec_countermeasures": ("6. 対策", "6. Countermeasures"),
    "countermeasures_help": (
        "既に取った対策、取る予定の対策。",
        "What you have done, or plan to do, about it.",
    ),
    "save_draft": ("下書き保存", "Save draft"),
    "send": ("送信", "Send report"),
    "draft_saved": (
        "下書きを保存しました。後で続きを書けます。",
        "Draft saved. You can come back and finish it later.",
    ),
    "sent": ("届出を受け付けました。ありがとうございました。", "Report received. Thank you."),
    "form_errors": ("入力を確かめてください。", "Please check the form."),
    "edit": ("編集", "Edit"),
    "view": ("表示", "View"),
    "no_reports": ("届出はありません。", "No reports."),
    "addition": ("追加報告", "Addition"),
    "additions": ("追加報告", "Additions"),
    "addition_help": (
        "送信後に分かったことを、この届出への追加として送れます。",
        "Send what you found out later as an addition to this report.",
    ),
    "send_addition": ("追加報告を送信", "Send addition"),
    "addition_saved": ("追加報告を受け付けました。", "Addition received."),
    "report": ("届出", "Report"),
    "evidence": ("証拠", "Evidence"),
    "findings": ("検出結果", "Findings"),
    "kind": ("種類", "Kind"),
    "service": ("サービス", "Service"),
    "first_seen": ("初回", "First seen"),
    "last_seen": ("最終", "Last seen"),
    "outcome": ("結果", "Outcome"),
    "filters": ("絞り込み", "Filters"),
    "search": ("検索", "Search"),
    "search_help": (
        "件名、本文、攻撃元、証拠を検索します。",
        "Searches the title, narrative, sources and evidence.",
    ),
    "any": ("すべて", "Any"),
    "new_type": ("新しい手口", "New type"),
    "apply": ("絞り込む", "Apply"),
    "reset": ("解除", "Reset"),
    "results": ("件", "results"),
    "previous": ("前へ", "Previous"),
    "next": ("次へ", "Next"),
    "reporter": ("届出者", "Reporter"),
    "classification": ("分類", "Classification"),
    "classification_help": (
        "届出者の申告と異なる分類にするときはチェックを変えてください。",
        "Change the ticks to classify differently from what the reporter said.",
    ),
    "is_test": ("テスト届出(統計に含めない)", "Test report (left out of statistics)"),
    "duplicate_of": ("重複元の届出番号", "Duplicate of report no."),
    "incident_id": ("インシデント番号", "Incident no."),
    "new_type_auto": ("自動判定", "Decide automatically"),
    "new_type_reason": ("新しい手口と判断した理由", "Why it is (not) a new type"),
    "published_title": ("公表時の見出し", "Heading in the publication"),
    "published_narrative": ("公表する概要(日本語)", "Public summary (Japanese)"),
    "published_narrative_en": ("公表する概要(英語)", "Public summary (English)"),
    "public_preview": (
        "公表文の案(分類と件数から作成)",
        "Drafted public text (from the codes and counts)",
    ),
    "public_preview_help": (
        "見出しと概要を空欄にすると、承認するまでは分類の名称だけを、承認後はこの案を公表します。"
        "届出者が書いた文章は公表しません。",
        "With the heading and summary left empty, the publication shows only the category "
        "names until you approve, then this draft. Nothing the reporter wrote is published.",
    ),
    "public_now": ("現在の公表文", "Public text now"),
    "public_draft_approved": ("この案を承認する", "Approve this draft"),
    "target_codes": ("対象サービス(公表する分類)", "Target services (public categories)"),
    "actual_yes": ("うち実被害あり", "With actual damage"),
    "actual_no": ("うち実被害なし", "Without actual damage"),
    "actual_unknown": ("うち実被害不明", "Actual damage unknown"),
    "note": ("内部メモ", "Internal note"),
    "save": ("保存", "Save"),
    "saved": ("保存しました。", "Saved."),
    "audit": ("監査記録", "Audit trail"),
    "when": ("日時", "When"),
    "who": ("実行者", "Who"),
    "action": ("操作", "Action"),
    "links": ("関連", "Links"),
    "duplicates_here": ("この届出の重複", "Duplicates of this report"),
    "new_incident": ("新しいインシデント", "New incident"),
    "new_incident_help": (
        "この届出を最初の届出として、インシデント(起きた事象)を作ります。他の届出はインシデント番号で結び付けます。",
        "Opens an incident (what happened) with this report as its first; link other reports "
        "to it by its number.",
    ),
    "create": ("作成", "Create"),
    "same_incident": ("同じインシデントの届出", "Reports of the same incident"),
    "publish": ("月例報告を公表", "Publish a month"),
    "publish_help": (
        "月を選ぶと、公表される内容そのものをプレビューします。確認してから公表します。"
        "締まった過去の月だけが公表でき、公表した内容は再公表するまで変わりません。"
        "個人情報は公表されません。",
        "Choose a month to preview exactly what would be published, then confirm. Only "
        "closed months in the past can be published; what is published stays as it is until "
        "the month is published again. No personal data is published.",
    ),
    "published_ok": ("公表しました。", "Published."),
    "republished_ok": ("改訂版を公表しました。", "Published as a new revision."),
    "withdrawn_ok": ("公表を取り下げました。", "The publication was withdrawn."),
    "preview_button": ("プレビュー", "Preview"),
    "preview": ("公表前の確認", "Preview before publishing"),
    "preview_help": (
        "以下が公表される内容そのものです(公開ページ、月例報告の各形式)。確認のうえ公表してください。",
        "Below is exactly what will be published (the public page and the monthly report in "
        "every format). Check it, then publish.",
    ),
    "cannot_publish": ("この月は公表できません", "This month cannot be published"),
    "confirm_publish": (
        "プレビューを確認しました。この内容を第{n}版として公表します",
        "I have checked the preview: publish it as revision {n}",
    ),
    "publish_now": ("公表する", "Publish"),
    "confirm_needed": ("確認のチェックを入れてください。", "Tick the confirmation to go ahead."),
    "preview_changed": (
        "プレビューの後にこの月の内容が変わりました。新しいプレビューを確認してください。",
        "The month changed after the preview: check the new preview.",
    ),
    "current_revision": ("現在の公表", "Published now"),
    "unchanged": (
        "現在の版から変更はありません(公表すると同じ内容の新しい版になります)。",
        "Nothing has changed since the current revision (publishing makes an identical new one).",
    ),
    "revision_line": ("第{n}版 · {date}公表", "Revision {n}, published {date}"),
    "withdrawn": ("取り下げ", "Withdrawn"),
    "withdrawn_text": (
        "この月の公表は取り下げられました。",
        "The publication of this month has been withdrawn.",
    ),
    "withdrawn_months": ("取り下げられた月", "Withdrawn months"),
    "withdrawn_heading": ("公表の取り下げ", "Publication withdrawn"),
    "withdraw": ("公表を取り下げる", "Withdraw the publication"),
    "withdraw_help": (
        "公開ページには取り下げの告知(日付と理由)が表示されます。再び公表すると新しい版になります。",
        "The public pages then show a withdrawal notice (date and reason). Publishing the "
        "month again makes a new revision.",
    ),
    "withdraw_reason": ("理由(公開されます)", "Reason (shown publicly)"),
    "withdraw_confirm": ("この月の公表を取り下げます", "I confirm: withdraw this month"),
    "by_month": ("月別件数", "Reports per month"),
    "by_method": ("手口別", "By method"),
    "by_damage": ("被害内容別", "By damage"),
    "by_cause": ("原因別", "By cause"),
    "period": ("発生期間", "Period"),
    "systems": ("被害を受けたシステム", "Affected systems"),
    "discovery": ("発見", "Discovery"),
    "not_found": ("見つかりません。", "Not found."),
    "forbidden": ("この操作は許可されていません。", "You are not allowed to do this."),
    "login_required": ("ログインしてください。", "Sign in first."),
    "conflict": (
        "記録されている内容と矛盾するため受け付けられません。",
        "This contradicts what is on record and cannot be accepted.",
    ),
    "unavailable": (
        "一時的に利用できません。しばらくしてからもう一度お試しください。",
        "Temporarily unavailable: try again later.",
    ),
    "csrf_failed": (
        "フォームの有効期限が切れたか、別のサイトから送られました。ページを読み直してください。",
        "The form has expired or was sent from another site. Reload the page and try again.",
    ),
    "bad_input": ("入力に誤りがあります。", "Some input is not valid."),
    "empty_report": (
        "何が起きたかが書かれていません。少なくとも件名か被害の状況を記入してください。",
        "Nothing says what happened: fill in at least the title or what happened.",
    ),
    "error": ("エラー", "Error"),
    "back": ("戻る", "Back"),
    "not_available": (
        "この形式はこのサーバでは利用できません。",
        "This format is not available on this server.",
    ),
    "not_draft": (
        "この届出は送信済みのため変更できません。追加報告を送ってください。",
        "This report has been sent and can no longer be changed; send an addition instead.",
    ),
    "draft_no_addition": (
        "下書きには追加報告を付けられません。下書きを編集してください。",
        "A draft takes no additions; edit the draft instead.",
    ),
    "page_not_found": ("ページが見つかりません", "Page not found"),
    "page_not_found_text": (
        "お探しのページは存在しないか、移動しました。",
        "The page you asked for does not exist or has moved.",
    ),
    "method_not_allowed": (
        "このページはその方法では利用できません。",
        "This page cannot be used that way.",
    ),
    "internal_error": (
        "サーバ内部でエラーが発生しました。記録しましたので、時間をおいて再度お試しください。",
        "Something went wrong on the server. It has been logged; please try again later.",
    ),
    "case_no": ("届出番号", "Report no."),
    "owner": ("届出アカウント", "Submitted by"),
    "draft_note": (
        "下書きはセンターには届いていません。送信して初めて受け付けられます。",
        "A draft has not reached the center yet: it is received only when you send it.",
    ),
    "remove": ("削除", "Remove"),
    "none": ("なし", "None"),
    "st_draft": ("下書き", "Draft"),
    "st_received": ("受付", "Received"),
    "st_triaged": ("分類済み", "Triaged"),
    "st_published": ("公表済み", "Published"),
    "st_closed": ("完了", "Closed"),
    "st_rejected": ("却下", "Rejected"),
    "chart_alt": (
        "グラフ(同じ数値を表にも示しています)",
        "Chart (the same figures are in the table)",
    ),
}


def t(key: str, lang: Lang) -> str:
    """The message for ``key``; an unknown key shows itself so a gap is visible, not fatal."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "ja" else pair[1]


def negotiate(request: Request) -> Lang:
    """The reader's language: the switch's cookie, else the best of Accept-Language, else ja."""
    chosen = request.cookies.get(COOKIE)
    if chosen == "en":
        return "en"
    if chosen == "ja":
        return "ja"
    return from_accept_language(request.headers.get("accept-language", ""))


def from_accept_language(header: str) -> Lang:
    best: tuple[float, int, Lang] | None = None
    for position, part in enumerate(header.split(",")[:30]):
        fields = part.strip().split(";")
        tag = fields[0].strip().lower()
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.split("-")[0]
        if primary in LANGS and q > 0:
            candidate: tuple[float, int, Lang] = (q, -position, "en" if primary == "en" else "ja")
            if best is None or candidate > best:
                best = candidate
    return best[2] if best else "ja"


_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(value: date | datetime | None, lang: Lang) -> str:
    """1997年9月17日 / 17 Sep 1997; datetimes add the time (UTC as stored)."""
    if value is None:
        return ""
    if lang == "ja":
        text = f"{value.year}年{value.month}月{value.day}日"
    else:
        text = f"{value.day} {_MONTHS_EN[value.month - 1]} {value.year}"
    if isinstance(value, datetime):
        text += f" {value:%H:%M}"
    return text


def format_month(month: str, lang: Lang) -> str:
    """'1997-09' as 1997年9月 / Sep 1997."""
    try:
        year, mon = (int(x) for x in month.split("-"))
    except ValueError:
        return month
    if not 1 <= mon <= 12:
        return month
    return f"{year}年{mon}月" if lang == "ja" else f"{_MONTHS_EN[mon - 1]} {year}"
