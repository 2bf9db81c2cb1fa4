"""Fuzzed filter files, options and lines: a filter loads or is refused with a ConfigError;
a loaded filter matches any line without raising."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.errors import ConfigError
from todokede.logs import f2b
from todokede.logs.fail2ban import Filter

# pieces of what filter files are made of, so that the fuzzer reaches deep into them
PIECES = [
    "[Definition]\n",
    "[Init]\n",
    "[DEFAULT]\n",
    "[INCLUDES]\n",
    "[Init?family=inet6]\n",
    "before = common.conf\n",
    "after = other.conf\n",
    "failregex = ",
    "ignoreregex = ",
    "prefregex = ",
    "datepattern = ",
    "maxlines = ",
    "mode = ",
    "  ",
    "\n",
    "%(mode)s",
    "%(known/failregex)s",
    "%(Init/mode)s",
    "%(default/x)s",
    "%%",
    "%",
    "<HOST>",
    "<ADDR>",
    "<F-USER>",
    "</F-USER>",
    "<F-ID/>",
    "<F-MLFID>",
    "</F-MLFID>",
    "<F-NOFAIL>",
    "<SKIPLINES>",
    "<mode>",
    "<<mode>>",
    "<lt_<logtype>/x>",
    "{^LN-BEG}",
    "{DATE}",
    "{NONE}",
    "EPOCH",
    "%Y-%m-%d",
    "%ExY",
    "^",
    "$",
    "(",
    ")",
    "(?i)",
    "[",
    "]",
    "\\",
    ".*",
    ";comment",
    "#",
    "=",
    ":",
    "x",
    "1",
    "0",
]
text = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(main=text, common=text, local=text)
def test_filter_files_load_or_are_refused(main: str, common: str, local: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "f.conf").write_text(main, encoding="utf-8", errors="surrogatepass")
        (d / "common.conf").write_text(common, encoding="utf-8", errors="surrogatepass")
        (d / "f.local").write_text(local, encoding="utf-8", errors="surrogatepass")
        try:
            flt = Filter.load("f", [d])
        except ConfigError as exc:
            assert str(exc)
            return
        flt.feed("log", "Jun  1 10:00:00 host prog[1]: x 192.0.2.1 user")
        flt.feed("log", main)


@settings(max_examples=300, deadline=None)
@given(spec=st.text(max_size=40))
def test_filter_specs_load_or_are_refused(spec: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "f.conf").write_text("[Definition]\nfailregex = ^<mode> <HOST>$\n")
        try:
            Filter.load("f" + spec, [Path(tmp)])
        except ConfigError as exc:
            assert str(exc)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.text(max_size=80), max_size=8), pattern=st.sampled_from(["", "x"]))
def test_lines_never_raise(lines: list[str], pattern: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "f.conf").write_text(
            "[Definition]\nmaxlines = 3\n"
            "failregex = ^<F-MLFID>\\S+</F-MLFID> (?:fail <F-USER>\\S+</F-USER>|"
            "<F-NOFAIL>ok</F-NOFAIL>|<F-MLFFORGET>bye</F-MLFFORGET>)(?: <HOST>)?"
            "<SKIPLINES>(?:from <F-ID/>)?\n"
        )
        m = f2b.Matcher(f2b.load(Path(tmp) / "f.conf"))
        for line in lines:
            m.process(pattern + line)
