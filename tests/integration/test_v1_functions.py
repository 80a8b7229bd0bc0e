"""The 22 v1 functions on a freshly migrated database, against results worked out by hand.

The rows are tests/fixtures/v1_data.sql (its header draws them); every expected value below
was derived from that file by reading it, not by running SQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hrwsi.testing import databases

FIXTURE = Path(__file__).parent.parent / "fixtures" / "v1_data.sql"
INPUT_COLUMNS = "id, processing_condition_name, date, tile, measurement_day, input_path, mission"
TASK_COLUMNS = (
    "id, input_fk_id, virtual_machine_id, creation_date, preceding_input_id, nomad_job_id,"
    " has_ended, intermediate_files_path"
)


def vm(letter: str) -> uuid.UUID:
    return uuid.UUID(f"a0000000-0000-0000-0000-00000000000{letter}")


def job(task: int) -> uuid.UUID:
    return uuid.UUID(f"b0000000-0000-0000-0000-{task:012d}")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def filled_url(pg_admin_url: str, template_database: str) -> Iterator[str]:
    """A migrated database holding the v1 fixture rows, shared by the read-only tests."""
    name = databases.unique_name("hrwsi_v1f")
    url = databases.create_database(pg_admin_url, name, template=template_database)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FIXTURE.read_text(encoding="utf-8").encode())
        yield url
    finally:
        databases.drop_database(pg_admin_url, name)


@pytest.fixture
async def filled(filled_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection to the shared filled database, read-only by convention."""
    conn = await psycopg.AsyncConnection.connect(filled_url, autocommit=True)
    async with conn:
        yield conn


@pytest.fixture
async def writable(conn: psycopg.AsyncConnection[Any]) -> psycopg.AsyncConnection[Any]:
    """This test's own migrated database holding the v1 fixture rows, for tests that write."""
    await conn.execute(FIXTURE.read_text(encoding="utf-8").encode())
    return conn


