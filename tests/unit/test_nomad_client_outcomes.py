"""Pure parts of the Nomad executor: the §7 allocation mapping and the job spec."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hrwsi.config import NomadExecutorConfig
from hrwsi.executors.base import Attempt, RoutineSpec, RunState
from hrwsi.executors.nomad import classify_allocation, job_spec, secrets_template


def event(kind: str, t: int, **details: str) -> dict[str, Any]:
    return {"Type": kind, "Time": t, "Details": details}


def alloc(client: str, *events: dict[str, Any], desired: str = "run") -> dict[str, Any]:
    return {
        "ClientStatus": client,
        "DesiredStatus": desired,
        "NodeName": "vm-1",
        "ClientDescription": "Failed tasks" if client == "failed" else "",
        "TaskStates": {"routine": {"State": "dead", "Events": list(events)}},
    }


STARTED = event("Started", 2)
EXIT0 = event("Terminated", 3, exit_code="0", signal="0", oom_killed="false")
EXIT3 = event("Terminated", 3, exit_code="3", signal="0", oom_killed="false")
OOM = event("Terminated", 3, exit_code="137", signal="9", oom_killed="true")


@pytest.mark.parametrize(
    ("allocation", "state", "exit_code", "words"),
    [
        (alloc("pending", event("Received", 1)), RunState.SUBMITTED, None, "starting"),
        (alloc("running", STARTED), RunState.STARTED, None, "running"),
        (alloc("pending", STARTED), RunState.STARTED, None, "running"),
        (alloc("complete", STARTED, EXIT0), RunState.PROCESSED, 0, "exit code 0"),
        (alloc("failed", STARTED, EXIT3), RunState.INTERNAL_ERROR, 3, "exit code 3"),
        (
            alloc("failed", event("Driver Failure", 2, driver_error="image not found")),
            RunState.EXTERNAL_ERROR,
            None,
            "Driver Failure: image not found",
        ),
        (
            alloc("failed", event("Setup Failure", 2, setup_error="bad template")),
            RunState.EXTERNAL_ERROR,
            None,
            "Setup Failure: bad template",
        ),
        (alloc("failed", STARTED, OOM), RunState.EXTERNAL_ERROR, 137, "resource"),
        (alloc("lost", STARTED, desired="stop"), RunState.EXTERNAL_ERROR, None, "lost"),
        (alloc("unknown", STARTED), RunState.STARTED, None, "unknown"),
        (
            alloc("complete", STARTED, event("Killing", 3), event("Killed", 4), desired="stop"),
            RunState.EXTERNAL_ERROR,
            None,
            "cancelled",
        ),
        (alloc("complete", STARTED, EXIT0, desired="evict"), RunState.EXTERNAL_ERROR, 0, "evict"),
    ],
)
def test_allocation_mapping_follows_contract_table(
    allocation: dict[str, Any], state: RunState, exit_code: int | None, words: str
) -> None:
    """Each allocation shape maps to the status of CONTRACT.md §7."""
    got_state, message, got_exit = classify_allocation(allocation)
    assert got_state is state
    assert got_exit == exit_code
    assert words in message


def test_latest_terminated_event_wins_and_events_are_ordered_by_time() -> None:
    """The exit code comes from the last Terminated event in time, whatever the list order."""
    late = event("Terminated", 9, exit_code="5", oom_killed="false")
    early = event("Terminated", 3, exit_code="0", oom_killed="false")
    state, _, code = classify_allocation(alloc("failed", late, STARTED, early))
    assert state is RunState.INTERNAL_ERROR and code == 5


ROUTINE = RoutineSpec("FSC", cpu=2, ram=3, storage=4, duration_minutes=2, docker_image="fsc:1")
ATTEMPT = Attempt(1, 1, ROUTINE, "vm-9", ("/a", "/b"), "/HRWSI/p", {"k": "v"})


def test_job_spec_with_cores_no_pinning_and_secret_names() -> None:
    """use_cores asks for Cores, pin_to_vm off adds no constraint, secrets are template names."""
    settings = NomadExecutorConfig(
        use_cores=True,
        pin_to_vm=False,
        passthrough_env=("AWS_SECRET_ACCESS_KEY",),
        job_prefix="hr",
        datacenters=("dc2",),
    )
    job = job_spec(ATTEMPT, settings)
    task = job["TaskGroups"][0]["Tasks"][0]
    assert job["ID"] == "hr-task-1-attempt-1" and job["Datacenters"] == ["dc2"]
    assert task["Resources"] == {"Cores": 2, "MemoryMB": 3072}
    assert "DiskMB" not in task["Resources"]
    assert job["TaskGroups"][0]["EphemeralDisk"] == {"SizeMB": 4096}
    assert job["Constraints"] == []
    template = task["Templates"][0]["EmbeddedTmpl"]
    assert template == secrets_template(("AWS_SECRET_ACCESS_KEY",), "nomad/jobs")
    assert 'nomadVar "nomad/jobs"' in template
    assert "AWS_SECRET_ACCESS_KEY={{ .AWS_SECRET_ACCESS_KEY }}" in template
    assert json.loads(job["Meta"]["HRWSI_INPUT_PATHS"]) == ["/a", "/b"]
    assert job["Meta"]["HRWSI_META_K"] == "v"
