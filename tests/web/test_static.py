"""The look: colours readable (WCAG AA contrast) and nothing fetched from outside."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "todokede" / "center" / "web"
CSS = (WEB / "static" / "site.css").read_text(encoding="utf-8")
VARS = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", CSS))


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def colour(name: str) -> str:
    return str(VARS.get(name, name))


@pytest.mark.parametrize(
    ("fg", "bg"),
    [
        ("ink", "paper"),
        ("ink", "bg"),
        ("muted", "paper"),
        ("muted", "bg"),
        ("accent", "paper"),
        ("accent", "bg"),
        ("accent-ink", "accent"),
        ("#12324f", "accent-soft"),
        ("ok", "#e6f4ea"),
        ("warn", "#fff6e0"),
        ("bad", "#fdecec"),
        ("#6b4500", "#fff6e0"),
        ("#3c2463", "#ece6f7"),
        ("#1d4d2e", "#e6f4ea"),
        ("#7a1212", "#fdecec"),
        ("#ffffff", "#a61b1b"),
        ("#e6edf3", "#0f1720"),
    ],
)
def test_text_contrast_meets_wcag_aa(fg: str, bg: str) -> None:
    assert contrast(colour(fg), colour(bg)) >= 4.5


def test_nothing_is_loaded_from_outside() -> None:
    for path in [*WEB.glob("templates/*.html"), WEB / "static" / "site.css"]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", text), path
        assert "@import" not in text and "url(http" not in text, path
        if path.name == "api_docs.html":  # Swagger UI: script files of the site's own only
            sources = re.findall(r"<script([^>]*)>", text)
            assert sources and all(re.fullmatch(r' src="/static/[^"]+"', s) for s in sources)
        else:
            assert "<script" not in text, path  # the pages need no JavaScript at all