async def column(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> list[Any]:
    cur = await conn.execute(query.encode(), args)
    return [row[0] for row in await cur.fetchall()]


async def scalar(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    cur = await conn.execute(query.encode(), args)
    row = await cur.fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/eodata/S2/L1C/A.SAFE", [1, 10]), ("/products/L2A/B", [9]), ("/nope", []), (None, [])],
)
async def test_get_input_by_input_path(
    filled: psycopg.AsyncConnection[Any], path: str | None, expected: list[int]
) -> None:
    """Every input naming the path, whatever its condition (1 and 10 share one)."""
    ids = await column(filled, "SELECT id FROM hrwsi.get_input_by_input_path(%s)", path)
    assert sorted(ids) == expected


async def test_get_input_by_input_path_returns_whole_v1_rows(
    filled: psycopg.AsyncConnection[Any],
) -> None:
    """The rows carry their v1 columns unchanged."""
    cur = await filled.execute(
        f"SELECT {INPUT_COLUMNS} FROM hrwsi.get_input_by_input_path('/products/L2A/B')".encode()
    )
    assert await cur.fetchall() == [
        (9, "FSC_PC", at("2024-01-05 11:00"), "31TCJ", 20240105, "/products/L2A/B", "S2")
    ]


@pytest.mark.parametrize(
    ("day", "expected"), [(20240102, [1, 2, 3, 10]), (20240105, [7, 8, 9]), (20240101, [])]
)
async def test_get_input_by_measurement_day(
    filled: psycopg.AsyncConnection[Any], day: int, expected: list[int]
) -> None:
    """The inputs measured that day."""
    ids = await column(filled, "SELECT id FROM hrwsi.get_input_by_measurement_day(%s)", day)
    assert sorted(ids) == expected


@pytest.mark.parametrize(
    ("mission", "expected"),
    [("S1", [4]), ("S2", [1, 2, 3, 5, 7, 8, 9, 10, 11, 12]), ("S3", [])],
)
async def test_get_input_by_mission(
    filled: psycopg.AsyncConnection[Any], mission: str, expected: list[int]
) -> None:
    """The inputs of the mission; input 6 (mission NULL) is in none."""
    ids = await column(filled, "SELECT id FROM hrwsi.get_input_by_mission(%s)", mission)
    assert sorted(ids) == expected


@pytest.mark.parametrize(
    ("input_type", "expected"),
    [("MSIL1C", [1, 2, 4, 6, 7, 8, 11]), ("L2A", [3, 5, 9, 10, 12]), ("L2B", [])],
)
async def test_get_input_by_input_type(
    filled: psycopg.AsyncConnection[Any], input_type: str, expected: list[int]
) -> None:
    """Inputs whose condition's routine takes that type (MAJA: MSIL1C, FSC: L2A)."""
    ids = await column(filled, "SELECT id FROM hrwsi.get_input_by_input_type(%s)", input_type)
    assert sorted(ids) == expected


async def test_get_input_without_processing_task(filled: psycopg.AsyncConnection[Any]) -> None:
    """Only inputs 5 and 6 have no task."""
    ids = await column(filled, "SELECT id FROM hrwsi.get_input_without_processing_task()")
    assert sorted(ids) == [5, 6]


ERRORS = {1: 1, 2: 0, 3: 2, 6: 0, 7: 1, 8: 1, 10: 1, 11: 1, 12: 1, 13: 1, 15: 0, 999: 0}


@pytest.mark.parametrize(("task", "expected"), sorted(ERRORS.items()))
async def test_get_number_of_error_statuses_by_processing_task(
    filled: psycopg.AsyncConnection[Any], task: int, expected: int
) -> None:
    """Error rows (internal or external) summed over all dispatches of the task."""
    got = await scalar(
        filled, "SELECT hrwsi.get_number_of_error_statuses_by_processing_task(%s)", task
    )
    assert got == expected


async def test_is_processing_task_processed(filled: psycopg.AsyncConnection[Any]) -> None:
    """Tasks 1 (second dispatch) and 6 are processed; unknown tasks are not."""
    got = {
        t: await scalar(filled, "SELECT hrwsi.is_processing_task_processed(%s)", t)
        for t in [*range(1, 16), 999]
    }
    assert {t for t, processed in got.items() if processed} == {1, 6}
    assert all(value is False for t, value in got.items() if t not in (1, 6))


async def test_get_processing_tasks_not_finished(filled: psycopg.AsyncConnection[Any]) -> None:
    """Tasks with has_ended = false; task 9 (has_ended NULL) is not among them."""
    cur = await filled.execute(
        f"SELECT {TASK_COLUMNS} FROM hrwsi.get_processing_tasks_not_finished()".encode()
    )
    rows = sorted(await cur.fetchall())
    assert [r[0] for r in rows] == [2, 4, 5, 14, 15]
    assert rows[0] == (2, 3, vm("a"), at("2024-01-02 11:00"), 1, None, False, None)


async def test_get_status_history_across_dispatches(filled: psycopg.AsyncConnection[Any]) -> None:
    """Task 1's history spans both dispatches, with status codes and names."""
    cur = await filled.execute(
        "SELECT * FROM hrwsi.get_status_history_by_processing_task_id(1) ORDER BY id"
    )
    assert await cur.fetchall() == [
        (1, at("2024-01-02 11:06"), 0, "started", None),
        (2, at("2024-01-02 11:30"), 210, "external_error", "node lost"),
        (3, at("2024-01-02 12:01"), 0, "started", None),
        (4, at("2024-01-02 12:40"), 1, "processed", "ok"),
    ]
    cur = await filled.execute("SELECT * FROM hrwsi.get_status_history_by_processing_task_id(2)")
    assert await cur.fetchall() == []


async def test_get_nomad_job_dispatch_list(filled: psycopg.AsyncConnection[Any]) -> None:
    """Every dispatch of the task with the task's job id; none for an undispatched task."""
    cur = await filled.execute(
        "SELECT * FROM hrwsi.get_nomad_job_dispatch_list_by_processing_task_id(3)"
        " ORDER BY nomad_job_dispatch_creation_date"
    )
    assert await cur.fetchall() == [
        (job(3), "job-3/dispatch-1", at("2024-01-02 11:05"), None),
        (job(3), "job-3/dispatch-2", at("2024-01-02 13:00"), "/logs/12.log"),
    ]
    cur = await filled.execute(
        "SELECT * FROM hrwsi.get_nomad_job_dispatch_list_by_processing_task_id(2)"
    )
    assert await cur.fetchall() == []


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (1, [(job(1), "job-1/dispatch-2", at("2024-01-02 12:00"), "/logs/2.log")]),
        (3, [(job(3), "job-3/dispatch-2", at("2024-01-02 13:00"), "/logs/12.log")]),
        (6, [(job(6), "job-6/dispatch-1", at("2024-01-02 11:05"), "/logs/4.log")]),
        (2, []),
        (999, []),
    ],
)
async def test_get_current_nomad_job_dispatch(
    filled: psycopg.AsyncConnection[Any], task: int, expected: list[tuple[Any, ...]]
) -> None:
    """The latest dispatch (highest id) of the task, or nothing."""
    cur = await filled.execute(
        "SELECT * FROM hrwsi.get_current_nomad_job_dispatch_by_processing_task_id(%s)", (task,)
    )
    assert await cur.fetchall() == expected


