"""Configuration: defaults, the TOML file, HRWSI_* overrides, clear errors, hidden secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hrwsi import config
from hrwsi.domain import errors

PASSWORD = "s3cr3t-Pa55"
TOKEN = "nomad-t0ken-abcdef"


def write(tmp_path: Path, text: str, name: str = "hrwsi.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def failure(path: Path | None, env: dict[str, str] | None = None) -> errors.ConfigError:
    with pytest.raises(errors.ConfigError) as caught:
        config.load(path, env or {})
    return caught.value


def test_defaults_are_valid_and_match_the_v1_seeds() -> None:
    """With no file and no variable the defaults load: v1 routines/conditions, local executor."""
    cfg = config.load(None, {})
    assert cfg.database.url is None
    assert cfg.executor.kind == "local"
    assert [(r.name, r.cpu, r.input_type, r.product_data_type) for r in cfg.routines] == [
        ("MAJA", 5, "MSIL1C", "L2A"),
        ("FSC", 2, "L2A", "L2B"),
    ]
    assert {c.name: c.routine for c in cfg.processing_conditions} == {
        "MAJA_PC": "MAJA",
        "FSC_PC": "FSC",
    }
    assert cfg.routine_of_condition("FSC_PC").product_type_code == "S2_FSC_L2B"


def test_toml_values_are_read(tmp_path: Path) -> None:
    """Values of every kind come from the file: scalars, nested sections, arrays of tables."""
    path = write(
        tmp_path,
        """
[catalogue]
page_size = 200
base_url = "https://example.test/odata/v1/"

[executor]
kind = "nomad"
[executor.nomad]
datacenters = ["eu-1", "eu-2"]

[[harvester.queries]]
name = "l1c"
processing_condition = "MAJA_PC"
tiles = ["T31TCH", "32tlr"]
geometry = "POLYGON((0 0, 1 0, 1 1, 0 0))"

[scheduling]
workers = [{ name = "w1", flavour = "MAJA" }]
""",
    )
    cfg = config.load(path, {})
    assert cfg.catalogue.page_size == 200
    assert cfg.catalogue.base_url == "https://example.test/odata/v1"
    assert cfg.executor.kind == "nomad"
    assert cfg.executor.nomad.datacenters == ("eu-1", "eu-2")
    assert cfg.harvester.queries[0].tiles == ("31TCH", "32TLR")
    assert cfg.scheduling.workers[0].flavour == "MAJA"


def test_hrwsi_config_names_the_file_and_local_file_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HRWSI_CONFIG picks the file; without it ./hrwsi.toml is read when present."""
    chosen = write(tmp_path, "[catalogue]\npage_size = 7\n", "chosen.toml")
    assert config.load(env={"HRWSI_CONFIG": str(chosen)}).catalogue.page_size == 7
    monkeypatch.chdir(tmp_path)
    assert config.config_path({}) is None
    write(tmp_path, "[catalogue]\npage_size = 9\n")
    assert config.load(env={}).catalogue.page_size == 9


def test_named_environment_variables_override_the_file(tmp_path: Path) -> None:
    """HRWSI_DATABASE_URL, HRWSI_EXECUTOR, HRWSI_NOMAD_* and HRWSI_DATA_DIR win over the file."""
    path = write(tmp_path, '[executor]\nkind = "local"\n[database]\nurl = "postgresql://a@b/c"\n')
    cfg = config.load(
        path,
        {
            "HRWSI_DATABASE_URL": "postgresql://u@h:5432/db",
            "HRWSI_EXECUTOR": "nomad",
            "HRWSI_NOMAD_ADDR": "http://nomad.test:4646",
            "HRWSI_NOMAD_TOKEN": TOKEN,
            "HRWSI_DATA_DIR": str(tmp_path / "data"),
            "HRWSI_CATALOGUE_URL": "http://cat.test",
        },
    )
    assert cfg.database.url is not None
    assert cfg.database.url.get_secret_value() == "postgresql://u@h:5432/db"
    assert cfg.executor.kind == "nomad"
    assert cfg.executor.nomad.address == "http://nomad.test:4646"
    assert cfg.executor.nomad.token is not None
    assert cfg.executor.nomad.token.get_secret_value() == TOKEN
    assert cfg.database.data_dir == tmp_path / "data"
    assert cfg.catalogue.base_url == "http://cat.test"


def test_section_key_variables_override_any_scalar(tmp_path: Path) -> None:
    """HRWSI_<SECTION>__<KEY> (and deeper) set scalar keys, converted by the schema."""
    path = write(tmp_path, "[catalogue]\npage_size = 10\n")
    cfg = config.load(
        path,
        {
            "HRWSI_CATALOGUE__PAGE_SIZE": "500",
            "HRWSI_EXECUTOR__LOCAL__MAX_PARALLEL": "2",
            "HRWSI_RETRY__MAX_TASKS_PER_INPUT": "3",
            "HRWSI_TEST_DATABASE_URL": "ignored",
            "HRWSI_TASK_ID": "ignored too (the run contract)",
        },
    )
    assert cfg.catalogue.page_size == 500
    assert cfg.executor.local.max_parallel == 2
    assert cfg.retry.max_tasks_per_input == 3


