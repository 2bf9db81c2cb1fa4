# The stub of _export.c (the journal's export stream as syslog lines).

from collections.abc import Callable

def text_lines(
    buf: bytes, pos: int, stop: int, zones: dict[int, int | None], zone: Callable[[int], int | None]
) -> tuple[list[dict[bytes, bytes] | tuple[int, bytes, int]], int, int, bytes | None]: ...
