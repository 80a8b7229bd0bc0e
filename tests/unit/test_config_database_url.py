"""A malformed database URL is a configuration error that never shows the password."""

from __future__ import annotations

import traceback

import pytest

from hrwsi import config
from hrwsi.domain import errors


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://hrwsi:s3cr%zzet@db.example:5432/hrwsi",
        "host=db.example password='s3cr%zzet",
        "postgresql://hrwsi:s3cr%zzet@db.example:notaport/hrwsi",
    ],
)
def test_a_malformed_url_is_rejected_without_its_password(url: str) -> None:
    """Bad percent-encoding, an unterminated quote or a non-numeric port fail at load with a
    ConfigError naming database.url, and no message or chained exception quotes the password
    (before: accepted, then libpq's error echoed it, or describe() crashed on the port)."""
    with pytest.raises(errors.ConfigError) as caught:
        config.load(env={"HRWSI_DATABASE_URL": url})
    assert "database.url" in str(caught.value)
    text = "".join(traceback.format_exception(caught.value))
    assert "s3cr" not in text


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://hrwsi:s3cret@db.example:5432/hrwsi",
        "postgresql://hrwsi@h1:5432,h2:5433/hrwsi",
        "postgresql:///hrwsi?host=/var/run/postgresql",
        "host=db.example port=5432 dbname=hrwsi",
    ],
)
def test_valid_urls_are_accepted(url: str) -> None:
    """URLs and key=value strings libpq accepts (multi-host, socket dirs) still load."""
    loaded = config.load(env={"HRWSI_DATABASE_URL": url})
    assert loaded.database.url is not None
    assert loaded.database.url.get_secret_value() == url


async def test_connect_never_quotes_a_malformed_url_with_its_password() -> None:
    """A connection string libpq cannot parse fails as DatabaseError without the password."""
    import pytest as _pytest

    from hrwsi.db import connect
    from hrwsi.domain import errors as _errors

    url = "postgresql://user:hunter2%zzsecret@127.0.0.1:5432/db"
    with _pytest.raises(_errors.DatabaseError) as caught:
        await connect.connect(url)
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert "hunter2" not in connect.describe("postgresql://u:hunter2@host:notaport/db")
