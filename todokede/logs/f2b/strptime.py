"""The strptime fields of fail2ban's date patterns, and a found date turned into a time.

fail2ban builds its ``%``-fields on the standard library's ``_strptime.TimeRE`` (so names of
months and days follow the C library's locale), changes a few to accept what logs write
(``%d`` and ``%m`` without a leading zero, ``%k`` a space-padded hour, offsets ``%z`` with
or without a colon) and adds strict ``%Ex..`` forms. ``%ExY`` accepts only years near now.
A date without a year is in the current year unless that puts it more than a day ahead of
now (then the year before); a time zone name is a fixed offset from a fixed table.
"""

from __future__ import annotations

import calendar
import datetime
import re
import time
from _strptime import (  # type: ignore[import-not-found]
    LocaleTime,
    TimeRE,
    _calc_julian_from_U_or_W,
)
from dataclasses import dataclass

_LOCALE = LocaleTime()
_TZ_ABBR = r"[A-Z](?:[A-Z]{2,4})?"
_FIXED_OFFSET = re.compile(rf"({_TZ_ABBR})?([+-][01]\d(?::?\d{{2}})?)?$")

# the windows of years %ExY accepts: each three-digit prefix of a year from 2000 on,
# every third year until now, and of the year before and three years after now
_CENTURY_FROM = 2001


def _year_prefixes(now: datetime.datetime) -> str:
    years = {now.year - 1, now.year + 3}
    years |= set(range(_CENTURY_FROM - 1, now.year + 1, 3))
    return "(?:" + "|".join(sorted({str(y)[:3] for y in years})) + ")"


def _fields() -> dict[str, str]:
    fields: dict[str, str] = dict(TimeRE())
    fields.update(
        {
            "k": r" ?(?P<H>[0-2]?\d)",
            "l": r" ?(?P<I>1?\d)",
            "Z": r"(?P<Z>Z|[A-Z]{3,5})",
            "z": r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)",
            "ExZ": rf"(?P<Z>{_TZ_ABBR})",
            "Exz": rf"(?P<z>(?:{_TZ_ABBR})?[+-][01]\d(?::?\d{{2}})?|{_TZ_ABBR})",
            "d": r"(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])",
            "m": r"(?P<m>0?[1-9]|1[0-2])",
            "Y": r"(?P<Y>\d{4})",
            "H": r"(?P<H>[0-1]?\d|2[0-3])",
            "M": r"(?P<M>[0-5]?\d)",
            "S": r"(?P<S>[0-5]?\d|6[0-1])",
            "Exd": r"(?P<d>[1-2]\d|0[1-9]|3[0-1])",
            "Exm": r"(?P<m>0[1-9]|1[0-2])",
            "ExH": r"(?P<H>[0-1]\d|2[0-3])",
            "Exk": r" ?(?P<H>[0-1]?\d|2[0-3])",
            "Exl": r" ?(?P<I>1[0-2]|\d)",
            "ExM": r"(?P<M>[0-5]\d)",
            "ExS": r"(?P<S>[0-5]\d|6[0-1])",
            "ExY": rf"(?P<Y>{_year_prefixes(datetime.datetime.now())}\d)",
            "Exy": r"(?P<y>\d{2})",
        }
    )
    return fields


FIELDS = _fields()
_NAMES = {
    "a": "DAY",
    "A": "DAYNAME",
    "b": "MON",
    "B": "MONTH",
    "d": "Day",
    "H": "24hour",
    "I": "12hour",
    "j": "Yearday",
    "m": "Month",
    "M": "Minute",
    "p": "AMPM",
    "S": "Second",
    "U": "Yearweek",
    "w": "Weekday",
    "W": "Yearweek",
    "y": "Year2",
    "Y": "Year",
    "%": "%",
    "z": "Zone offset",
    "f": "Microseconds",
    "Z": "Zone name",
}
for _key in FIELDS:
    if _key not in _NAMES:
        _base = _NAMES.get(_key[2:]) if _key.startswith("Ex") else None
        _NAMES[_key] = "Ex" + _base if _base else "%" + _key
FIELD_NAMES = _NAMES
_LONG = "|".join(k for k in FIELDS if len(k) > 1)
_SHORT = "".join(k for k in FIELDS if len(k) == 1)
FIELD_RE = re.compile(f"%(%|{_LONG}|[{_SHORT}])")

_TZ_TABLE = """\
-12 Y|-11 X NUT SST|-10 W CKT HAST HST TAHT TKT|-9 V AKST GAMT GIT HADT HNY
-8 U AKDT CIST HAY HNP PST PT|-7 T HAP HNR MST PDT|-6 S CST EAST GALT HAR HNC MDT
-5 R CDT COT EASST ECT EST ET HAC HNE PET|-4 Q AST BOT CLT COST EDT FKT GYT HAE HNA PYT
-3 P ADT ART BRT CLST FKST GFT HAA PMST PYST SRT UYT WGT|-2 O BRST FNT PMDT UYST WGST
-1 N AZOT CVT EGT|0 Z EGST GMT UTC WET WT|1 A CET DFT WAT WEDT WEST
2 B CAT CEDT CEST EET SAST WAST|3 C EAT EEDT EEST IDT MSK
4 D AMT AZT GET GST KUYT MSD MUT RET SAMT SCT
5 E AMST AQTT AZST HMT MAWT MVT PKT TFT TJT TMT UZT YEKT
6 F ALMT BIOT BTT IOT KGT NOVT OMST YEKST|7 G CXT DAVT HOVT ICT KRAT NOVST OMSST THA WIB
8 H ACT AWST BDT BNT CAST HKT IRKT KRAST MYT PHT SGT ULAT WITA WST
9 I AWDT IRKST JST KST PWT TLT WDT WIT YAKT|10 K AEST ChST PGT VLAT YAKST YAPT
11 L AEDT LHDT MAGT NCT PONT SBT VLAST VUT
12 M ANAST ANAT FJT GILT MAGST MHT NZST PETST PETT TVT WFT
13 FJST NZDT|11.5 NFT|10.5 ACDT LHST|9.5 ACST|6.5 CCT MMT|5.75 NPT|5.5 SLT|4.5 AFT IRDT
3.5 IRST|-2.5 HAT NDT|-3.5 HNT NST NT|-4.5 HLV VET|-9.5 MART MIT"""
TZ_OFFSETS: dict[str | None, int] = {"": 0, None: 0}
for _row in _TZ_TABLE.replace("\n", "|").split("|"):
    _hours, *_zones = _row.split()
    TZ_OFFSETS.update(dict.fromkeys(_zones, int(float(_hours) * 60)))


