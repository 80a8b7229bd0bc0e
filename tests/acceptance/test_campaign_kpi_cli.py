"""``hrwsi campaign …`` and ``hrwsi kpi`` as an operator runs them: subprocesses, real database."""

from __future__ import annotations

import asyncio
import json
import os
import sys


async def hrwsi(db_url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
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


async def test_campaign_lifecycle_from_the_command_line(db_url):
    """create, release, suspend, resume, cancel with --json; show; refusals exit 1."""
    code, out, err = await hrwsi(
        db_url, "campaign", "create", "--condition", "MAJA_PC", "--from", "2024-01-01",
        "--to", "2024-01-31", "--tiles", "31TCH,T32TLR", "--priority", "30", "--json",
    )  # fmt: skip
    assert code == 0, err
    cid = str(json.loads(out)["id"])
    for action, target in (
        ("release", "released"),
        ("suspend", "suspended"),
        ("resume", "released"),
        ("cancel", "cancelled"),
    ):
        code, out, err = await hrwsi(db_url, "campaign", action, cid, "--json")
        assert code == 0, err
        assert json.loads(out)["to"] == target
    code, out, err = await hrwsi(db_url, "campaign", "resume", cid)
    assert code == 1 and "cancelled, which is final" in err
    code, out, _ = await hrwsi(db_url, "campaign", "show", cid, "--json")
    shown = json.loads(out)
    assert shown["state"] == "cancelled" and shown["tiles"] == ["31TCH", "32TLR"]
    assert [t["action"] for t in shown["transitions"]] == [
        "create", "release", "suspend", "resume", "cancel",
    ]  # fmt: skip
    code, out, _ = await hrwsi(db_url, "campaign", "list", "--json")
    assert [c["id"] for c in json.loads(out)["campaigns"]] == [int(cid)]
    code, _, err = await hrwsi(
        db_url, "campaign", "create", "--condition", "MAJA_PC", "--from", "2024-02-01",
        "--to", "2024-01-01",
    )  # fmt: skip
    assert code == 2 and "after" in err


async def test_kpi_json_on_an_empty_database(db_url):
    """hrwsi kpi --json prints its stable keys even with no product; a bad --since exits 2."""
    code, out, err = await hrwsi(db_url, "kpi", "--since", "7d", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"since", "condition", "groups", "late"} and data["groups"] == []
    code, _, err = await hrwsi(db_url, "kpi", "--since", "soon")
    assert code == 2 and "--since" in err
