"""Grafana's Athena macros and template variables, expanded for a fixed time range.

Grafana expands these itself; we expand them the same way (as grafana-athena-datasource's
pkg/athena/macros.go and Grafana's variable formats do) so the very SQL of a panel can run on any
warehouse: in tests, and to render the dashboard's picture without Grafana.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

_TS = "%Y-%m-%d %H:%M:%S"
_MACRO = re.compile(r"\$__(\w+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::([^}]*))?\}")
# Values of template variables are tickers or group names; anything else never reaches SQL.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9:._-]+$")
# Grafana date formats (moment.js) we use -> strftime.
_DATE_FORMATS = {"YYYY-MM-DD": "%Y-%m-%d", "YYYY-MM-DD HH:mm:ss": _TS}


class MacroError(ValueError):
    """A macro or variable in panel SQL that cannot be expanded."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range (UTC); Grafana's macros treat both ends as inclusive."""

    start: datetime
    end: datetime

    def __post_init__(self):
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise MacroError("TimeRange needs timezone-aware datetimes")
        if self.start >= self.end:
            raise MacroError(f"empty time range {self.start} .. {self.end}")

    def ts(self, which: str) -> str:
        return getattr(self, which).astimezone(timezone.utc).strftime(_TS)


def _time_macro(name: str, args: list[str], tr: TimeRange) -> str:
    if name == "timeFilter" and args:
        return f"{args[0]} BETWEEN TIMESTAMP '{tr.ts('start')}' AND TIMESTAMP '{tr.ts('end')}'"
    if name == "timeFrom":
        return f"TIMESTAMP '{tr.ts('start')}'"
    if name == "timeTo":
        return f"TIMESTAMP '{tr.ts('end')}'"
    if name == "dateFilter" and len(args) == 1:
        return f"{args[0]} BETWEEN date '{tr.start:%Y-%m-%d}' AND date '{tr.end:%Y-%m-%d}'"
    if name == "unixEpochFilter" and len(args) == 1:
        return f"{args[0]} BETWEEN {int(tr.start.timestamp())} AND {int(tr.end.timestamp())}"
    raise MacroError(f"unsupported macro $__{name}({', '.join(args)})")


def _global(name: str, fmt: str | None, tr: TimeRange) -> str:
    moment = tr.start if name == "__from" else tr.end
    if not fmt:
        return str(int(moment.timestamp() * 1000))
    kind, _, pattern = fmt.partition(":")
    if kind == "date" and pattern in _DATE_FORMATS:
        return moment.astimezone(timezone.utc).strftime(_DATE_FORMATS[pattern])
    raise MacroError(f"unsupported format ${{{name}:{fmt}}}")


def _format_values(name: str, fmt: str | None, values: list[str]) -> str:
    if not values:
        raise MacroError(f"variable ${name} has no value")
    bad = [v for v in values if not _SAFE_VALUE.match(v)]
    if bad:
        raise MacroError(f"variable ${name} has unsafe values {bad}")
    if fmt == "singlequote":
        return ",".join(f"'{v}'" for v in values)
    if fmt in (None, "", "csv", "raw"):
        return ",".join(values)
    raise MacroError(f"unsupported format ${{{name}:{fmt}}}")


def expand(sql_text: str, time_range: TimeRange, variables: dict[str, list[str]]) -> str:
    """`sql_text` with every macro and variable replaced; raises MacroError on anything unknown."""

    def variable(match: re.Match) -> str:
        name, fmt = match.group(1), match.group(2)
        if name in ("__from", "__to"):
            return _global(name, fmt, time_range)
        if name not in variables:
            raise MacroError(f"panel SQL uses ${{{name}}} but no value was given for it")
        return _format_values(name, fmt, variables[name])

    def macro(match: re.Match) -> str:
        args = [a.strip() for a in match.group(2).split(",") if a.strip()]
        return _time_macro(match.group(1), args, time_range)

    expanded = _MACRO.sub(macro, _VARIABLE.sub(variable, sql_text))
    leftover = re.search(r"\$\w*", expanded)
    if leftover:
        raise MacroError(f"unexpanded {leftover.group(0)!r} in panel SQL")
    return expanded
