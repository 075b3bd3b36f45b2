"""Appeal numbers: the year and a gap-free sequence within it, like 2026-000123."""

from __future__ import annotations

import re


def appeal_number(year: int, seq: int) -> str:
    return f"{year}-{seq:06d}"


def normalize_number(text: str, default_year: int | None = None) -> str | None:
    """Accept what staff type: «№ 2026-000123», «2026-123», «2026/123», or «123» for
    ``default_year`` (this year). ASCII digits only, six at most."""
    cleaned = text.strip().lstrip("№").strip().replace("/", "-").replace(" ", "")
    bare = re.fullmatch(r"\d{1,6}", cleaned, re.ASCII)
    if bare and default_year is not None and int(cleaned) > 0:
        return appeal_number(default_year, int(cleaned))
    full = re.fullmatch(r"(\d{4})-(\d{1,6})", cleaned, re.ASCII)
    if full is None or int(full.group(2)) == 0:
        return None
    return appeal_number(int(full.group(1)), int(full.group(2)))
