"""Sending a report to a center's API (``report submit`` and ``guard``'s ``report = "submit"``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from todokede.center.intake.schema import Report
from todokede.errors import ConfigError, ReportError, StoreError

TIMEOUT = 30.0  # seconds for one submission


def submit_report(
    center: str, token: str, report: Report, *, idempotency_key: str | None = None
) -> dict[str, Any]:
    """POST one report to a center's ``/api/reports``; the center's answer (id, url)."""
    parts = urlsplit(center)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--center must be an http(s) URL, not {center!r}")
    url = center.rstrip("/") + "/api/reports"
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    body = report.model_dump_json(exclude_none=True).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read() or b"{}")
        except ValueError:
            detail = {}
        message = detail.get("error") if isinstance(detail, dict) else None
        field = detail.get("field") if isinstance(detail, dict) else None
        text = f"the center refused the report (HTTP {exc.code}): {message or exc.reason}"
        raise ReportError(text, field=field) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreError(f"cannot reach the center at {center}: {reason}") from None
    except ValueError:
        raise StoreError(f"the center at {center} did not answer JSON") from None
