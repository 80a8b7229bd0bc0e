"""Named SQL queries, loaded once from the ``.sql`` files in ``db/queries/``.

Each query starts with ``-- name: <name>`` and a one-line ``-- <description>``; the name is
unique across all files. Nothing else in hrwsi writes SQL.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import LiteralString

_HEADER = re.compile(r"^--\s*name:\s*([a-z0-9_]+)\s*$", re.MULTILINE)


def parse(text: str, source: str) -> dict[str, str]:
    """Split one .sql file into its named queries."""
    found: dict[str, str] = {}
    parts = _HEADER.split(text)
    if parts[0].strip() and not all(
        line.startswith("--") or not line.strip() for line in parts[0].splitlines()
    ):
        raise ValueError(f"{source}: SQL before the first '-- name:' header")
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = body.strip().rstrip(";").strip()
        if not sql:
            raise ValueError(f"{source}: query {name!r} is empty")
        if name in found:
            raise ValueError(f"{source}: query {name!r} defined twice")
        found[name] = sql
    return found


@cache
def _all() -> dict[str, LiteralString]:
    queries: dict[str, LiteralString] = {}
    folder = resources.files("hrwsi.db") / "queries"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, sql in parse(entry.read_text(encoding="utf-8"), entry.name).items():
            if name in queries:
                raise ValueError(f"{entry.name}: query {name!r} is also defined in another file")
            queries[name] = sql
    return queries


def get(name: str) -> LiteralString:
    """The SQL of the named query (a KeyError names a missing query)."""
    try:
        # Loaded from files shipped in the package, never from user input.
        return _all()[name]
    except KeyError:
        raise KeyError(f"no SQL query named {name!r} in hrwsi/db/queries/*.sql") from None


def names() -> list[str]:
    return sorted(_all())
