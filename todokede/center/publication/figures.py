"""Figures drawn from a report (図1, 図2, ...): who reached what, through which guard.

- a guarded service: outside hosts -> tcp_wrapper -> IMAP server (refused: a red cross);
- a mail relay: spam source -> the abused mail server -> many recipients, and the bounces
  to root below it;
- a mail bomb: sender -> mail server -> one recipient, with the message count;
- otherwise: outside hosts -> the target server.

The SVG is built by hand (a handful of boxes and arrows), so it is small, crisp in the PDF
and readable offline; every label is escaped. Each figure also has a one-line text form
for the Markdown publication and for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from todokede.center import taxonomy
from todokede.center.intake.draft import known_tool, lower_first
from todokede.center.intake.schema import StoredReport
from todokede.center.taxonomy import Lang

FONT = "'Noto Sans CJK JP', 'IPAexGothic', 'IPAGothic', sans-serif"
WIDTH = 640
BOX_W, BOX_H = 150, 54


@dataclass(frozen=True)
class Node:
    label: str
    sub: str = ""


@dataclass(frozen=True)
class Edge:
    label: str = ""
    blocked: bool = False
    dashed: bool = False


@dataclass(frozen=True)
class Figure:
    svg: str
    text: str  # "outside hosts → tcp_wrapper ✕ → IMAP server"
    caption_ja: str
    caption_en: str

    def caption(self, lang: Lang) -> str:
        return self.caption_ja if lang == "ja" else self.caption_en


def _box(x: float, y: float, node: Node, fill: str) -> str:
    cx = x + BOX_W / 2
    out = [
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="8" '
        f'fill="{fill}" stroke="#1f4e79" stroke-width="1.5"/>'
    ]
    if node.sub:
        out.append(_text(cx, y + 23, node.label, 13, bold=True))
        out.append(_text(cx, y + 41, node.sub, 11))
    else:
        out.append(_text(cx, y + 32, node.label, 13, bold=True))
    return "".join(out)


def _text(
    x: float, y: float, value: str, size: int, *, bold: bool = False, fill: str = "#111"
) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" text-anchor="middle" '
        f'font-family="{FONT}" fill="{fill}"{weight}>{escape(value)}</text>'
    )


def _arrow(x1: float, y1: float, x2: float, y2: float, edge: Edge) -> str:
    dash = ' stroke-dasharray="6 4"' if edge.dashed else ""
    out = [
        f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" '
        f'stroke="#333" stroke-width="2"{dash}/>'
    ]
    # The head as a polygon (renderers differ on <marker>).
    if y1 == y2:
        head = f"{x2 - 10:.0f},{y2 - 5:.0f} {x2 - 10:.0f},{y2 + 5:.0f}"
    else:
        head = f"{x2 - 5:.0f},{y2 - 10:.0f} {x2 + 5:.0f},{y2 - 10:.0f}"
    out.append(f'<polygon points="{x2:.0f},{y2:.0f} {head}" fill="#333"/>')
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    if edge.label:
        if y1 == y2:
            lift = 14 if edge.blocked else 8  # clear of the cross
            out.append(_text(mx, my - lift, edge.label, 11, fill="#1f4e79"))
        else:
            out.append(
                f'<text x="{mx + 8:.0f}" y="{my + 4:.0f}" font-size="11" font-family="{FONT}" '
                f'fill="#1f4e79">{escape(edge.label)}</text>'
            )
    if edge.blocked:
        out.append(
            f'<path d="M{mx - 9:.0f},{my - 9:.0f} L{mx + 9:.0f},{my + 9:.0f} '
            f'M{mx + 9:.0f},{my - 9:.0f} L{mx - 9:.0f},{my + 9:.0f}" '
            'stroke="#c00000" stroke-width="4"/>'
        )
    return "".join(out)


def draw(
    nodes: list[Node], edges: list[Edge], branch: tuple[int, Edge, Node] | None, title: str
) -> str:
    """A row of boxes joined by arrows, with an optional box below one of them."""
    n = len(nodes)
    gap = (WIDTH - 20 - n * BOX_W) / max(n - 1, 1)
    y = 34
    height = 120 if branch is None else 220
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img"><title>{escape(title)}</title>'
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>'
    ]
    xs = [10 + i * (BOX_W + gap) for i in range(n)]
    for i, node in enumerate(nodes):
        parts.append(_box(xs[i], y, node, "#eef4fb"))
    for i, edge in enumerate(edges):
        parts.append(_arrow(xs[i] + BOX_W + 2, y + BOX_H / 2, xs[i + 1] - 2, y + BOX_H / 2, edge))
    if branch is not None:
        at, edge, node = branch
        bx, by = xs[at], y + BOX_H + 70
        parts.append(_arrow(bx + BOX_W / 2, y + BOX_H + 2, bx + BOX_W / 2, by - 2, edge))
        parts.append(_box(bx, by, node, "#fbeeee"))
    parts.append("</svg>")
    return "".join(parts)


def _bounce_bytes(report: StoredReport) -> int:
    total = 0
    for ev in report.report.evidence:
        data = ev.data or {}
        if data.get("kind") == "bounce-storm":
            details = data.get("details") or {}
            for key in ("bytes", "total_bytes", "size"):
                value = details.get(key) if isinstance(details, dict) else None
                if isinstance(value, int) and not isinstance(value, bool):
                    total += value
                    break
    return total


def figure_for(report: StoredReport, lang: Lang) -> Figure:
    """The figure that tells this report's case."""
    methods = set(report.effective_methods())
    if "mail_relay" in methods or "spam" in methods:
        return _relay_figure(report, lang)
    # Public labels only: the target code's, never the service as the reporter wrote it.
    targets = report.effective_targets()
    if targets:
        server_ja = taxonomy.label("target", targets[0], "ja")
        server_en = taxonomy.label("target", targets[0], "en")
    else:
        server_ja, server_en = "サーバ", "Server"
    server = server_ja if lang == "ja" else server_en
    if "mail_bombing" in methods:
        return _bombing_figure(report.report.attempts, server, lang)
    return _attempts_figure(report, server, lower_first(server_en), lang)


