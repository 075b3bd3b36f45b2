"""The categories file: departments and categories an operator edits by hand."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.core.durations import parse_duration


@dataclass(frozen=True)
class DepartmentSpec:
    code: str
    name: str


@dataclass(frozen=True)
class CategorySpec:
    code: str
    title: str
    department: str
    emoji: str = ""
    answer_deadline: timedelta | None = None
    solution_deadline: timedelta | None = None
    regional: bool = False
    position: int = 0


@dataclass(frozen=True)
class Catalog:
    departments: list[DepartmentSpec]
    categories: list[CategorySpec]


class CatalogError(ValueError):
    pass


# Codes travel inside button data (Telegram allows 64 bytes): short ASCII slugs only.
CODE = re.compile(r"^[a-z0-9_-]{1,32}$")


def load_catalog(path: Path) -> Catalog:
    """Read and validate the file; every problem names the entry at fault."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    departments: list[DepartmentSpec] = []
    for index, item in enumerate(raw.get("department", [])):
        code, name = item.get("code"), item.get("name")
        if not code or not name:
            raise CatalogError(f"{path}: department #{index + 1} needs code and name")
        if not CODE.match(str(code)):
            raise CatalogError(f"{path}: department code {code!r}: use a-z, 0-9, _ or -, ≤ 32")
        departments.append(DepartmentSpec(code=str(code), name=str(name)))
    known = {d.code for d in departments}
    if len(known) != len(departments):
        raise CatalogError(f"{path}: department codes must be unique")
    categories: list[CategorySpec] = []
    for index, item in enumerate(raw.get("category", [])):
        code, title, department = item.get("code"), item.get("title"), item.get("department")
        if not code or not title or not department:
            raise CatalogError(f"{path}: category #{index + 1} needs code, title and department")
        if not CODE.match(str(code)):
            raise CatalogError(f"{path}: category code {code!r}: use a-z, 0-9, _ or -, ≤ 32")
        if department not in known:
            raise CatalogError(f"{path}: category {code!r} names unknown department {department!r}")
        parsed = _deadline(path, str(code), item, "answer_deadline")
        solution = _deadline(path, str(code), item, "solution_deadline")
        categories.append(
            CategorySpec(
                code=str(code),
                title=str(title),
                department=str(department),
                emoji=str(item.get("emoji", "")),
                answer_deadline=parsed,
                solution_deadline=solution,
                regional=bool(item.get("regional", False)),
                position=index,
            )
        )
    if not categories:
        raise CatalogError(f"{path}: no categories")
    if len({c.code for c in categories}) != len(categories):
        raise CatalogError(f"{path}: category codes must be unique")
    return Catalog(departments=departments, categories=categories)


def _deadline(path: Path, code: str, item: Mapping[str, Any], key: str) -> timedelta | None:
    value = item.get(key)
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise CatalogError(f"{path}: category {code!r}: {key}: {exc}") from exc
