"""The public text of a case: its heading and narrative as every public view shows them.

The analyst's own text in that language, else the text drafted from the codes, counts and
dates once the analyst approved it, else the labels of the codes alone. Never anything the
reporter wrote.
"""

from __future__ import annotations

from todokede.center.intake.draft import _labels, _title, describe
from todokede.center.intake.schema import StoredReport
from todokede.center.taxonomy import Lang


def drafted_title(stored: StoredReport, lang: Lang) -> str:
    """The heading drafted from the codes and counts (what the analyst may approve)."""
    return _title(stored.effective_methods(), stored.effective_targets(), stored.report.attempts,
                  lang)  # fmt: skip


def drafted_narrative(stored: StoredReport, lang: Lang) -> str:
    """The narrative drafted from the codes, counts and dates (what the analyst may approve)."""
    r = stored.report
    return describe(
        methods=stored.effective_methods(),
        damage=stored.effective_damage(),
        targets=stored.effective_targets(),
        attempts=r.attempts,
        sources=len(r.sources),
        period=r.period,
        tool=r.discovery.tool if r.discovery else None,
        actual=stored.effective_actual_damage(),
        lang=lang,
    )


def terms_title(stored: StoredReport, lang: Lang) -> str:
    """The heading from the codes alone (no counts): public before any approval."""
    return _title(stored.effective_methods(), stored.effective_targets(), None, lang)


def terms_narrative(stored: StoredReport, lang: Lang) -> str:
    """The case as its taxonomy labels: public before the analyst approves a draft."""
    ja = lang == "ja"
    rows = [
        ("手口" if ja else "Method", "method", stored.effective_methods()),
        ("対象" if ja else "Target", "target", stored.effective_targets()),
        ("被害内容" if ja else "Damage", "damage", stored.effective_damage()),
    ]
    parts = [f"{name}: {_labels(vocab, codes, lang)}" for name, vocab, codes in rows if codes]
    actual = stored.effective_actual_damage()
    word = {True: ("あり", "yes"), False: ("なし", "no"), None: ("不明", "unknown")}[actual]
    parts.append(f"実被害: {word[0]}" if ja else f"Actual damage: {word[1]}")
    return "。".join(parts) + "。" if ja else ". ".join(parts) + "."


def public_title(stored: StoredReport, lang: Lang) -> str:
    """The case's heading: the analyst's title in that language, else the drafted one once
    approved, else one from the codes alone. Never the reporter's words."""
    t = stored.triage
    chosen = t.published_title if lang == "ja" else t.published_title_en
    if chosen:
        return chosen
    return drafted_title(stored, lang) if t.public_draft_approved else terms_title(stored, lang)


def public_narrative(stored: StoredReport, lang: Lang) -> str:
    """The analyst's edited narrative in that language, else the drafted one once approved,
    else the codes' labels."""
    t = stored.triage
    chosen = t.published_narrative if lang == "ja" else t.published_narrative_en
    if chosen:
        return chosen
    if t.public_draft_approved:
        return drafted_narrative(stored, lang)
    return terms_narrative(stored, lang)