def _relay_figure(report: StoredReport, lang: Lang) -> Figure:
    ja = lang == "ja"
    count = report.report.attempts
    size = _bounce_bytes(report)
    nodes = [
        Node(
            "SPAM送信元" if ja else "SPAM source",
            "外部のプロバイダ" if ja else "outside provider",
        ),
        Node(
            "電子メールサーバ" if ja else "Mail server",
            "中継に悪用" if ja else "abused as relay",
        ),
        Node("多数の受信者" if ja else "Many recipients", "送付先" if ja else "addressees"),
    ]
    relayed = f"{count:,}通" if ja and count else (f"{count:,} messages" if count else "")
    edges = [Edge(relayed), Edge("中継" if ja else "relayed")]
    mb = (
        f" 約{round(size / 1e6):,}MB"
        if ja and size >= 1e6
        else (f" ~{round(size / 1e6):,} MB" if size >= 1e6 else "")
    )
    branch = (
        1,
        Edge(("エラー通知" if ja else "bounces") + mb, dashed=True),
        Node("root", "システム管理者宛" if ja else "administrator"),
    )
    text = " → ".join(n.label for n in nodes) + (
        f"; エラー通知{mb} → root" if ja else f"; bounces{mb} → root"
    )
    title = "SPAM中継" if ja else "SPAM relay"
    return Figure(draw(nodes, edges, branch, title), text, "SPAM中継の概要", "The SPAM relay")


def _bombing_figure(count: int | None, server: str, lang: Lang) -> Figure:
    ja = lang == "ja"
    nodes = [
        Node("送信者" if ja else "Sender"),
        Node(server),
        Node("受信者" if ja else "Recipient", "1名" if ja else "one address"),
    ]
    amount = (f"{count:,}通" if ja else f"{count:,} messages") if count else ""
    text = " → ".join(n.label for n in nodes) + (f"({amount})" if amount else "")
    title = "電子メール爆撃" if ja else "Mail bombing"
    return Figure(
        draw(nodes, [Edge(amount), Edge(amount)], None, title),
        text,
        title + ("の概要" if ja else ""),
        title,
    )


def _attempts_figure(report: StoredReport, server: str, server_en: str, lang: Lang) -> Figure:
    """Outside hosts trying a server, through tcp_wrapper when it was what saw them."""
    ja = lang == "ja"
    r = report.report
    count = r.attempts
    tool = known_tool(r.discovery.tool if r.discovery else None)
    refused = report.effective_actual_damage() is False
    outside = Node(
        "外部ホスト" if ja else "Outside hosts", "見ず知らずのホスト" if ja else "unknown hosts"
    )
    tries = (f"{count:,}回" if ja else f"{count:,} attempts") if count else ""
    if tool == "tcp_wrapper":
        guard = Node("tcp_wrapper", "接続を監視・規制" if ja else "checks connections")
        edges = [
            Edge(tries),
            Edge("拒否" if ja and refused else ("refused" if refused else ""), blocked=refused),
        ]
        nodes = [outside, guard, Node(server)]
        text = f"{outside.label} → tcp_wrapper{' ✕' if refused else ''} → {server}"
    else:
        nodes = [outside, Node(server)]
        edges = [Edge(tries, blocked=refused)]
        text = f"{outside.label} → {server}"
    title = f"{server}へのアクセスの試み" if ja else f"Attempts on the {server_en}"
    caption_ja = f"{server}へのアクセスの試み"
    caption_en = f"Attempts on the {server_en}"
    return Figure(draw(nodes, edges, None, title), text, caption_ja, caption_en)
