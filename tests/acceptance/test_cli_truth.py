"""Every command tells the truth and fails clearly (issue 16), run as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from hrwsi.db import connect


def hrwsi(*args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``hrwsi ARGS`` in a fresh interpreter, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "hrwsi", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env.update(extra)
    return env


def flat(text: str) -> str:
    """Whitespace removed: rich wraps stderr at 80 columns when it is not a terminal."""
    return "".join(text.split())


def one_clean_error(result: subprocess.CompletedProcess[str], fix: str) -> None:
    """Exit 2, one error line naming the fix, no traceback, no SQL."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "LINE " not in output and "FROM " not in output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert flat(fix) in flat(result.stderr), output


# --- item 1: a missing or outdated schema ------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("status",), ("status", "--json"), ("plan", "--dry-run"), ("retry", "1"), ("run",)],
)
def test_a_database_without_schema_says_run_db_init(empty_db_url: str, args: tuple[str]) -> None:
    """On a database with no hrwsi schema every command says so in one line: hrwsi db init."""
    result = hrwsi(*args, env=clean_env(HRWSI_DATABASE_URL=empty_db_url))
    one_clean_error(result, "no hrwsi schema: run 'hrwsi db init'")


@pytest.mark.parametrize("args", [("status", "--json"), ("plan", "--dry-run"), ("retry", "1")])
def test_an_outdated_schema_says_run_db_migrate(db_url: str, args: tuple[str]) -> None:
    """With a migration not applied, commands name 'hrwsi db migrate' instead of failing later."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM hrwsi.schema_migrations WHERE version = 40")
    result = hrwsi(*args, env=clean_env(HRWSI_DATABASE_URL=db_url))
    one_clean_error(result, "0040_event_times): run 'hrwsi db migrate'")


# --- item 2: variables and files ---------------------------------------------------------


def test_a_misspelt_database_variable_is_refused_not_ignored(tmp_path: Path) -> None:
    """HRWSI_DATABSE_URL stops the command (exit 2) instead of using the embedded database."""
    result = hrwsi(
        "status",
        env=clean_env(HRWSI_DATABSE_URL="postgresql://u@h/db", HRWSI_DATA_DIR=str(tmp_path / "d")),
    )
    assert result.returncode == 2, result.stderr
    assert "HRWSI_DATABSE_URL" in result.stderr
    assert flat("did you mean HRWSI_DATABASE_URL?") in flat(result.stderr)
    assert not (tmp_path / "d" / "pgdata").exists()  # no embedded database started


# --- config show, config check, --config -------------------------------------------------


def test_config_show_masks_secrets_and_says_where_values_came_from(tmp_path: Path) -> None:
    """show: file values say 'file', variables their name, the rest 'default'; no secret."""
    path = tmp_path / "site.toml"
    path.write_text('[catalogue]\npage_size = 77\n[executor.nomad]\ntoken = "tok-abc123"\n')
    env = clean_env(HRWSI_DATABASE_URL="postgresql://u:pw-xyz789@h:5499/db")
    result = hrwsi("--config", str(path), "config", "show", env=env)
    assert result.returncode == 0, result.stderr
    assert "tok-abc123" not in result.stdout and "pw-xyz789" not in result.stdout
    lines = {line.split(" = ")[0].strip(): line for line in result.stdout.splitlines()}
    assert lines["catalogue.page_size"].endswith(f"77  # file {path}")
    assert lines["database.url"].endswith("**********  # variable HRWSI_DATABASE_URL")
    assert lines["catalogue.max_attempts"].endswith("8  # default")
    as_json = json.loads(hrwsi("--config", str(path), "config", "show", "--json", env=env).stdout)
    assert as_json["executor.nomad.token"] == {"value": "**********", "origin": f"file {path}"}


def test_config_check_passes_and_fails_listing_every_problem(tmp_path: Path) -> None:
    """check: exit 0 on a good file; exit 2 naming the file and every key at fault."""
    good = tmp_path / "good.toml"
    good.write_text("[catalogue]\npage_size = 10\n")
    ok = hrwsi("--config", str(good), "config", "check", env=clean_env())
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout and str(good) in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[scheduling]\ncpu_max = 3\n[retry]\nbackoff_initial_s = 900\n")
    failed = hrwsi("--config", str(bad), "config", "check", env=clean_env())
    assert failed.returncode == 2
    text = flat(failed.stderr)
    for key in ("routines.0.cpu", "routines.0.cpu", "retry.backoff_initial_s"):
        assert flat(f"{bad}: {key}") in text, failed.stderr


def test_the_global_config_option_wins_over_hrwsi_config(tmp_path: Path) -> None:
    """--config FILE is read instead of HRWSI_CONFIG; a missing --config file is exit 2."""
    chosen = tmp_path / "chosen.toml"
    chosen.write_text("[catalogue]\npage_size = 12\n")
    other = tmp_path / "other.toml"
    other.write_text("[catalogue]\npage_size = 13\n")
    env = clean_env(HRWSI_CONFIG=str(other))
    shown = hrwsi("--config", str(chosen), "config", "show", env=env)
    assert "catalogue.page_size" in shown.stdout
    assert any(
        line.startswith("catalogue.page_size") and "= 12" in line
        for line in shown.stdout.splitlines()
    )
    missing = hrwsi("--config", str(tmp_path / "nope.toml"), "config", "check", env=env)
    assert missing.returncode == 2
    assert "nope.toml" in missing.stderr and "file not found" in missing.stderr


# --- item 13: small lies -----------------------------------------------------------------


def test_db_init_prints_each_applied_migration_once(empty_db_url: str) -> None:
    """'applied 0001_…' appears once across stdout and stderr, not once in each."""
    result = hrwsi("db", "init", env=clean_env(HRWSI_DATABASE_URL=empty_db_url))
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("hrwsi_v1_model") == 1, output  # not also a db.migration.applied log
    assert "applied 0001_hrwsi_v1_model" in result.stdout


@pytest.mark.parametrize("args", [(), ("status",), ("demo",), ("db", "init"), ("config", "show")])
def test_help_shows_flags_without_a_bool_placeholder(args: tuple[str, ...]) -> None:
    """--help lists flags as flags ('--json'), never as '--json <bool>'."""
    result = hrwsi(*args, "--help", env=clean_env())
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout
    assert "--help" in result.stdout


def test_a_key_value_connection_string_is_described_with_its_port() -> None:
    """'host=h port=5499 …' is described as h:5499, and never with its password."""
    described = connect.describe("host=db.example port=5499 user=op password=pw dbname=hrwsi")
    assert described == "postgresql://op@db.example:5499/hrwsi"
    assert "pw" not in described.replace("postgresql", "")
