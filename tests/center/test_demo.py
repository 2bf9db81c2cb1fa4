"""`todokede demo`: the September 1997 story from the bundled logs to the publication, run
for real (scan, store, publication, PDF, and the center served on loopback)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import need
from todokede.center.intake.schema import Report
from todokede.center.store import Store

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
SITES = Path(__file__).resolve().parents[2] / "todokede" / "samples" / "sites"
FILES = [f"todokede-1997-09.{lang}.{fmt}" for lang in ("ja", "en") for fmt in ("html", "pdf", "md")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        data: dict[str, object] = json.loads(response.read())
        return data


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Runs ``todokede demo --serve`` as a user would, reads the served center, stops it."""
    directory = tmp_path_factory.mktemp("demo") / "out"
    directory.mkdir()
    # A stale center from an earlier run: the demo must replace it, not add to it.
    with Store.open(f"sqlite:///{directory / 'center.db'}") as stale:
        stale.add_report(Report(received=date(1997, 9, 30), methods=["dos"]))
    port = free_port()
    exe = [sys.executable, "-m", "todokede", "demo", "--dir", str(directory), "--serve",
           "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(exe, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        public: dict[str, object] | None = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                public = get_json(f"http://127.0.0.1:{port}/api/public/months/1997-09")
                break
            except OSError:
                time.sleep(0.3)
        assert public is not None, f"the center did not come up (exit {proc.poll()})"
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=30)
    yield {"dir": directory, "stdout": out, "stderr": err, "public": public}


def read(demo: dict[str, object], name: str) -> str:
    return (Path(str(demo["dir"])) / name).read_text(encoding="utf-8")


def test_demo_prints_each_publication_path(demo: dict[str, object]) -> None:
    printed = [Path(line) for line in str(demo["stdout"]).splitlines() if line.strip()]
    assert [p.name for p in printed] == FILES
    assert all(p.stat().st_size > 1000 for p in printed)
    assert "site-imap" in str(demo["stderr"]) and "analyst" in str(demo["stderr"])


def test_served_center_has_the_month(demo: dict[str, object]) -> None:
    public = demo["public"]
    assert isinstance(public, dict)
    assert public["total"] == 3 and public["with_actual_damage"] == 2
    assert [r["received"] for r in public["reports"]] == ["1997-09-17", "1997-09-19", "1997-09-21"]


def secrets() -> list[str]:
    """The reporters' personal data bundled with the sites: never in the publication."""
    found = []
    for path in SITES.glob("*.json"):
        reporter = json.loads(path.read_text(encoding="utf-8"))["report"]["reporter"]
        found += [v for k, v in reporter.items() if k != "type"]
    assert len(found) >= 9
    return found


def cases(text: str, fmt: str) -> list[str]:
    """The new-type case sections (their headings and bodies)."""
    if fmt == "html":
        return re.findall(r'<section class="case".*?</section>', text, flags=re.S)
    body = text.split("## 対策")[0].split("## Countermeasures")[0]
    return re.split(r"^## ", body, flags=re.M)[1:]


def attachment(text: str, fmt: str) -> str:
    marker = {"html": '<section class="attachment">', "md": "## 別紙"}[fmt]
    if fmt == "md" and marker not in text:
        marker = "## Attachment"
    return text[text.index(marker) :]


@pytest.mark.parametrize("fmt", ["html", "md"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_publication_says_what_the_seed_says(demo: dict[str, object], lang: str, fmt: str) -> None:
    text = read(demo, f"todokede-1997-09.{lang}.{fmt}")
    plain = re.sub(r"<[^>]+>|\*\*", "", text)
    if lang == "ja":
        assert "届け出が3件あった(別紙参照)" in plain
        assert "タイプの異なる2件について" in plain
    else:
        assert "there were 3 reports (see the attachment)" in plain
        assert "the 2 whose type differs from past cases are summarised" in plain
    found = cases(text, fmt)
    assert len(found) == 2
    imap, relay = found
    if lang == "ja":
        assert (
            "IMAPセキュリティホールアタック" in imap and "9回" in imap and "実害は無かった" in imap
        )
        assert "SPAM中継" in relay and "root" in relay and "98Mbyte" in relay
    else:
        assert "IMAP security-hole attack" in imap and "9 attempts" in imap
        assert "no actual damage" in imap
        assert "SPAM relay" in relay and "root" in relay and "98 MB" in relay
    assert ("tcp_wrapper" in imap and "✕" in imap) or "<svg" in imap
    for section in found:  # the mail bomb is counted, not described as new
        assert "happy today" not in section and "3,200" not in section
    # countermeasures, with their references
    assert "IMAP4rev1" in plain and "97-0004" in plain and "97-0001" in plain
    assert (
        "不要な中継は許可しない" if lang == "ja" else "not to permit unnecessary relaying"
    ) in plain
    # the attachment: three rows, 9/17 9/19 9/21, the bomb among them
    annex = attachment(text, fmt)
    days = re.findall(r"(?:<td class=\"day\">|^\| )(9/\d+)", annex, flags=re.M)
    assert days == ["9/17", "9/19", "9/21"]
    assert "happy today" in annex and "3,200" in annex
    assert ("3 (実被害 2)" if lang == "ja" else "3 (damage 2)") in annex
    for secret in secrets():
        assert secret not in text


def test_html_opens_offline(demo: dict[str, object]) -> None:
    for lang in ("ja", "en"):
        html = read(demo, f"todokede-1997-09.{lang}.html")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
        assert "<link" not in html and "@import" not in html and not re.search(r"url\((?!#)", html)
        assert html.count("<svg") == 4  # two figures, two charts


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_pdf_shows_the_text_and_renders(demo: dict[str, object], lang: str) -> None:
    need("pdftotext", "pdftoppm")
    pdf = Path(str(demo["dir"])) / f"todokede-1997-09.{lang}.pdf"
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout  # fmt: skip
    flat = re.sub(r"\s+", "", text)
    if lang == "ja":
        expected = ["コンピュータ不正アクセス被害の届出状況", "3件", "SPAM中継", "別紙",
                    "IMAPセキュリティホールアタック", "届出年月日", "IMAP4rev1", "tcp_wrapper",
                    "9/21"]  # fmt: skip
        for words in expected:
            assert words in flat, words
    else:
        for words in ("3reports", "IMAPsecurity-holeattack", "SPAMrelay", "Attachment", "9/19"):
            assert words in flat, words
    for secret in secrets():
        assert re.sub(r"\s+", "", secret) not in flat
    ARTIFACTS.mkdir(exist_ok=True)
    stem = ARTIFACTS / f"demo-1997-09.{lang}"
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(stem)], check=True, timeout=60)  # fmt: skip
    png = stem.parent / f"{stem.name}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_replaced_the_stale_center(demo: dict[str, object]) -> None:
    html = read(demo, "todokede-1997-09.ja.html")
    assert "届け出が<strong>3件</strong>" in html  # not 4: the old center was replaced
    with Store.open(f"sqlite:///{Path(str(demo['dir'])) / 'center.db'}") as store:
        assert store.published_months()[0] == "1996-08" and "1997-09" in store.published_months()
