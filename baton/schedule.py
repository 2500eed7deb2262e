"""EventBridge schedule expressions, checked before a deploy: ``rate(...)`` and 6-field ``cron(...)``.

AWS's rules (EventBridge "Schedule expressions for rules"):

- ``rate(value unit)``: a positive integer and minute(s), hour(s) or day(s); singular for 1
  (``rate(1 minute)``), plural above (``rate(5 minutes)``).
- ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``: six fields, in UTC. Minutes 0-59,
  Hours 0-23, Day-of-month 1-31, Month 1-12 or JAN-DEC, Day-of-week 1-7 (1 = Sunday) or SUN-SAT,
  Year 1970-2199. ``, - * /`` everywhere; ``?`` in Day-of-month or Day-of-week, and exactly one
  of the two must be ``?``; ``L`` and ``W`` in Day-of-month; ``L`` and ``#`` in Day-of-week.

A Unix crontab line (5 fields, ``*/5 * * * *``) is the common mistake: the error shows the AWS
form of the same schedule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from baton.errors import BatonError

RATE_UNITS = {"minute": "minutes", "hour": "hours", "day": "days"}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# crontab's shorthands and the EventBridge expression with the same meaning.
UNIX_SHORTHANDS = {
    "@yearly": "cron(0 0 1 1 ? *)",
    "@annually": "cron(0 0 1 1 ? *)",
    "@monthly": "cron(0 0 1 * ? *)",
    "@weekly": "cron(0 0 ? * 1 *)",
    "@daily": "rate(1 day)",
    "@midnight": "cron(0 0 * * ? *)",
    "@hourly": "rate(1 hour)",
}
EXAMPLES = "e.g. rate(5 minutes), rate(1 hour) or cron(0 12 * * ? *)"


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # symbolic values for low, low + 1, ...


FIELDS = (
    _Field("Minutes", 0, 59),
    _Field("Hours", 0, 23),
    _Field("Day-of-month", 1, 31),
    _Field("Month", 1, 12, MONTHS),
    _Field("Day-of-week", 1, 7, WEEKDAYS),
    _Field("Year", 1970, 2199),
)
DAY_OF_MONTH, DAY_OF_WEEK = 2, 4


def validate_schedule(expression: str) -> str:
    """The expression, stripped, if EventBridge accepts it; else a BatonError saying why."""
    text = expression.strip()
    if not text:
        raise BatonError(f"the schedule expression is empty; {EXAMPLES}")
    if text.lower() in UNIX_SHORTHANDS:
        raise BatonError(f"{text!r} is crontab shorthand, which EventBridge does not accept; "
                         f"use {UNIX_SHORTHANDS[text.lower()]}")
    wrapped = re.fullmatch(r"(rate|cron)\((.*)\)", text, flags=re.IGNORECASE | re.DOTALL)
    if wrapped is None:
        fields = text.split()
        if len(fields) == 5:
            raise BatonError(_unix_cron_message(text, fields))
        raise BatonError(f"{text!r} is not a schedule expression; {EXAMPLES}")
    kind, body = wrapped[1], wrapped[2].strip()
    if kind != kind.lower():
        raise BatonError(f"{text!r}: write {kind.lower()}(...) in lower case")
    if kind == "rate":
        _check_rate(text, body)
    else:
        _check_cron(text, body)
    return text


def _check_rate(text: str, body: str) -> None:
    match = re.fullmatch(r"(\S+)\s+(\S+)", body)
    if match is None:
        raise BatonError(f"{text!r}: a rate is rate(value unit), {EXAMPLES}")
    value, unit = match[1], match[2]
    if not value.isdigit() or int(value) < 1:
        raise BatonError(f"{text!r}: the value must be a positive whole number, got {value!r}")
    count = int(value)
    singular = {plural: single for single, plural in RATE_UNITS.items()}.get(unit, unit)
    if singular not in RATE_UNITS:
        raise BatonError(f"{text!r}: the unit must be minute(s), hour(s) or day(s), got {unit!r}")
    expected = singular if count == 1 else RATE_UNITS[singular]
    if unit != expected:
        rule = "singular for 1" if count == 1 else "plural above 1"
        raise BatonError(f"{text!r}: the unit is {rule}: rate({count} {expected})")


def _check_cron(text: str, body: str) -> None:
    fields = body.split()
    if len(fields) == 5:
        raise BatonError(_unix_cron_message(text, fields))
    if len(fields) != 6:
        raise BatonError(
            f"{text!r}: an EventBridge cron has 6 fields, cron(Minutes Hours Day-of-month Month "
            f"Day-of-week Year), got {len(fields)}")
    problems = [why for spec, value in zip(FIELDS, fields, strict=True)
                if (why := _field_problem(spec, value)) is not None]
    day_of_month, day_of_week = fields[DAY_OF_MONTH], fields[DAY_OF_WEEK]
    if (day_of_month == "?") == (day_of_week == "?"):
        fix = fields.copy()
        if day_of_month == "?":  # both '?'
            fix[DAY_OF_MONTH] = "*"
        elif day_of_week == "*":
            fix[DAY_OF_WEEK] = "?"
        else:
            fix[DAY_OF_MONTH] = "?"
        problems.append(
            "exactly one of Day-of-month and Day-of-week must be '?' "
            f"(e.g. cron({' '.join(fix)}))")
    if problems:
        raise BatonError(f"{text!r} is not a valid EventBridge cron:\n"
                         + "\n".join(f"  {problem}" for problem in problems))


def _field_problem(spec: _Field, value: str) -> str | None:
    """Why ``value`` is not a valid ``spec`` field, or None."""
    upper = value.upper()
    if upper == "?":
        if spec.name in ("Day-of-month", "Day-of-week"):
            return None
        return f"{spec.name} {value!r}: '?' is only allowed in Day-of-month or Day-of-week"
    if spec.name == "Day-of-month" and re.fullmatch(r"L|LW|\d{1,2}W", upper):
        day = upper.removesuffix("W")
        if day.isdigit() and not 1 <= int(day) <= 31:
            return f"{spec.name} {value!r}: {day} is outside 1-31"
        return None
    if spec.name == "Day-of-week" and re.fullmatch(r"L|\w+L|\w+#\d", upper):
        day, _, nth = upper.rstrip("L").partition("#")
        if upper != "L" and _number(spec, day) is None:
            return f"{spec.name} {value!r}: {day!r} is not a day (1-7 or SUN-SAT)"
        if nth and not 1 <= int(nth) <= 5:
            return f"{spec.name} {value!r}: the week in '#' must be 1-5"
        return None
    for part in upper.split(","):
        why = _part_problem(spec, part)
        if why is not None:
            return f"{spec.name} {value!r}: {why}"
    return None


def _part_problem(spec: _Field, part: str) -> str | None:
    base, slash, step = part.partition("/")
    if slash and (not step.isdigit() or int(step) < 1):
        return f"the step after '/' must be a positive number, got {step!r}"
    if base == "*":
        return None
    bounds = base.split("-")
    if len(bounds) > 2 or not all(bounds):
        return f"{part!r} is not a value, a range a-b, or a step a/b"
    for bound in bounds:
        if _number(spec, bound) is None:
            allowed = f"{spec.low}-{spec.high}"
            if spec.names:
                allowed += f" or {spec.names[0]}-{spec.names[-1]}"
            return f"{bound!r} is outside {allowed}"
    return None


def _number(spec: _Field, token: str) -> int | None:
    if token.isdigit():
        number = int(token)
        return number if spec.low <= number <= spec.high else None
    if token in spec.names:
        return spec.low + spec.names.index(token)
    return None


def _unix_cron_message(text: str, fields: list[str]) -> str:
    return (f"{text!r} looks like a Unix cron expression (5 fields). EventBridge needs "
            "cron(Minutes Hours Day-of-month Month Day-of-week Year): 6 fields, in UTC, with '?' "
            "in one of Day-of-month and Day-of-week, and Sunday = 1. The same schedule: "
            f"{unix_to_aws(fields)}")


def unix_to_aws(fields: list[str]) -> str:
    """The EventBridge cron for a 5-field Unix cron (best effort: Unix ORs both day fields)."""
    minute, hour, day_of_month, month, day_of_week = fields
    if day_of_week == "*":
        day_of_week = "?"
    else:
        day_of_month = "?"
        # Unix counts days of the week 0-7 from Sunday (0 and 7); EventBridge 1-7 from Sunday.
        day_of_week = re.sub(r"(?<![/\d])\d+", lambda match: str(int(match[0]) % 7 + 1), day_of_week)
    return f"cron({minute} {hour} {day_of_month} {month} {day_of_week} *)"