def zone_offset(zone: str) -> int:
    """Minutes east of UTC for ``UTC+0100``, ``CET``, ``-04:00``...; ValueError if not a
    zone fail2ban knows, KeyError for an unknown abbreviation (fail2ban fails the line)."""
    m = _FIXED_OFFSET.match(zone)
    if m is None:
        raise ValueError(f"unknown or unsupported time zone: {zone!r}")
    name, off = m.groups()
    if not off:
        return TZ_OFFSETS[name]
    if len(off) <= 3:
        return TZ_OFFSETS[name] + int(off) * 60
    sign = -1 if off[0] == "-" else 1
    minutes = int(off[4:6]) if off[3] == ":" else int(off[3:5])
    return TZ_OFFSETS[name] + sign * (int(off[1:3]) * 60 + minutes)


def _hour12(val: str, ampm: str) -> int:
    hour = int(val)
    if ampm in ("", _LOCALE.am_pm[0]):
        return 0 if hour == 12 else hour
    if ampm == _LOCALE.am_pm[1] and hour != 12:
        return hour + 12
    return hour


_NUMBERS = {"Y": "year", "m": "month", "d": "day", "H": "hour", "M": "minute", "S": "second"}
_NUMBERS["j"] = "julian"


@dataclass
class _Parts:
    year: int | None = None
    month: int | None = None
    day: int | None = None
    hour: int = 0
    minute: int = 0
    second: int = 0
    offset: int | None = None  # minutes east of UTC
    weekday: int | None = None
    julian: int | None = None
    week: int | None = None
    monday_first: bool = False


def _parts(found: dict[str, str | None]) -> _Parts:
    """The fields as numbers (ValueError, or KeyError for a zone fail2ban does not know)."""
    p = _Parts()
    for key, val in found.items():
        if val is None:
            continue
        if key in _NUMBERS:
            setattr(p, _NUMBERS[key], int(val))
        elif key == "y":
            p.year = int(val) + (2000 if int(val) <= 2000 else 0)
        elif key in ("B", "b"):
            p.month = (_LOCALE.f_month if key == "B" else _LOCALE.a_month).index(val.lower())
        elif key == "I":
            p.hour = _hour12(val, (found.get("p") or "").lower())
        elif key in ("A", "a"):
            p.weekday = (_LOCALE.f_weekday if key == "A" else _LOCALE.a_weekday).index(val.lower())
        elif key == "w":
            p.weekday = (int(val) - 1) % 7
        elif key in ("U", "W"):
            p.week, p.monday_first = int(val), key == "W"
        elif key in ("z", "Z"):
            p.offset = 0 if val in ("Z", "UTC", "GMT") else zone_offset(val)
    return p


def to_time(
    found: dict[str, str | None], now: datetime.datetime, default_tz: int | None = None
) -> tuple[float, datetime.datetime]:
    """The matched fields as (Unix time, the log's wall clock).

    Unix time as fail2ban computes it: with an offset in the line (or ``default_tz``) from
    UTC, else from this machine's local time. ValueError when the fields make no date.
    """
    p = _parts(found)
    assume_year = p.year is None
    year = now.year if p.year is None else p.year
    month, day = p.month, p.day
    if month is None or day is None:
        julian = p.julian
        if julian is None and p.week is not None and p.weekday is not None:
            julian = _calc_julian_from_U_or_W(year, p.week, p.weekday, p.monday_first)
        if julian is not None:
            d = datetime.date.fromordinal(julian - 1 + datetime.date(year, 1, 1).toordinal())
            year, month, day = d.year, d.month, d.day
    assume_today = month is None and day is None
    if assume_today:
        month, day = now.month, now.day
    # a month without a day (or the reverse) is a TypeError here, as in fail2ban: the
    # line is dropped
    result = datetime.datetime(year, month, day, p.hour, p.minute, p.second)  # type: ignore[arg-type]
    offset = default_tz if p.offset is None else p.offset
    shift = datetime.timedelta(minutes=offset or 0)
    result -= shift
    if assume_today and result > now:
        result -= datetime.timedelta(days=1)
    if assume_year and result > now + datetime.timedelta(days=1):
        # the month and day as written, even when the offset moved them (as fail2ban does)
        result = result.replace(year=year - 1, month=month or 1, day=day or 1)
    if offset is not None:
        return float(calendar.timegm(result.utctimetuple())), result + shift
    return time.mktime(result.timetuple()), result
