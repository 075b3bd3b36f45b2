"""Appeal numbers: the year and a gap-free sequence within it, like 2026-000123."""

from __future__ import annotations


def appeal_number(year: int, seq: int) -> str:
    return f"{year}-{seq:06d}"


def normalize_number(text: str, default_year: int | None = None) -> str | None:
    """Accept what staff type: «№ 2026-000123», «2026-123», «2026/123», or «123» for
    ``default_year`` (this year)."""
    cleaned = text.strip().lstrip("№").strip().replace("/", "-").replace(" ", "")
    if cleaned.isdigit() and default_year is not None and 0 < len(cleaned) <= 6:
        return appeal_number(default_year, int(cleaned))
    parts = cleaned.split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        return None
    return appeal_number(int(parts[0]), int(parts[1]))
