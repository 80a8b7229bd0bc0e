"""``hrwsi plan`` on the database's pending inputs, as an operator runs it (a subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import psycopg


async def hrwsi(
    db_url: str, *args: str, extra_env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env.update(extra_env or {})
    env["HRWSI_DATABASE_URL"] = db_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hrwsi",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def pending(conn: psycopg.AsyncConnection, maja: int, fsc: int) -> None:
    await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission)"
        " SELECT CASE WHEN g <= %s THEN 'MAJA_PC' ELSE 'FSC_PC' END, now(), '31TCH', 20240102,"
        " '/in/' || g, 'S2' FROM generate_series(1, %s) AS g",
        (maja, maja + fsc),
    )


async def count_tasks(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute("SELECT count(*) FROM hrwsi.processing_tasks")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_dry_run_summarises_draws_and_writes_nothing(
    conn: psycopg.AsyncConnection, db_url: str, tmp_path: Path
) -> None:
    """--dry-run prints inputs by condition, VMs by flavour, the plan and its lower bound,
    draws the Gantt chart, and leaves the tables as they were."""
    await pending(conn, maja=40, fsc=20)
    svg = tmp_path / "plan.svg"
    code, out, err = await hrwsi(db_url, "plan", "--dry-run", "--gantt", str(svg))
    assert code == 0, err
    assert "pending inputs: FSC_PC 20, MAJA_PC 40" in err
    assert "VMs by flavour: FSC " in err and "MAJA " in err
    assert "dry run: nothing written" in err
    assert "planned 60 tasks on" in out and "lower bound" in out
    assert svg.read_text(encoding="utf-8").lstrip().startswith(("<svg", "<?xml"))
    assert await count_tasks(conn) == 0

    code, out, err = await hrwsi(db_url, "plan", "--dry-run", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["feasible"] is True
    planned = sorted(int(t["id"]) for vm in answer["vms"] for t in vm["tasks"])
    assert len(planned) == 60 == len(set(planned))


async def test_plan_writes_the_pending_inputs_once(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """`hrwsi plan` writes a task per pending input; run again, it finds nothing pending."""
    await pending(conn, maja=6, fsc=3)
    code, _, err = await hrwsi(db_url, "plan")
    assert code == 0, err
    assert "wrote " in err and " VMs and 9 tasks" in err
    assert await count_tasks(conn) == 9
    code, out, err = await hrwsi(db_url, "plan")
    assert code == 0, err
    assert "pending inputs: none" in err and "planned 0 tasks" in out
    assert await count_tasks(conn) == 9


async def test_a_routine_that_cannot_fit_is_refused_at_start(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """A routine larger than a quota is a configuration error (exit 2, naming the routine key
    and the quota) before anything is planned: its inputs would otherwise wait forever."""
    await pending(conn, maja=3, fsc=0)
    code, _, err = await hrwsi(db_url, "plan", extra_env={"HRWSI_SCHEDULING__CPU_MAX": "4"})
    assert code == 2
    flat = "".join(err.split())
    assert "routines.0.cpu" in flat and "scheduling.cpu_max4" in flat
    assert "HRWSI_SCHEDULING__CPU_MAX" in flat
    assert await count_tasks(conn) == 0
