"""The console in a real browser: pages render with data, live updates, filters, actions."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

TOKEN = "browser-test-token"  # the console_url fixture's token

pytestmark = pytest.mark.timeout(90)


def _seed(db_url: str, extra_inputs: int = 45) -> dict[str, int]:
    """A VM chain of three MAJA tasks (processed, running, pending) and more inputs."""
    with psycopg.connect(db_url, autocommit=True) as c:
        vm = uuid.uuid4()
        c.execute(
            "INSERT INTO hrwsi.virtual_machine (id, name, flavour)"
            " VALUES (%s, 'vm-MAJA-1', 'MAJA')",
            (vm,),
        )
        ids: dict[str, int] = {}
        previous = None
        for n, name in enumerate(("done", "running", "pending")):
            (input_id,) = c.execute(
                "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
                " input_path) VALUES ('MAJA_PC', now(), '31TCH', 20260304, %s) RETURNING id",
                (f"/eodata/chain-{n}<b>.SAFE",),
            ).fetchone()
            c.execute(
                "INSERT INTO hrwsi.input_meta (input_id, product_name) VALUES (%s, %s)",
                (input_id, f"chain-{n}<b>.SAFE"),
            )
            (task_id,) = c.execute(
                "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id,"
                " creation_date, preceding_input_id)"
                " VALUES (%s, %s, now() AT TIME ZONE 'UTC', %s) RETURNING id",
                (input_id, vm, previous),
            ).fetchone()
            c.execute(
                "INSERT INTO hrwsi.task_state (processing_task_id, planned_start_min,"
                " planned_end_min) VALUES (%s, %s, %s)",
                (task_id, 5 * n, 5 * n + 5),
            )
            ids[name] = task_id
            ids[f"{name}_input"] = input_id
            previous = input_id
        for name in ("done", "running"):
            (d,) = c.execute(
                "INSERT INTO hrwsi.nomad_job_dispatch (processing_task_fk_id, nomad_job_dispatch,"
                " dispatch_date) VALUES (%s, %s, now()) RETURNING id",
                (ids[name], f"task-{ids[name]}-attempt-1"),
            ).fetchone()
            ids[f"{name}_dispatch"] = d
            c.execute(
                "INSERT INTO hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id,"
                " processing_status_id, date, message) VALUES (%s, 1, now(), NULL)",
                (d,),
            )
        _finish(c, ids["done"], ids["done_dispatch"], ids["done_input"])
        c.execute(
            "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
            " input_path) SELECT CASE WHEN mod(g, 3) = 0 THEN 'FSC_PC' ELSE 'MAJA_PC' END, now(),"
            " CASE WHEN mod(g, 2) = 0 THEN '32TLR' ELSE '31TCH' END, 20260301 + mod(g, 5),"
            " '/eodata/more-' || g FROM generate_series(1, %s) AS g",
            (extra_inputs,),
        )
    return ids


def _finish(c: psycopg.Connection[Any], task: int, dispatch: int, input_id: int) -> None:
    """What the launcher writes when an attempt is processed (one transaction)."""
    with c.transaction():
        c.execute(
            "INSERT INTO hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id,"
            " processing_status_id, date, message) VALUES (%s, 2, now(), 'exit code 0')",
            (dispatch,),
        )
        c.execute(
            "INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date,"
            " catalogued_date, product_type_id) SELECT %s, %s, now(), now(), id"
            " FROM hrwsi.product_type WHERE code = 'S2_MAJA_L2A'",
            (input_id, f"/HRWSI/L2A/MAJA_PC/31TCH/product-{task}"),
        )
        c.execute("UPDATE hrwsi.processing_tasks SET has_ended = true WHERE id = %s", (task,))


async def test_overview_renders_and_follows_a_task_finishing_live(
    browser: Any, console_url: str, db_url: str, artefacts: Path
) -> None:
    """The overview shows the funnel; a task finishing updates it without a reload."""
    ids = _seed(db_url)
    page = await browser.new_page()
    await page.goto(console_url + "/")
    row = page.locator('tr[data-condition="MAJA_PC"]')
    assert (await row.locator('[data-col="processed"]').inner_text()) == "1"
    assert (await row.locator('[data-col="running"]').inner_text()) == "1"
    assert (await page.locator("#total-inputs").inner_text()) == "48"
    await page.wait_for_selector("#live.alive")
    await page.evaluate("window.__same_page = true")
    await page.screenshot(path=str(artefacts / "overview-before.png"), full_page=True)
    with psycopg.connect(db_url, autocommit=True) as c:
        _finish(c, ids["running"], ids["running_dispatch"], ids["running_input"])
    await page.wait_for_function(
        'document.querySelector(\'tr[data-condition="MAJA_PC"] [data-col="processed"]\')'
        ".textContent === '2'",
        timeout=10_000,
    )
    assert await page.evaluate("window.__same_page") is True  # no reload happened
    assert (await row.locator('[data-col="running"]').inner_text()) == "0"
    await page.screenshot(path=str(artefacts / "overview-after.png"), full_page=True)


async def test_inputs_filter_and_pagination(
    browser: Any, console_url: str, db_url: str, artefacts: Path
) -> None:
    """Filters narrow the list; 'older' pages walk it by keyset without repeats."""
    _seed(db_url)
    page = await browser.new_page()
    await page.goto(console_url + "/inputs")
    first = await page.locator("tr.input-row td:first-child").all_inner_texts()
    assert len(first) == 20
    await page.click("#next")
    second = await page.locator("tr.input-row td:first-child").all_inner_texts()
    assert len(second) == 20 and not set(first) & set(second)
    assert max(int(x) for x in second) < min(int(x) for x in first)
    await page.goto(console_url + "/inputs")
    await page.select_option("select[name=condition]", "FSC_PC")
    await page.fill("input[name=tile]", "32TLR")
    await page.click("#apply")
    conditions = await page.locator("tr.input-row td:nth-child(2)").all_inner_texts()
    tiles = await page.locator("tr.input-row td:nth-child(3)").all_inner_texts()
    assert conditions and set(conditions) == {"FSC_PC"} and set(tiles) == {"32TLR"}
    assert len(conditions) == 7  # g in 1..45 with g % 6 == 0
    await page.select_option("select[name=state]", "processed")
    await page.select_option("select[name=condition]", "")
    await page.fill("input[name=tile]", "")
    await page.click("#apply")
    states = await page.locator("tr.input-row .state").all_inner_texts()
    assert states == ["processed"]
    await page.screenshot(path=str(artefacts / "inputs.png"), full_page=True)


async def test_task_page_attempts_and_escaping(
    browser: Any, console_url: str, db_url: str, artefacts: Path
) -> None:
    """The task page lists attempts with their statuses; data is escaped, never markup."""
    ids = _seed(db_url)
    page = await browser.new_page()
    await page.goto(f"{console_url}/tasks/{ids['done']}")
    assert (await page.locator("#task-state").inner_text()) == "processed"
    attempts = page.locator("tr.attempt")
    assert (await attempts.count()) == 1
    text = await attempts.first.inner_text()
    assert "started" in text and "processed" in text and "exit code 0" in text
    assert "<b>" in (await page.locator("#task-inputs").inner_text())  # shown as text, not bold
    assert (await page.locator("#task-inputs b").count()) == 0
    assert "S2_MAJA_L2A" in (await page.locator("#products").inner_text())
    await page.screenshot(path=str(artefacts / "task.png"), full_page=True)


async def test_plan_gantt_renders(
    browser: Any, console_url: str, db_url: str, artefacts: Path
) -> None:
    """The plan page draws the Gantt of the live and recent tasks."""
    _seed(db_url)
    page = await browser.new_page()
    await page.goto(console_url + "/plan")
    svg = page.locator("#gantt svg")
    assert (await svg.count()) == 1
    assert "vm-MAJA-1" in (await svg.inner_html())
    assert (await svg.bounding_box())["width"] > 500
    await page.screenshot(path=str(artefacts / "plan.png"), full_page=True)


async def test_action_refused_without_token_and_done_with_it(
    browser: Any, console_url: str, db_url: str, artefacts: Path
) -> None:
    """Cancel without signing in is refused; after signing in with the token it is done and
    recorded with the operator's name."""
    ids = _seed(db_url)
    page = await browser.new_page()
    await page.goto(f"{console_url}/tasks/{ids['pending']}")
    await page.click("#cancel")
    assert "sign in" in (await page.locator("#result").inner_text())
    await page.screenshot(path=str(artefacts / "action-refused.png"), full_page=True)
    await page.goto(f"{console_url}/login?next=/tasks/{ids['pending']}")
    await page.fill("input[name=actor]", "alice")
    await page.fill("input[name=token]", "not-the-token")
    await page.click("#sign-in")
    assert "wrong token" in (await page.locator("#result").inner_text())
    await page.goto(f"{console_url}/login?next=/tasks/{ids['pending']}")
    await page.fill("input[name=actor]", "alice")
    await page.fill("input[name=token]", TOKEN)
    await page.click("#sign-in")
    await page.wait_for_url(f"**/tasks/{ids['pending']}")
    await page.fill("input[name=reason]", "wrong tile")
    await page.click("#cancel")
    await page.wait_for_selector("#flash")
    assert (await page.locator("#task-state").inner_text()) == "cancelled"
    await page.screenshot(path=str(artefacts / "action-done.png"), full_page=True)
    with psycopg.connect(db_url) as c:
        recorded = c.execute("SELECT actor, action, target FROM hrwsi.operator_action").fetchall()
    assert recorded == [("console:alice", "cancel", f"task:{ids['pending']}")]
