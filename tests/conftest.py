"""Shared fixtures: a scrubbed environment and real PostgreSQL databases.

Database tests run on ``HRWSI_TEST_DATABASE_URL`` when it is set, else on an embedded
PostgreSQL. A migrated template database is made once per session; each test gets a fresh
copy (``CREATE DATABASE ... TEMPLATE``), dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from hrwsi.testing import databases

_KEEP = {"HRWSI_TEST_DATABASE_URL", "HRWSI_TEST_DATA_DIR"}


@pytest.fixture(autouse=True)
def _scrub_hrwsi_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HRWSI_* variable of the developer's shell leaks into a test, and the default data
    dir (embedded database, local runs, products) is the test's own temporary folder."""
    for key in list(os.environ):
        if key.startswith("HRWSI_") and key not in _KEEP:
            monkeypatch.delenv(key)
    monkeypatch.setenv("HRWSI_DATA_DIR", str(tmp_path / "hrwsi-data"))


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of a PostgreSQL server on which the tests may create databases."""
    return databases.server_url()


@pytest.fixture(scope="session")
def template_database(pg_admin_url: str) -> Iterator[str]:
    """Name of a database migrated and seeded once per session, copied for each test."""
    name = databases.unique_name("hrwsi_tpl")
    databases.create_migrated_database(pg_admin_url, name)
    yield name
    databases.drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(pg_admin_url: str, template_database: str) -> Iterator[str]:
    """URL of a fresh migrated database for this test only."""
    name = databases.unique_name("hrwsi_t")
    url = databases.create_database(pg_admin_url, name, template=template_database)
    yield url
    databases.drop_database(pg_admin_url, name)


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """URL of a fresh database with nothing in it (no hrwsi schema)."""
    name = databases.unique_name("hrwsi_e")
    url = databases.create_database(pg_admin_url, name)
    yield url
    databases.drop_database(pg_admin_url, name)


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """An autocommit async connection to this test's database."""
    connection = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    async with connection:
        yield connection