def test_empty_named_variable_is_ignored() -> None:
    """An empty HRWSI_DATABASE_URL means 'not set': the embedded default stays."""
    assert config.load(None, {"HRWSI_DATABASE_URL": ""}).database.url is None


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    """A TOML syntax error says which file and where."""
    path = write(tmp_path, "[catalogue\npage_size = 1\n")
    error = failure(path)
    assert error.source == str(path)
    assert str(path) in str(error)
    assert "line 1" in str(error)


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    """A missing file, a directory or a binary file is a ConfigError naming it, not a crash."""
    for path in (tmp_path / "missing.toml", tmp_path, write(tmp_path, "", "x.toml")):
        if path.name == "x.toml":
            path.write_bytes(b"\xff\xfe\x00bad")
        error = failure(path)
        assert error.source == str(path), path


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[catalogue]\npage_size = 5000\n", "catalogue.page_size"),
        ("[catalogue]\npage_size = 'many'\n", "catalogue.page_size"),
        ("[catalogue]\nbase_url = 'ftp://x'\n", "catalogue.base_url"),
        (
            "[[harvester.queries]]\nname = 'q'\nprocessing_condition = 'NOPE_PC'\n",
            "harvester.queries.0.processing_condition",
        ),
        ("[[harvester.queries]]\nname = 'q'\nprocessing_condition = 'x y'\n", None),
        (
            "[[harvester.queries]]\nname = 'q'\nprocessing_condition = 'MAJA_PC'\n"
            "tiles = ['31TCH', 'nope']\n",
            "harvester.queries.0.tiles",
        ),
        ("[executor]\nkind = 'kubernetes'\n", "executor.kind"),
        (
            "[[processing_conditions]]\nname = 'X_PC'\nroutine = 'NOPE'\n",
            "processing_conditions.0.routine",
        ),
        (
            "[scheduling]\nworkers = [{ name = 'w', flavour = 'BIG' }]\n",
            "scheduling.workers.0.flavour",
        ),
    ],
)
def test_invalid_value_names_file_and_dotted_key(
    tmp_path: Path, text: str, key: str | None
) -> None:
    """A bad value is reported with the file and the dotted path of the key."""
    path = write(tmp_path, text)
    error = failure(path)
    assert error.source == str(path)
    expected = key or "harvester.queries.0.processing_condition"
    assert error.key == expected
    assert f"{path}: {expected}: " in str(error)


def test_unknown_key_is_rejected_by_name(tmp_path: Path) -> None:
    """A misspelt key is an error naming it, not silently ignored."""
    error = failure(write(tmp_path, "[catalogue]\npagesize = 10\n"))
    assert error.key == "catalogue.pagesize"
    error = failure(write(tmp_path, "[catalog]\npage_size = 10\n"))
    assert error.key == "catalog"


def test_bad_environment_value_blames_the_environment(tmp_path: Path) -> None:
    """A bad HRWSI_* value is attributed to the variable, even when the file sets that key."""
    path = write(tmp_path, "[catalogue]\npage_size = 10\n")
    error = failure(path, {"HRWSI_CATALOGUE__PAGE_SIZE": "0"})
    assert error.key == "catalogue.page_size"
    assert "HRWSI_CATALOGUE__PAGE_SIZE" in error.source
    error = failure(None, {"HRWSI_EXECUTOR": "docker"})
    assert error.key == "executor.kind"
    assert "HRWSI_EXECUTOR" in error.source


def test_file_value_is_not_blamed_on_an_unrelated_variable(tmp_path: Path) -> None:
    """The file's own bad value names the file alone, whatever HRWSI_* variables exist."""
    path = write(tmp_path, "[catalogue]\npage_size = 0\n")
    error = failure(path, {"HRWSI_EXECUTOR": "local"})
    assert error.source == str(path)


def test_non_postgres_database_url_is_rejected_without_echoing_it() -> None:
    """database.url must be a PostgreSQL URL; the error does not repeat the (secret) value."""
    error = failure(None, {"HRWSI_DATABASE_URL": f"mysql://u:{PASSWORD}@h/db"})
    assert error.key == "database.url"
    assert PASSWORD not in str(error)


def test_secrets_never_appear_in_repr_str_or_json(tmp_path: Path) -> None:
    """The database password and the Nomad token are hidden in repr, str and JSON dumps."""
    path = write(tmp_path, f'[executor.nomad]\ntoken = "{TOKEN}"\n')
    cfg = config.load(path, {"HRWSI_DATABASE_URL": f"postgresql://u:{PASSWORD}@h:5432/db"})
    for text in (
        repr(cfg),
        str(cfg),
        cfg.model_dump_json(),
        repr(cfg.database),
        str(cfg.executor),
        repr(cfg.model_dump()),
    ):
        assert PASSWORD not in text
        assert TOKEN not in text
    assert cfg.database.url is not None
    assert PASSWORD in cfg.database.url.get_secret_value()


def test_default_data_dir_for_root_and_other_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root gets /var/lib/hrwsi; others $XDG_DATA_HOME/hrwsi; HRWSI_DATA_DIR beats both."""
    monkeypatch.delenv("HRWSI_DATA_DIR")  # set for every test by the conftest
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert config.default_data_dir() == Path("/var/lib/hrwsi")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert config.default_data_dir() == tmp_path / "xdg" / "hrwsi"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.default_data_dir() == tmp_path / "home" / ".local" / "share" / "hrwsi"
    monkeypatch.setenv("HRWSI_DATA_DIR", str(tmp_path / "explicit"))
    assert config.default_data_dir() == tmp_path / "explicit"


def test_config_is_frozen() -> None:
    """A loaded configuration cannot be changed by the services sharing it."""
    cfg = config.load(None, {})
    with pytest.raises(ValueError, match="frozen"):
        cfg.catalogue.page_size = 3  # type: ignore[misc]
