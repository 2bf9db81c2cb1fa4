from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from todokede.errors import LogError
from todokede.logs import files

LINES = b"".join(b"Sep  1 10:00:%02d h p[1]: line %d\n" % (i, i) for i in range(50))


@pytest.mark.parametrize(
    ("name", "pack"),
    [
        ("plain", lambda b: b),
        ("log.gz", gzip.compress),
        ("log.bz2", bz2.compress),
        ("log.xz", lzma.compress),
        ("misnamed.txt", gzip.compress),
    ],
)
def test_open_any_compression(tmp_path: Path, name: str, pack: Callable[[bytes], bytes]) -> None:
    p = tmp_path / name
    p.write_bytes(pack(LINES))
    with files.open_log(p) as fh:
        blocks = list(files.blocks(fh, size=100))
    assert b"".join(blocks) == LINES
    assert all(b.endswith(b"\n") for b in blocks)


def test_corrupt_compressed_file_is_a_log_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.gz"
    p.write_bytes(gzip.compress(LINES)[:40])
    with pytest.raises(LogError), files.open_log(p) as fh:
        list(files.blocks(fh))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LogError):
        files.open_log(tmp_path / "nope")


def test_rotated_set_in_time_order(tmp_path: Path) -> None:
    for name in ("maillog", "maillog.1", "maillog.2.gz", "maillog.10.gz", "other", "maillog-old"):
        (tmp_path / name).write_bytes(b"")
    got = [p.name for p in files.rotated_set(tmp_path / "maillog")]
    assert got == ["maillog.10.gz", "maillog.2.gz", "maillog.1", "maillog"]
    order = files.time_order(
        [tmp_path / n for n in ("maillog", "other", "maillog.1", "maillog.2.gz")]
    )
    assert [p.name for p in order] == ["maillog.2.gz", "maillog.1", "maillog", "other"]


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_byte_ranges_cover_whole_lines(tmp_path: Path, parts: int) -> None:
    p = tmp_path / "log"
    p.write_bytes(LINES)
    ranges = files.byte_ranges(p, parts)
    data = b"".join(b for a, z in ranges for b in files.read_range(p, a, z))
    assert data == LINES
    assert all(LINES[a - 1 : a] == b"\n" for a, _ in ranges[1:])


@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=60),
    tail=st.binary(max_size=20),
    size=st.integers(1, 64),
    window=st.integers(1, 16),
    parts=st.integers(1, 4),
)
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_ranges_read_in_the_blocks_of_a_stream(
    tmp_path: Path, lines: list[bytes], tail: bytes, size: int, window: int, parts: int
) -> None:
    # each range in the blocks blocks() cuts from a stream of it (lines longer than the
    # window and than a block among them), the last one without its newline
    data = b"".join(line + b"\n" for line in lines) + tail
    p = tmp_path / "log"
    p.write_bytes(data)
    for a, z in files.byte_ranges(p, parts):
        with open(p, "rb") as fh:
            fh.seek(a)
            want = list(files.blocks(fh, size=size, limit=z - a))
        assert list(files.read_range(p, a, z, size=size, window=window)) == want


def test_follower_survives_rotation(tmp_path: Path) -> None:
    p = tmp_path / "maillog"
    p.write_bytes(b"one\ntw")
    f = files.Follower(p)
    assert f.poll() == b"one\n"
    with open(p, "ab") as fh:
        fh.write(b"o\nthree\n")
    assert f.poll() == b"two\nthree\n"
    with open(p, "ab") as fh:
        fh.write(b"four\n")
    p.rename(tmp_path / "maillog.1")  # rotate: the old file got one more line first
    p.write_bytes(b"five\n")
    assert f.poll() == b"four\nfive\n"
    p.write_bytes(b"")  # truncated in place (copytruncate)
    with open(p, "ab") as fh:
        fh.write(b"six\n")
    assert f.poll() == b"six\n"
    f.close()


def _drain(f: files.Follower, polls: int = 100_000) -> list[bytes]:
    out = []
    for _ in range(polls):
        data = f.poll()
        if data:
            out.append(data)
        elif not f.pending:
            break
    return out


@pytest.mark.parametrize("limit", [1, 7, 16, 1000])
def test_follower_reads_a_piece_at_a_time(tmp_path: Path, limit: int) -> None:
    """With a limit, each poll gives whole lines from at most ``limit`` bytes (and the rest
    of a longer line), lines cut between reads come whole, and a rotation is taken once
    the old file is read to its end."""
    p = tmp_path / "auth.log"
    p.write_bytes(b"")
    f = files.Follower(p, limit=limit)
    assert f.poll() == b""
    with open(p, "ab") as fh:
        fh.write(LINES[:500] + b"partial")
    got = _drain(f)
    assert all(part.endswith(b"\n") for part in got)
    assert all(len(part) <= limit + 60 for part in got)  # a line is under 60 bytes
    with open(p, "ab") as fh:
        fh.write(b" line\n" + LINES[500:])
    p.rename(tmp_path / "auth.log.1")  # rotated with more than a piece left unread
    p.write_bytes(b"after 1\nafter 2\n")
    got += _drain(f)
    assert b"".join(got) == LINES[:500] + b"partial line\n" + LINES[500:] + b"after 1\nafter 2\n"
    f.close()


def test_follower_finishes_a_rotated_file_without_its_last_newline(tmp_path: Path) -> None:
    p = tmp_path / "auth.log"
    p.write_bytes(b"")
    f = files.Follower(p, limit=4)
    f.poll()
    p.write_bytes(b"first line\nno newline")
    p.rename(tmp_path / "auth.log.1")
    p.write_bytes(b"new\n")
    assert b"".join(_drain(f)) == b"first line\nno newline\nnew\n"
    f.close()
