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
