"""The month: ``YYYY-MM``, the unit the center counts, publishes and exports by.

``Month.parse`` is the one validation of a month string (an ``InputError`` on the field
given, ``month`` by default); the API's path and query parameters use ``PATTERN``, the
same rule as a regular expression, so OpenAPI shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from todokede.errors import InputError

PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str, *, field: str = "month") -> Month:
        """``"1997-09"`` -> ``Month(1997, 9)``; InputError for anything else."""
        m = _MONTH.match(text)
        if not m:
            raise InputError(f"not a month (YYYY-MM): {text[:40]!r}", field=field)
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def shift(self, months: int) -> Month:
        """The month ``months`` after (negative: before) this one."""
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def days(self) -> tuple[date, date]:
        """[first day, first day of the next month): the month's 届出年月日."""
        return self.first_day, self.shift(1).first_day


def parse_month(text: str) -> tuple[int, int]:
    """``"1997-09"`` -> ``(1997, 9)``; InputError for anything else."""
    m = Month.parse(text)
    return m.year, m.month


def check(text: str, *, field: str = "month") -> str:
    """``text`` if it is a month; InputError otherwise."""
    Month.parse(text, field=field)
    return text


def shift(month: str, months: int) -> str:
    """The month ``months`` after (negative: before) ``month``."""
    return str(Month.parse(month).shift(months))


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included."""
    out, current = [], Month.parse(first)
    end = Month.parse(last)
    while current <= end:
        out.append(str(current))
        current = current.shift(1)
    return out
