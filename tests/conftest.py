"""Shared test helpers. Tests that need a real peer (tcpd, Postfix, Dovecot, PostgreSQL,
Chromium, ...) call ``need()``: when the peer is missing the test is skipped and pytest's
``-ra`` summary prints why — never passed silently."""

from __future__ import annotations

import os
import shutil

import pytest


def need(*programs: str) -> None:
    """Skip the calling test unless every program is on PATH (or an absolute path exists)."""
    missing = [p for p in programs if not (shutil.which(p) or os.path.exists(p))]
    if missing:
        pytest.skip(f"peer not installed: {', '.join(missing)} (run scripts/peers as root)")


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, bind mounts or apt-installed peers)")
