from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import need
from tests.web.server import PASSWORDS, Live, center

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with center(tmp_path_factory.mktemp("center")) as running:
        yield running


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@contextmanager
def signed_in(live: Live, name: str, lang: str = "en") -> Iterator[httpx.Client]:
    """An HTTP client with a session for ``name`` (the page's own sign-in form)."""
    with httpx.Client(base_url=live.url, headers={"Accept-Language": lang}, timeout=30) as client:
        page = client.get("/login")
        response = client.post(
            "/login",
            data={"csrf": csrf_of(page.text), "username": name, "password": PASSWORDS[name][1]},
        )
        assert response.status_code == 303, response.text
        yield client


@pytest.fixture
def artifacts() -> Path:
    path = Path(__file__).resolve().parent.parent / "_artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def digest_of(html: str) -> str:
    found = re.search(r'name="digest" value="([0-9a-f]{64})"', html)
    assert found, "no preview digest in the page"
    return found.group(1)


def publish_month(client: httpx.Client, month: str) -> httpx.Response:
    """Publish ``month`` as an analyst does: look at the preview, then confirm it."""
    preview = client.get("/publish", params={"month": month})
    assert preview.status_code == 200, preview.text
    data = {"csrf": csrf_of(preview.text), "month": month, "digest": digest_of(preview.text),
            "confirm": "yes"}  # fmt: skip
    done = client.post("/publish", data=data)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/published/{month}"
    return done


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
