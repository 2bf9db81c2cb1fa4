"""A built publication as HTML (self-contained), Markdown or PDF (WeasyPrint)."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from todokede.center.publication.monthly.model import FORMATS, Format, Publication
from todokede.errors import InputError

HERE = Path(__file__).parent


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True, default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def _md_cell(value: object) -> str:
    """Markdown-safe text: pipes, markup and line breaks from report data cannot break out."""
    text = (
        str(value)
        .replace("\n", " ")
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )
    return re.sub(r"([\\`*\[\]|])", r"\\\1", text)


_MD_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    # Markdown, not HTML: report text is escaped for Markdown by the ``md`` filter instead.
    autoescape=False,  # noqa: S701
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
_MD_ENV.filters["md"] = _md_cell


def to_html(pub: Publication, *, for_pdf: bool = False) -> str:
    css = (HERE / "templates" / "style.css").read_text(encoding="utf-8")
    return _ENV.get_template("publication.html.j2").render(pub=pub, css=css, for_pdf=for_pdf)


def to_markdown(pub: Publication) -> str:
    return _MD_ENV.get_template("publication.md.j2").render(pub=pub)


def to_pdf(pub: Publication) -> bytes:
    return html_to_pdf(to_html(pub, for_pdf=True))


def html_to_pdf(html: str) -> bytes:
    """The PDF of the publication's HTML as ``to_html(pub, for_pdf=True)`` wrote it (a
    published month keeps that HTML and renders its PDF once, on first request)."""
    import logging

    from weasyprint import HTML  # imported late: slow to import, only the PDF needs it

    # WeasyPrint logs every unsupported CSS property at WARNING; the publication's CSS is ours.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    data: bytes = HTML(string=html, base_url=str(HERE)).write_pdf()
    return data


def encode(pub: Publication, fmt: Format) -> bytes:
    """A built publication in one format (build once, encode in several)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (allowed: html, pdf, md)", field="format")
    if fmt == "pdf":
        return to_pdf(pub)
    if fmt == "md":
        return to_markdown(pub).encode("utf-8")
    return to_html(pub).encode("utf-8")
