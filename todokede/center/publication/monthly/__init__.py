"""The monthly publication (月次の届出状況): what came in, which cases were of a new type,
what happened in each and what everyone should do, then the attachment (別紙) with the
month's table and the statistics.

``build(store, month, lang)`` gathers a ``Publication`` (plain values); ``render`` turns it
into HTML (one self-contained file: inline CSS, inline SVG), PDF (WeasyPrint, Japanese
fonts from the system) or Markdown (text and tables; the figures become one-line text
flows and the charts are left out: their numbers are in the tables).

Only public material goes in: classification codes, counts, dates, the analyst's edited
text and narratives drafted from codes. Never the reporter's name, organisation, e-mail,
addresses of hosts, or the reporter's own free text.

The package: ``model`` (the plain values), ``content`` (``build``), ``formats`` (``encode``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from todokede.center.publication.monthly.content import GLOSSARY, MAX_ROWS, build, era
from todokede.center.publication.monthly.formats import (
    HERE,
    encode,
    html_to_pdf,
    to_html,
    to_markdown,
    to_pdf,
)
from todokede.center.publication.monthly.model import (
    FORMATS,
    LABELS,
    LANGS,
    Case,
    Format,
    Publication,
    Publisher,
    Row,
    Segment,
)
from todokede.center.taxonomy import Lang
from todokede.errors import InputError

if TYPE_CHECKING:
    from todokede.center.store import Store

__all__ = [
    "FORMATS",
    "GLOSSARY",
    "HERE",
    "LABELS",
    "LANGS",
    "MAX_ROWS",
    "Case",
    "Format",
    "Publication",
    "Publisher",
    "Row",
    "Segment",
    "build",
    "encode",
    "era",
    "html_to_pdf",
    "render",
    "to_html",
    "to_markdown",
    "to_pdf",
]


def render(
    store: Store,
    month: str,
    *,
    lang: Lang = "ja",
    fmt: Format = "html",
    publisher: Publisher | None = None,
) -> bytes:
    """The publication of ``month`` as bytes (UTF-8 for HTML and Markdown)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (allowed: html, pdf, md)", field="format")
    return encode(build(store, month, lang, publisher=publisher), fmt)
