"""Configuration checked as a whole: every problem at once, blamed on its source (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrwsi import config
from hrwsi.domain import errors


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hrwsi.toml"
    path.write_text(text, encoding="utf-8")
    return path


def failure(path: Path | None, env: dict[str, str] | None = None) -> errors.ConfigError:
    with pytest.raises(errors.ConfigError) as caught:
        config.load(path, env or {})
    return caught.value


# --- item 2: variables -------------------------------------------------------------------


def test_a_misspelt_variable_is_an_error_naming_the_closest_known_one() -> None:
    """HRWSI_DATABSE_URL is refused (not silently ignored), suggesting HRWSI_DATABASE_URL."""
    error = failure(None, {"HRWSI_DATABSE_URL": "postgresql://u@h/db"})
    assert "HRWSI_DATABSE_URL" in error.source
    assert "did you mean HRWSI_DATABASE_URL?" in str(error)


def test_a_misspelt_section_variable_suggests_the_key() -> None:
    """HRWSI_CATALOGUE__PAGESIZE names the variable and HRWSI_CATALOGUE__PAGE_SIZE."""
    error = failure(None, {"HRWSI_CATALOGUE__PAGESIZE": "10"})
    assert "HRWSI_CATALOGUE__PAGESIZE" in str(error)
    assert "HRWSI_CATALOGUE__PAGE_SIZE" in str(error)


def test_run_contract_test_and_bench_variables_stay_allowed() -> None:
    """Variables of routines (HRWSI_TASK_ID, HRWSI_META_*), tests and benchmarks are no error."""
    env = {
        "HRWSI_TASK_ID": "3",
        "HRWSI_INPUT_PATHS": "[]",
        "HRWSI_META_TILE": "31TCH",
        "HRWSI_TEST_DATABASE_URL": "postgresql://x@y/z",
        "HRWSI_TEST_DATA_DIR": "/tmp/x",
        "HRWSI_BENCH_DATA_DIR": "/tmp/y",
        "HRWSI_CONFIG": "",
        "HRWSI_DASHBOARD_TOKEN": "t0k",
    }
    cfg = config.load(None, env)
    assert cfg.dashboard.token is not None
    assert cfg.dashboard.token.get_secret_value() == "t0k"


def test_a_bad_section_variable_names_that_variable_only() -> None:
    """HRWSI_SCHEDULING__CPU_MAX=abc blames that variable, not every HRWSI_* variable set."""
    error = failure(
        None,
        {
            "HRWSI_SCHEDULING__CPU_MAX": "abc",
            "HRWSI_EXECUTOR": "local",
            "HRWSI_CATALOGUE__PAGE_SIZE": "10",
        },
    )
    assert error.source == "environment variable HRWSI_SCHEDULING__CPU_MAX"
    assert error.key == "scheduling.cpu_max"
    assert "HRWSI_EXECUTOR" not in str(error)
    assert "HRWSI_CATALOGUE__PAGE_SIZE" not in str(error)


def test_missing_fields_are_all_listed_and_blamed_on_the_file(tmp_path: Path) -> None:
    """A routine without its required fields lists each of them, blaming the file alone."""
    path = write(tmp_path, "[[routines]]\nname = 'R'\ncpu = 1\n")
    error = failure(path, {"HRWSI_EXECUTOR": "local"})
    missing = {"ram", "storage", "duration", "input_type", "product_data_type"}
    assert len(error.problems) >= len(missing) + 1
    for key in missing:
        assert f"{path}: routines.0.{key}: is required but missing" in error.problems
    assert "HRWSI_EXECUTOR" not in str(error)


# --- item 4: routines within the quotas and the horizon ----------------------------------


@pytest.mark.parametrize("resource", ["cpu", "ram", "storage"])
def test_a_routine_larger_than_a_quota_is_refused(tmp_path: Path, resource: str) -> None:
    """MAJA needing 50 of a resource whose quota is 10 names the routine key and the quota."""
    path = write(
        tmp_path,
        f"[scheduling]\n{resource}_max = 10\n"
        "[[routines]]\nname = 'BIG'\ncpu = 5\nram = 5\nstorage = 5\nduration = 5\n"
        "input_type = 'A'\nproduct_data_type = 'B'\nproduct_type_code = 'C'\n"
        f"{resource} = 50\n"
        "[[processing_conditions]]\nname = 'BIG_PC'\nroutine = 'BIG'\n",
    )
    path.write_text(path.read_text().replace(f"{resource} = 5\n", "", 1), encoding="utf-8")
    error = failure(path)
    assert error.source == str(path)
    assert error.key == f"routines.0.{resource}"
    assert f"scheduling.{resource}_max 10" in str(error)


def test_a_routine_longer_than_the_horizon_is_refused() -> None:
    """A default routine (MAJA, 5 minutes) with t_max_minutes 3 names both keys."""
    error = failure(None, {"HRWSI_SCHEDULING__T_MAX_MINUTES": "3"})
    assert error.key == "routines.0.duration"
    assert "scheduling.t_max_minutes 3" in str(error)
    # the variable that made the contradiction is the one blamed
    assert error.source == "environment variable HRWSI_SCHEDULING__T_MAX_MINUTES"


# --- item 5: duplicate names -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            "[[processing_conditions]]\nname = 'A_PC'\nroutine = 'MAJA'\n"
            "[[processing_conditions]]\nname = 'A_PC'\nroutine = 'FSC'\n",
            "processing_conditions.1.name",
        ),
        (
            "[[harvester.queries]]\nname = 'q'\nprocessing_condition = 'MAJA_PC'\n"
            "[[harvester.queries]]\nname = 'q'\nprocessing_condition = 'MAJA_PC'\n",
            "harvester.queries.1.name",
        ),
        (
            "[scheduling]\nworkers = [{ name = 'w', flavour = 'MAJA' },"
            " { name = 'w', flavour = 'FSC' }]\n",
            "scheduling.workers.1.name",
        ),
        (
            "".join(
                "[[routines]]\nname = 'R'\ncpu = 1\nram = 1\nstorage = 1\nduration = 1\n"
                "input_type = 'A'\nproduct_data_type = 'B'\nproduct_type_code = 'C'\n"
                for _ in range(2)
            )
            + "[[processing_conditions]]\nname = 'R_PC'\nroutine = 'R'\n",
            "routines.1.name",
        ),
    ],
)
def test_duplicate_names_are_refused(tmp_path: Path, text: str, key: str) -> None:
    """The same condition, query, worker or routine name twice names the second one's key."""
    path = write(tmp_path, text)
    error = failure(path)
    assert error.source == str(path)
    assert error.key == key
    assert "duplicate" in str(error)