@pytest.mark.parametrize(
    ("letter", "expected"),
    [("a", False), ("b", False), ("c", None), ("d", False), ("e", True), ("f", False)],
)
async def test_are_all_processing_tasks_in_vm_processed(
    filled: psycopg.AsyncConnection[Any], letter: str, expected: bool | None
) -> None:
    """One row: true when all tasks are processed, NULL for a VM without task."""
    got = await column(
        filled, "SELECT * FROM hrwsi.are_all_processing_tasks_in_vm_processed(%s)", vm(letter)
    )
    assert got == [expected]


@pytest.mark.parametrize(
    ("task", "expected"), [(2, [1]), (4, [3, 15]), (14, [6, 13]), (1, []), (999, [])]
)
async def test_get_preceding_processing_task(
    filled: psycopg.AsyncConnection[Any], task: int, expected: list[int]
) -> None:
    """Every task of the preceding input (several when that input was retried)."""
    ids = await column(filled, "SELECT id FROM hrwsi.get_preceding_processing_task(%s)", task)
    assert sorted(ids) == expected


@pytest.mark.parametrize(
    ("task", "expected"), [(2, [True]), (4, [False, False]), (14, [False, True]), (1, [])]
)
async def test_is_preceding_processing_task_processed(
    filled: psycopg.AsyncConnection[Any], task: int, expected: list[bool]
) -> None:
    """One row per preceding task; task 4's chain has a failed and an in-flight predecessor."""
    got = await column(
        filled, "SELECT * FROM hrwsi.is_preceding_processing_task_processed(%s)", task
    )
    assert sorted(got) == expected


@pytest.mark.parametrize(
    ("input_id", "expected"),
    [(1, True), (10, True), (2, False), (8, False), (5, None), (999, None)],
)
async def test_is_one_processing_task_processed_for_an_input(
    filled: psycopg.AsyncConnection[Any], input_id: int, expected: bool | None
) -> None:
    """One row: whether a task of the input is processed; NULL for an input with no task."""
    got = await column(
        filled, "SELECT * FROM hrwsi.is_one_processing_task_processed_for_an_input(%s)", input_id
    )
    assert got == [expected]


ENDED = {1: True, 2: False, 3: False, 5: False, 7: True, 8: True, 9: True, 10: True, 11: False}


@pytest.mark.parametrize(("input_id", "expected"), sorted(ENDED.items()))
async def test_are_all_processing_tasks_ended_for_an_input(
    filled: psycopg.AsyncConnection[Any], input_id: int, expected: bool
) -> None:
    """Has tasks and none with has_ended = false (input 8's NULL counts as ended, as in v1)."""
    got = await scalar(
        filled, "SELECT hrwsi.are_all_processing_tasks_ended_for_an_input(%s)", input_id
    )
    assert got is expected


