"""Filter options as jail.conf writes them, and fail2ban's ``<tag>`` substitution.

``sshd[mode=aggressive]``, ``postfix[mode="auth", logtype=journal][maxlines=2]``: a name and
options (values bare, or in single or double quotes). A ``<name>`` in an option's value is
replaced by the option ``name`` (from the filter's options, ``[Init]``, then
``[Definition]`` and ``[DEFAULT]``), innermost first and again until nothing changes, so
``<lt_<logtype>/__prefix_line>`` works; a tag that names nothing is left as it is (it may be
a regex tag such as ``<HOST>``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from todokede.errors import ConfigError

_SPEC = re.compile(r"^([^\[]+)(?:\[(.*)\])?\s*$", re.DOTALL)
_OPTION = re.compile(
    r"""\s*([\w\-_\.]+)=(?:"([^"]*)"|'([^']*)'|([^,\]]*))(?:,|\]\s*\[|$|(?P<wrong_a>.+))"""
    r"""|,?\s*$|(?P<wrong_b>.+)""",
    re.DOTALL,
)
_TAG = re.compile(r"<([^ <>]+)>")
MAX_TAG_REPLACE = 25


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``name[opt=value, ...]`` as (name, options)."""
    m = _SPEC.match(spec)
    if m is None:
        raise ConfigError(f"unexpected filter syntax: {spec!r}")
    name, text = m.groups()
    options: dict[str, str] = {}
    for o in _OPTION.finditer(text or ""):
        if o.group("wrong_a"):
            raise ConfigError(
                f"unexpected text at {o.start('wrong_a')} after option {o.group(1)!r}: "
                f"{o.group('wrong_a')[:25]!r}"
            )
        if o.group("wrong_b"):
            raise ConfigError(
                f"expected an option at {o.start('wrong_b')}: {o.group('wrong_b')[:25]!r}"
            )
        if not o.group(1):
            continue
        value = next(v for v in o.group(2, 3, 4) if v is not None)
        options[o.group(1).strip()] = value.strip()
    return name.strip(), options


def substitute(
    tags: dict[str, str | None],
    ignore: set[str],
    lookup: Callable[[str], str | None],
) -> dict[str, str | None]:
    """Every ``<name>`` in the values replaced, recursively (ConfigError on a loop)."""
    out = dict(tags)
    done: set[str] = set()
    counts: dict[str, dict[str, int]] = {}
    while True:
        again = False
        for tag in list(out):
            if tag in ignore or tag in done:
                continue
            original = str(out[tag])
            seen = counts.get(tag, {})
            value = _replace(tag, original, out, ignore, lookup, seen)
            if value != original:
                if _TAG.search(value):
                    counts[tag] = seen
                    again = True
                out[tag] = value
            if "<" not in value:
                done.add(tag)
        if not again:
            return out


def _replace(
    tag: str,
    value: str,
    tags: dict[str, str | None],
    ignore: set[str],
    lookup: Callable[[str], str | None],
    seen: dict[str, int],
) -> str:
    """One pass over ``value``: each ``<name>`` that names a value replaced."""
    m = _TAG.search(value)
    while m:
        name = m.group(1)
        if name in ignore:
            m = _TAG.search(value, m.end())
            continue
        if name == tag or seen.get(name, 1) > MAX_TAG_REPLACE:
            raise ConfigError(
                f"option {tag!r} refers to itself through <{name}> and cannot be resolved"
            )
        repl = tags.get(name)
        if repl is None:
            repl = lookup(name)
        if repl is None:
            m = _TAG.search(value, m.end())
            continue
        value = value.replace(f"<{name}>", str(repl))
        seen[name] = seen.get(name, 0) + 1
        m = _TAG.search(value, m.start())
    return value
