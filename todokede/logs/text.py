"""Bytes to text for log lines written in any 1997 encoding.

Logs are read as bytes and only the few pieces that end up in a finding are decoded, so a
line in ISO-2022-JP, EUC-JP or Shift_JIS, or plain garbage, never stops a scan.
"""

from __future__ import annotations

_ESC = b"\x1b"


def decode(raw: bytes) -> str:
    """Decode one log line or field: UTF-8, else the Japanese encodings, else replace."""
    if raw.isascii():
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    candidates = ("iso2022_jp", "euc_jp", "shift_jis") if _ESC in raw else ("euc_jp", "shift_jis")
    for codec in candidates:
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "replace")


def field(raw: bytes) -> str:
    """Decode a protocol field (host, address, mailbox): ASCII with replacements."""
    return raw.decode("ascii", "replace") if not raw.isascii() else raw.decode("ascii")
