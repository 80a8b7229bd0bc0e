"""The Nomad stand-in answers as CONTRACT.md says, reached through the real client over HTTP.

These pin down the stand-in the executor tests rely on: dispatch idempotency through the query
parameter, blocking queries, blocked placement, plain-text errors, ACL, GC, outages.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from hrwsi.domain import errors
from hrwsi.executors.nomad_client import JobNotFound, NomadClient, RetryPolicy
from hrwsi.testing.nomad_server import NomadStandIn, Script


def batch_job(job_id: str, host: str | None = None, **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "ID": job_id,
        "Type": "batch",
        "TaskGroups": [
            {
                "Name": "g",
                "RestartPolicy": {"Attempts": 0},
                "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "x"}}],
            }
        ],
    }
    if host is not None:
        job["Constraints"] = [
            {"LTarget": "${attr.unique.hostname}", "RTarget": host, "Operand": "="}
        ]
    job.update(extra)
    return job


@pytest.fixture
async def nomad() -> AsyncIterator[NomadStandIn]:
    async with NomadStandIn(nodes=["worker-03"], heartbeat_s=0.1) as server:
        yield server


@pytest.fixture
async def client(nomad: NomadStandIn) -> AsyncIterator[NomadClient]:
    http = httpx.AsyncClient(base_url=nomad.address)
    nomad_client = NomadClient(http, retry=RetryPolicy(2, 0.0, 0.0), event_silence_s=2.0)
    yield nomad_client
    await nomad_client.aclose()


async def test_register_canonicalizes_defaults(client: NomadClient) -> None:
    """Omitted Type becomes service, Datacenters *, task resources 100/300; DiskMB is dropped."""
    job = batch_job("svc")
    del job["Type"]
    job["TaskGroups"][0]["Tasks"][0]["Resources"] = {"DiskMB": 999}
    await client.register_job(job)
    stored = (await client.get_job("svc")).value
    assert stored["Type"] == "service" and stored["Datacenters"] == ["*"]
    task = stored["TaskGroups"][0]["Tasks"][0]
    assert task["Resources"] == {"CPU": 100, "MemoryMB": 300}
    assert stored["TaskGroups"][0]["EphemeralDisk"]["SizeMB"] == 300
    assert stored["TaskGroups"][0]["RestartPolicy"]["Attempts"] == 0
    assert stored["TaskGroups"][0]["RestartPolicy"]["Mode"] == "fail"


async def test_validation_errors_are_plain_text_multierror_500(nomad: NomadStandIn) -> None:
    """An invalid spec gets a text/plain 500 with a go-multierror body."""
    async with httpx.AsyncClient(base_url=nomad.address) as http:
        reply = await http.put("/v1/jobs", json={"Job": {"ID": "bad", "TaskGroups": []}})
        assert reply.status_code == 500
        assert reply.headers["content-type"].startswith("text/plain")
        assert reply.text == "1 error occurred:\n\t* Missing job task groups\n\n"
        reply = await http.put("/v1/jobs", json={"Job": {"TaskGroups": []}})
        assert reply.status_code == 400 and reply.text == "Job ID hasn't been provided"
        reply = await http.get("/v1/jobs/parse")
        assert reply.status_code == 405 and reply.text == "Invalid method"
        reply = await http.post("/v1/jobs/parse", json={"JobHCL": 'job "x" {}'})
        assert reply.status_code == 400 and reply.text.startswith("Failed to parse job: ")
        reply = await http.get("/v1/job/nope", params={"index": "x"})
        assert reply.status_code == 400 and reply.text == "Invalid index"


async def test_enforce_index_refuses_a_second_register(client: NomadClient) -> None:
    """EnforceIndex with JobModifyIndex 0 fails with 'job already exists' once the job exists."""
    await client.register_job(batch_job("once"), enforce_index=True)
    with pytest.raises(errors.ExecutorRejected, match="job already exists"):
        await client.register_job(batch_job("once"), enforce_index=True)


async def test_dispatch_idempotency_token_returns_existing_child(
    nomad: NomadStandIn, client: NomadClient
) -> None:
    """The same idempotency token (query) returns the first child with EvalID ''; one run."""
    parent = batch_job(
        "parent",
        host="worker-03",
        ParameterizedJob={"Payload": "optional", "MetaRequired": ["run_id"]},
    )
    registered = await client.register_job(parent)
    assert registered["EvalID"] == ""
    first = await client.dispatch_job(
        "parent", meta={"run_id": "r1"}, payload=b"{}", idempotency_token="tok-1"
    )
    again = await client.dispatch_job(
        "parent", meta={"run_id": "r1"}, payload=b"{}", idempotency_token="tok-1"
    )
    assert first["EvalID"] != "" and again["EvalID"] == ""
    assert again["DispatchedJobID"] == first["DispatchedJobID"]
    assert first["DispatchedJobID"].startswith("parent/dispatch-")
    child = (await client.get_job(first["DispatchedJobID"])).value
    assert child["ParentID"] == "parent" and child["Dispatched"] is True
    assert child["Meta"]["run_id"] == "r1" and base64.b64decode(child["Payload"]) == b"{}"
    assert nomad.runs_started == [first["DispatchedJobID"]]
    with pytest.raises(errors.ExecutorRejected, match="required meta keys"):
        await client.dispatch_job("parent", meta={}, idempotency_token="tok-2")
    await client.register_job(batch_job("plain"))
    with pytest.raises(errors.ExecutorRejected, match="not a parameterized job"):
        await client.dispatch_job("plain", meta={})


async def test_blocking_query_waits_for_a_change(nomad: NomadStandIn, client: NomadClient) -> None:
    """A read with the last index hangs until the job changes, then returns a higher index."""
    nomad.scripts["slow"] = Script(start_delay_s=0.4, run_s=0.2)
    await client.register_job(batch_job("slow"))
    first = await client.get_job_allocations("slow")
    started = time.monotonic()
    second = await client.get_job_allocations("slow", index=first.index, wait_s=5)
    assert second.index > first.index
    assert 0.2 < time.monotonic() - started < 4
    quiet = await client.get_job_summary("slow", index=10_000, wait_s=0.3)
    assert quiet.index < 10_000  # the wait expired without a change


async def test_unplaceable_job_is_blocked_forever(nomad: NomadStandIn, client: NomadClient) -> None:
    """A constraint no node meets: complete eval with FailedTGAllocs and BlockedEval, Queued 1."""
    registered = await client.register_job(batch_job("lost-host", host="worker-99"))
    evaluation = (await client.get_evaluation(registered["EvalID"])).value
    assert evaluation["Status"] == "complete" and evaluation["BlockedEval"]
    failed = evaluation["FailedTGAllocs"]["g"]["ConstraintFiltered"]
    assert failed == {"${attr.unique.hostname} = worker-99": 1}
    blocked = (await client.get_evaluation(evaluation["BlockedEval"])).value
    assert blocked["Status"] == "blocked"
    await asyncio.sleep(0.3)
    summary = (await client.get_job_summary("lost-host")).value
    assert summary["Summary"]["g"]["Queued"] == 1
    assert (await client.get_job("lost-host")).value["Status"] == "pending"
    nomad.add_node("worker-99")
    allocs = (await client.get_job_allocations("lost-host")).value
    assert [a["NodeName"] for a in allocs] == ["worker-99"]


async def test_reads_of_unknown_things(client: NomadClient) -> None:
    """Unknown job: 404 on reads, [] for allocations, 200 on delete; bad alloc id: Invalid UUID."""
    with pytest.raises(JobNotFound, match="job not found"):
        await client.get_job("ghost")
    with pytest.raises(JobNotFound):
        await client.get_job_summary("ghost")
    assert (await client.get_job_allocations("ghost")).value == []
    assert (await client.delete_job("ghost", purge=True))["EvalID"] == ""
    with pytest.raises(errors.ExecutorRejected, match="Invalid UUID"):
        await client.get_allocation("not-a-uuid")
    with pytest.raises(JobNotFound, match="alloc not found"):
        await client.get_allocation("00000000-0000-0000-0000-000000000000")
    with pytest.raises(JobNotFound, match="eval not found"):
        await client.get_evaluation("00000000-0000-0000-0000-000000000000")


async def test_nodes_filter_by_hostname(client: NomadClient) -> None:
    """Nodes list answers stubs and filters on Attributes["unique.hostname"]."""
    nodes = (await client.list_nodes(filter_='Attributes["unique.hostname"] == "worker-03"')).value
    assert [n["Name"] for n in nodes] == ["worker-03"]
    assert nodes[0]["Drivers"]["docker"]["Healthy"] is True
    assert (await client.list_nodes(filter_='Name == "nope"')).value == []
    full = (await client.get_node(nodes[0]["ID"])).value
    assert full["Attributes"]["unique.hostname"] == "worker-03"


async def test_acl_and_region_errors() -> None:
    """No token: 403 Permission denied; unknown token: 403 ACL token not found; bad region: 500."""
    async with NomadStandIn(tokens={"good"}) as nomad:
        async with httpx.AsyncClient(base_url=nomad.address) as http:
            reply = await http.get("/v1/jobs")
            assert (reply.status_code, reply.text) == (403, "Permission denied")
            reply = await http.get("/v1/jobs", headers={"X-Nomad-Token": "bad"})
            assert (reply.status_code, reply.text) == (403, "ACL token not found")
            reply = await http.get("/v1/jobs", headers={"Authorization": "Bearer good"})
            assert reply.status_code == 200
            reply = await http.get(
                "/v1/jobs", headers={"X-Nomad-Token": "good"}, params={"region": "mars"}
            )
            assert (reply.status_code, reply.text) == (500, "No path to region")
        good = NomadClient(httpx.AsyncClient(base_url=nomad.address), token=SecretStr("good"))
        with pytest.raises(errors.ExecutorRejected, match="nonexistent namespace"):
            await good.register_job(batch_job("ns", Namespace="elsewhere"))
        await good.aclose()


async def test_gc_and_purge_forget_finished_jobs(nomad: NomadStandIn, client: NomadClient) -> None:
    """A finished job is collected after the threshold (then 404); purge removes it at once."""
    nomad.gc_threshold_s = 0.2
    await client.register_job(batch_job("short"))
    nomad.scripts["long"] = Script(hang=True)
    await client.register_job(batch_job("long"))
    for _ in range(60):
        await asyncio.sleep(0.05)
        if nomad.job("short") is None:
            break
    with pytest.raises(JobNotFound):
        await client.get_job("short")
    assert (await client.get_job("long")).value["Status"] == "running"
    await client.delete_job("long", purge=True)
    with pytest.raises(JobNotFound):
        await client.get_job("long")


async def test_event_stream_heartbeats_topics_and_index(nomad: NomadStandIn) -> None:
    """The stream sends {} heartbeats, filters by topic:key, and replays from an index."""
    async with httpx.AsyncClient(base_url=nomad.address) as http:
        await http.put("/v1/jobs", json={"Job": batch_job("a")})
        await http.put("/v1/jobs", json={"Job": batch_job("b")})
        await asyncio.sleep(0.4)
        lines: list[str] = []
        params = {"topic": "Allocation:b", "index": "0"}
        async with http.stream("GET", "/v1/event/stream", params=params) as reply:
            assert reply.status_code == 200
            async for line in reply.aiter_lines():
                lines.append(line)
                if sum(1 for x in lines if x == "{}") >= 2 and len(lines) > 3:
                    break
    frames = [json.loads(x) for x in lines if x not in ("", "{}")]
    assert lines[0] == "{}"
    events = [e for f in frames for e in f["Events"]]
    assert events and all(e["Topic"] == "Allocation" for e in events)
    assert {e["Payload"]["Allocation"]["JobID"] for e in events} == {"b"}
    statuses = [e["Payload"]["Allocation"]["ClientStatus"] for e in events]
    assert statuses == ["pending", "running", "complete"]
    indexes = [f["Index"] for f in frames]
    assert indexes == sorted(indexes)


async def test_outage_refuses_then_serves_on_the_same_port(
    nomad: NomadStandIn, client: NomadClient
) -> None:
    """During an outage connections are refused (transient); afterwards the same address works."""
    port = nomad.port
    await client.register_job(batch_job("kept"))
    await nomad.stop_listening()
    with pytest.raises(errors.ExecutorTransient, match="unreachable"):
        await client.get_job("kept")
    await nomad.start_listening()
    assert nomad.port == port
    assert (await client.get_job("kept")).value["ID"] == "kept"
