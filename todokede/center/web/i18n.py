"""Japanese and English for the center's pages: the message catalogue, language choice
(a cookie set by the switch beats Accept-Language) and dates in the reader's convention."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from starlette.requests import Request

from todokede.center.web.messages import MESSAGES as MESSAGES

Lang = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = ("ja", "en")
COOKIE = "todokede_lang"


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
