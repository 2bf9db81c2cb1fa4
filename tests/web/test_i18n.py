from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.center.web import i18n


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("", "ja"),
        ("ja", "ja"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8,ja;q=0.7", "en"),
        ("fr-FR,fr;q=0.9,ja;q=0.8,en;q=0.7", "ja"),
        ("en;q=0.2, ja;q=0.9", "ja"),
        ("en;q=0, ja;q=0", "ja"),
        ("de", "ja"),
        ("en;q=abc, ja;q=0.1", "ja"),
        ("EN-gb", "en"),
    ],
)
def test_accept_language(header: str, lang: str) -> None:
    assert i18n.from_accept_language(header) == lang


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_accept_language_never_fails(header: str) -> None:
    assert i18n.from_accept_language(header) in ("ja", "en")


@pytest.mark.parametrize(
    ("value", "lang", "text"),
    [
        (date(1997, 9, 17), "ja", "1997年9月17日"),
        (date(1997, 9, 17), "en", "17 Sep 1997"),
        (date(1997, 1, 2), "en", "2 Jan 1997"),
        (datetime(1997, 9, 21, 8, 5), "ja", "1997年9月21日 08:05"),
        (None, "en", ""),
    ],
)
def test_dates_in_the_readers_convention(value: date | None, lang: str, text: str) -> None:
    assert i18n.format_date(value, lang) == text  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("month", "lang", "text"),
    [("1997-09", "ja", "1997年9月"), ("1997-09", "en", "Sep 1997"), ("junk", "en", "junk")],
)
def test_months(month: str, lang: str, text: str) -> None:
    assert i18n.format_month(month, lang) == text  # type: ignore[arg-type]


def test_every_message_has_both_languages() -> None:
    for key, (ja, en) in i18n.MESSAGES.items():
        assert ja.strip() and en.strip(), key


def test_every_key_the_templates_use_exists() -> None:
    import re

    folder = Path(i18n.__file__).parent
    used: set[str] = set()
    for path in [*(folder / "templates").glob("*.html"), *folder.glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bt\('([a-z_]+)'\)", text))
        used |= set(re.findall(r"(?:flash\(|PageError\(\d+, |error=|notice = )\"([a-z_]+)\"", text))
    missing = sorted(k for k in used if k not in i18n.MESSAGES)
    assert not missing
    assert {"login_failed", "sent", "csrf_failed", "filled_from_scan", "not_found"} <= used
