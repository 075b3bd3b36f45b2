"""Durations as operators write them: seconds or ISO 8601 (``PT8H``, ``P2D``, ``P1DT4H``)."""

from __future__ import annotations

import re
from datetime import timedelta

_ISO = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse ``value`` or raise ``ValueError`` saying what is expected."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = timedelta(seconds=value)
    else:
        text = str(value).strip().upper()
        if text.isdigit():
            result = timedelta(seconds=int(text))
        else:
            match = _ISO.match(text)
            if not match or text in {"P", "PT"} or text.endswith("T"):
                raise ValueError(
                    f"{value!r} is not a duration: use seconds (28800) or ISO 8601 (PT8H, P2D)"
                )
            parts = {k: int(v) for k, v in match.groupdict().items() if v}
            result = timedelta(**parts)
    if result <= timedelta(0):
        raise ValueError(f"{value!r} must be a positive duration")
    return result
