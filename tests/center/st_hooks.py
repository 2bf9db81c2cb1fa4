"""What schemathesis' command line is taught beyond the schema: the one cross-field rule
JSON Schema cannot state (a report's ``period`` ends on or after its start). Loaded by
``test_api_schemathesis.py`` through ``SCHEMATHESIS_HOOKS``."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    """Put a generated period in order (only as dates: a body meant to be invalid stays
    so)."""
    period = body.get("period") if isinstance(body, dict) else None
    if isinstance(period, dict):
        start, end = period.get("start"), period.get("end")
        if isinstance(start, str) and isinstance(end, str) and end < start:
            period["start"], period["end"] = end, start
    return body