async def test_get_ids_of_processing_tasks_ready_to_be_launched(
    filled: psycopg.AsyncConnection[Any],
) -> None:
    """Undispatched tasks that start a chain or follow a processed task; not task 4."""
    ids = await column(
        filled, "SELECT * FROM hrwsi.get_ids_of_processing_tasks_ready_to_be_launched()"
    )
    assert sorted(ids) == [2, 5, 9, 14]


async def test_ready_tasks_follow_the_chain(writable: psycopg.AsyncConnection[Any]) -> None:
    """Task 4 becomes ready once a task of its preceding input is processed, and dispatching
    a ready task removes it."""
    await writable.execute(
        "INSERT INTO hrwsi.processing_status_workflow"
        " (nomad_job_dispatch_fk_id, processing_status_id, date) VALUES (11, 2, '2024-01-08')"
    )
    await writable.execute(
        "INSERT INTO hrwsi.nomad_job_dispatch"
        " (processing_task_fk_id, nomad_job_dispatch, dispatch_date) VALUES (5, 'd', now())"
    )
    ids = await column(
        writable, "SELECT * FROM hrwsi.get_ids_of_processing_tasks_ready_to_be_launched()"
    )
    assert sorted(ids) == [2, 4, 9, 14]


async def test_get_product_data_type_of_processing_tasks_not_ended(
    writable: psycopg.AsyncConnection[Any],
) -> None:
    """Distinct product types of unfinished tasks; none once every task has ended."""
    got = await column(
        writable, "SELECT * FROM hrwsi.get_product_data_type_of_processing_tasks_not_ended()"
    )
    assert sorted(got) == ["L2A", "L2B"]
    await writable.execute("UPDATE hrwsi.processing_tasks SET has_ended = true WHERE id IN (2, 14)")
    got = await column(
        writable, "SELECT * FROM hrwsi.get_product_data_type_of_processing_tasks_not_ended()"
    )
    assert got == ["L2A"]


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2020-01-01", [7, 7, 9, 9]),
        ("2024-01-01", [7, 7, 9]),
        ("2024-01-05 12:00", [7, 9]),
        ("2024-01-07 00:00", []),
        ("2030-01-01", []),
    ],
)
async def test_get_id_of_unprocessed_inputs_with_all_pt_ended(
    filled: psycopg.AsyncConnection[Any], since: str, expected: list[int]
) -> None:
    """One row per ended task created after the date, for inputs all ended and unprocessed."""
    got = await column(
        filled,
        "SELECT * FROM hrwsi.get_id_of_unprocessed_inputs_with_all_pt_ended(%s::timestamp)",
        since,
    )
    assert sorted(got) == expected


@pytest.mark.parametrize(
    ("product", "indexed", "failed"),
    [(1, True, False), (2, True, True), (3, False, False), (4, False, True), (999, False, False)],
)
async def test_product_indexation_state(
    filled: psycopg.AsyncConnection[Any], product: int, indexed: bool, failed: bool
) -> None:
    """Indexed if any attempt succeeded; currently failed if the latest attempt failed."""
    assert await scalar(filled, "SELECT hrwsi.is_product_indexed(%s)", product) is indexed
    got = await scalar(filled, "SELECT hrwsi.is_product_indexation_currently_failed(%s)", product)
    assert got is failed


@pytest.mark.parametrize(
    ("type_name", "product", "expected"),
    [
        ("INSPIRE", 1, "/index/p1.inspire.json"),
        ("STAC", 1, "/index/p1.stac.json"),
        ("INSPIRE", 2, "/index/p2.inspire.json"),
        ("STAC", 2, None),
        ("INSPIRE", 4, None),
        ("INSPIRE", 3, None),
        ("NONE", 1, None),
    ],
)
async def test_get_indexation_file_path_by_type_name_by_product_id(
    filled: psycopg.AsyncConnection[Any], type_name: str, product: int, expected: str | None
) -> None:
    """The product's file of that type, NULL when it has none."""
    got = await scalar(
        filled,
        "SELECT hrwsi.get_indexation_file_path_by_type_name_by_product_id(%s, %s)",
        type_name,
        product,
    )
    assert got == expected
