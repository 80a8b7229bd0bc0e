"""Create or upgrade the ``hrwsi`` schema from the numbered ``migrations/NNNN_name.sql`` files.

Each file is recorded in ``hrwsi.schema_migrations`` with a checksum; a run takes an advisory
lock so that two processes migrating at once apply each file once. All pending files run in
ONE transaction: when one fails (say, 0003 refusing duplicate inputs in a v1 database) the
whole run is rolled back, so the database is left exactly as it was, without even the
``schema_migrations`` table. The first migrations are written to be no-ops on an existing
HR-WSI v1 database, which therefore upgrades in place with its data.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg.rows import TupleRow

from hrwsi.db import queries
from hrwsi.domain import errors

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# An arbitrary constant: the advisory lock key for migrations ("hrwsi" in ASCII).
MIGRATION_LOCK_KEY = 0x687277_7369


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """Every migration shipped with the package, in order."""
    found: list[Migration] = []
    folder = resources.files("hrwsi.db") / "migrations"
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            sql = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], sql))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise errors.MigrationError(f"two migration files share a number: {versions}")
    return found


@dataclass(frozen=True)
class MigrationReport:
    applied: list[Migration]
    already: int

    @property
    def changed(self) -> bool:
        return bool(self.applied)


async def migrate(conn: psycopg.AsyncConnection[TupleRow]) -> MigrationReport:
    """Apply every pending migration; a no-op when the schema is up to date."""
    if not conn.autocommit:
        raise errors.MigrationError("migrate() needs an autocommit connection")
    await conn.execute(queries.get("migrations_lock"), (MIGRATION_LOCK_KEY,))
    try:
        applied: list[Migration] = []
        async with conn.transaction():  # all or nothing: see the module docstring
            await conn.execute(queries.get("migrations_create_table"))
            cur = await conn.execute(queries.get("migrations_applied"))
            done = {int(row[0]): str(row[1]) for row in await cur.fetchall()}
            for migration in available():
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        log.warning(
                            "db.migration.changed_since_applied",
                            extra={"version": migration.version, "migration": migration.name},
                        )
                    continue
                try:
                    await conn.execute(migration.sql.encode())  # many statements, no params
                    await conn.execute(
                        queries.get("migrations_record"),
                        (migration.version, migration.name, migration.checksum),
                    )
                except psycopg.Error as exc:
                    raise errors.MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed "
                        f"(nothing was changed): {exc.diag.message_primary or exc}"
                    ) from exc
                applied.append(migration)
        for migration in applied:
            log.info(
                "db.migration.applied",
                extra={"version": migration.version, "migration": migration.name},
            )
        return MigrationReport(applied=applied, already=len(done))
    finally:
        await conn.execute(queries.get("migrations_unlock"), (MIGRATION_LOCK_KEY,))


async def pending(conn: psycopg.AsyncConnection[TupleRow]) -> list[Migration]:
    """Migrations not applied yet (all of them on a database without the hrwsi schema)."""
    cur = await conn.execute(queries.get("migrations_table_exists"))
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return available()
    cur = await conn.execute(queries.get("migrations_applied"))
    done = {int(r[0]) for r in await cur.fetchall()}
    return [m for m in available() if m.version not in done]


async def readiness(conn: psycopg.AsyncConnection[TupleRow]) -> str | None:
    """Why this database cannot be used by this version of hrwsi yet, naming the fix; None
    when its schema is up to date. One sentence, no SQL: every command prints it as is."""
    cur = await conn.execute(queries.get("migrations_table_exists"))
    row = await cur.fetchone()
    if row is None or row[0] is None:
        cur = await conn.execute(queries.get("migrations_schema_exists"))
        found = await cur.fetchone()
        if found is None or found[0] is None:
            return "the database has no hrwsi schema: run 'hrwsi db init' to create it"
        return (
            "the database holds an hrwsi schema this version did not create (HR-WSI v1?): "
            "run 'hrwsi db migrate' to upgrade it in place"
        )
    missing = await pending(conn)
    if missing:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        return (
            f"the hrwsi schema is out of date ({len(missing)} migration"
            f"{'s' if len(missing) > 1 else ''} pending: {names}{more}): run 'hrwsi db migrate'"
        )
    return None