# --- item 6: geometry --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wkt", "words"),
    [
        ("POINTLESS nonsense ()", "not valid WKT"),
        ("POLYGON((0 0, 1 0, 1 1, 0 0)) trailing", "not valid WKT"),
        ("POLYGON((0 0, 1 0, 1 1, 0 0\x00))", "NUL"),
        ("POINT (1 2)", "POLYGON"),
        ("POLYGON((0 0, 2 2, 2 0, 0 2, 0 0))", "not a valid polygon"),
        ("POLYGON((170 0, 190 0, 190 10, 170 0))", "EPSG:4326"),
        ("POLYGON((0 80, 1 80, 1 95, 0 80))", "EPSG:4326"),
    ],
)
def test_a_geometry_must_be_a_valid_polygon_in_epsg_4326(
    tmp_path: Path, wkt: str, words: str
) -> None:
    """Geometries go through a real WKT parser: garbage, NUL, points, bow-ties, 190°E refused."""
    path = tmp_path / "hrwsi.toml"
    text = "[[harvester.queries]]\nname = 'q'\nprocessing_condition = 'MAJA_PC'\ngeometry = "
    escaped = wkt.replace("\x00", "\\u0000")
    path.write_text(text + f'"{escaped}"\n', encoding="utf-8")
    error = failure(path)
    assert error.key == "harvester.queries.0.geometry"
    assert words in str(error)


def test_a_valid_multipolygon_is_kept() -> None:
    """A valid MULTIPOLYGON within ranges is accepted as written."""
    wkt = "MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))"
    query = config.HarvestQuery(name="q", processing_condition="MAJA_PC", geometry=wkt)
    assert query.geometry == wkt


# --- item 7: retry settings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"HRWSI_RETRY__BACKOFF_INITIAL_S": "700"}, "retry.backoff_initial_s"),
        ({"HRWSI_CATALOGUE__BACKOFF_INITIAL_S": "100"}, "catalogue.backoff_initial_s"),
        ({"HRWSI_EXECUTOR__NOMAD__BACKOFF_MAX_S": "0.1"}, "executor.nomad.backoff_initial_s"),
        ({"HRWSI_RETRY__EXTERNAL_ERROR_RETRIES": "4"}, "retry.external_error_retries"),
        ({"HRWSI_RETRY__MAX_ATTEMPTS_PER_TASK": "1"}, "retry.external_error_retries"),
        ({"HRWSI_RETRY__INTERNAL_ERROR_RETRIES": "9"}, "retry.internal_error_retries"),
    ],
)
def test_contradictory_retry_settings_are_refused(env: dict[str, str], key: str) -> None:
    """A backoff starting above its ceiling, more retries than attempts: refused by key."""
    error = failure(None, env)
    assert error.key == key
    (variable,) = env
    assert variable in error.source


def test_every_cross_setting_problem_is_listed_at_once() -> None:
    """Two independent contradictions are both reported, not only the first."""
    error = failure(
        None, {"HRWSI_RETRY__BACKOFF_INITIAL_S": "700", "HRWSI_SCHEDULING__CPU_MAX": "1"}
    )
    keys = " ".join(error.problems)
    assert "retry.backoff_initial_s" in keys
    assert "routines.0.cpu" in keys and "routines.1.cpu" in keys


# --- config show: where each value came from ---------------------------------------------


def test_origins_say_default_file_or_variable(tmp_path: Path) -> None:
    """Each setting is attributed to the defaults, the file or the variable that set it."""
    path = write(tmp_path, "[catalogue]\npage_size = 10\nmax_attempts = 3\n")
    loaded = config.load_with_origins(
        path,
        {
            "HRWSI_CATALOGUE__PAGE_SIZE": "20",
            "HRWSI_NOMAD_TOKEN": "tok-123456",
            "HRWSI_DATABASE_URL": "postgresql://u:pw-987@h/db",
        },
    )
    rows = {key: (value, origin) for key, value, origin in config.describe_sources(loaded)}
    assert rows["catalogue.page_size"] == ("20", "variable HRWSI_CATALOGUE__PAGE_SIZE")
    assert rows["catalogue.max_attempts"] == ("3", f"file {path}")
    assert rows["catalogue.read_timeout_s"] == ("60.0", "default")
    assert rows["routines.0.name"] == ('"MAJA"', "default")
    assert rows["executor.nomad.token"] == (config.SECRET_MASK, "variable HRWSI_NOMAD_TOKEN")
    assert rows["database.url"][0] == config.SECRET_MASK
    printed = repr(rows)
    assert "tok-123456" not in printed and "pw-987" not in printed
