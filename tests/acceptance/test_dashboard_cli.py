"""``hrwsi dashboard --cache-s`` as a subprocess: one snapshot served to every poll of a window."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx
import psycopg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env["HRWSI_DATABASE_URL"] = db_url
    return env


async def test_cache_s_serves_one_snapshot_per_window(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """With --cache-s 600, polls see the first snapshot even after new inputs arrive."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "hrwsi", "dashboard", "--port", str(port), "--cache-s", "600"),
        env=_env(db_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    first = await client.get("/api/status")
                    break
                except httpx.TransportError:
                    if proc.returncode is not None:
                        raise AssertionError((await proc.communicate())[1].decode()) from None
                    assert time.monotonic() < deadline, "the dashboard did not start"
                    await asyncio.sleep(0.1)
            assert first.status_code == 200
            assert first.json()["conditions"] == []
            await conn.execute(
                "INSERT INTO hrwsi.input (processing_condition_name, date, tile,"
                " measurement_day, input_path, mission)"
                " VALUES ('MAJA_PC', now(), '31TCH', 20240102, '/p/1', 'S2')"
            )
            again = await client.get("/api/status")
            assert again.json() == first.json()
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.communicate(), 30)


def test_a_negative_cache_s_is_refused(db_url: str) -> None:
    """--cache-s below zero is a usage error (exit 2), before anything is served."""
    result = subprocess.run(
        [sys.executable, "-m", "hrwsi", "dashboard", "--cache-s", "-1"],
        env=_env(db_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--cache-s" in result.stderr


async def test_binding_beyond_loopback_without_a_token_warns(db_url: str) -> None:
    """--host 0.0.0.0 without HRWSI_DASHBOARD_TOKEN prints a warning naming the variable and
    still serves (the read-only console); with the token set there is no warning, the start line
    says actions need the token (never printing it), and it serves too."""
    for token in (None, "t0ken"):
        env = _env(db_url)
        if token:
            env["HRWSI_DASHBOARD_TOKEN"] = token
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "hrwsi", "dashboard", "--host", "0.0.0.0", "--port", str(port)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        seen = b""
        try:
            while b"dashboard: http://" not in seen:
                line = await asyncio.wait_for(proc.stderr.readline(), 30)
                assert line, seen.decode()
                seen += line
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        health = await c.get("/healthz")
                        break
                    except httpx.TransportError:
                        assert proc.returncode is None, "the dashboard exited"
                        assert time.monotonic() < deadline, "the dashboard did not serve"
                        await asyncio.sleep(0.1)
            assert health.status_code == 200
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.communicate(), 30)
        text = " ".join(seen.decode().split())
        if token is None:
            assert "warning:" in text and "HRWSI_DASHBOARD_TOKEN" in text
            assert "read-only" in text
        else:
            assert "warning:" not in text and "actions need the token" in text
            assert token not in text
