"""``hrwsi plan --instance FILE.json`` as an operator runs it: a subprocess, no database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from hrwsi.domain import instances, plan_validator
from hrwsi.domain.planning import VM, LowerBound, Plan, ScheduledTask


def hrwsi(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    return subprocess.run(
        [sys.executable, "-m", "hrwsi", "plan", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(tmp_path: Path, data: Any, name: str = "instance.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def plan_from_json(doc: dict[str, Any]) -> Plan:
    vms = tuple(
        VM(
            v["name"],
            v["flavour"],
            v["start"],
            v["stop"],
            tuple(ScheduledTask(t["id"], t["start"], t["end"]) for t in v["tasks"]),
        )
        for v in doc["vms"]
    )
    return Plan(
        "planned" if doc["feasible"] else "impossible",
        reason=doc["reason"],
        vms=vms,
        makespan=doc["makespan"],
        vm_minutes=doc["vm_minutes"],
        lower_bound=LowerBound(doc["lower_bound"]["vms"], doc["lower_bound"]["makespan"]),
    )


def test_json_plan_of_the_family_v1_rejected(tmp_path: Path) -> None:
    """The tight five-routine instance comes back feasible, with a plan the validator accepts."""
    instance = instances.five_routines(200, seed=1, quota=20, vm_max=10)
    done = hrwsi("--instance", str(write(tmp_path, instances.instance_to_json(instance))), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["feasible"] is True and doc["reason"] == ""
    assert set(doc) >= {"vms", "makespan", "vm_minutes", "lower_bound", "seconds"}
    assert all(isinstance(t["id"], str) for vm in doc["vms"] for t in vm["tasks"])
    assert plan_validator.validate(instance, plan_from_json(doc)) == []


def test_impossible_instance_says_why_and_exits_1(tmp_path: Path) -> None:
    """A routine larger than the quota: feasible false, the reason, exit code 1."""
    data = {
        "limits": {"t_max": 100, "cpu_max": 4, "ram_max": 8, "storage_max": 8, "vm_max": 2},
        "routines": {"big": {"cpu": 6, "ram": 1, "storage": 1, "duration": 5}},
        "tasks": [{"id": "1", "routine": "big", "depends_on": []}],
    }
    done = hrwsi("--instance", str(write(tmp_path, data)), "--json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["feasible"] is False
    assert "cpu 6 > cpu_max 4" in doc["reason"]
    assert doc["vms"] == []


def test_integer_ids_and_dependencies_are_accepted(tmp_path: Path) -> None:
    """Ids may be JSON integers; they come back as strings, in dependency order."""
    data = {
        "limits": {"t_max": 30, "cpu_max": 4, "ram_max": 4, "storage_max": 4, "vm_max": 2},
        "routines": {"a": {"cpu": 1, "ram": 1, "storage": 1, "duration": 5}},
        "tasks": [
            {"id": 2, "routine": "a", "depends_on": [1]},
            {"id": 1, "routine": "a"},
        ],
    }
    done = hrwsi("--instance", str(write(tmp_path, data)), "--json")
    assert done.returncode == 0, done.stderr
    tasks = [t for vm in json.loads(done.stdout)["vms"] for t in vm["tasks"]]
    assert sorted((t["start"], t["id"]) for t in tasks) == [(0, "1"), (5, "2")]


def test_malformed_files_name_what_is_wrong(tmp_path: Path) -> None:
    """Bad JSON, a missing key, a wrong type, a cycle: exit 2 and a message naming the culprit."""
    good_limits = {"t_max": 30, "cpu_max": 4, "ram_max": 4, "storage_max": 4, "vm_max": 2}
    routine = {"cpu": 1, "ram": 1, "storage": 1, "duration": 5}
    cases = [
        ('{"limits": ', "not valid JSON (line 1"),
        ({"limits": {"t_max": 5}, "routines": {}, "tasks": []}, "limits has no 'cpu_max'"),
        (
            {"limits": good_limits, "routines": {"a": {**routine, "cpu": "2"}}, "tasks": []},
            "routines.a.cpu must be an integer",
        ),
        (
            {"limits": good_limits, "routines": {"a": routine}, "tasks": [{"id": "1"}]},
            "tasks[0] has no 'routine'",
        ),
        (
            {
                "limits": good_limits,
                "routines": {"a": routine},
                "tasks": [{"id": "1", "routine": "b"}],
            },
            "tasks[0].routine: unknown routine 'b'",
        ),
        (
            {
                "limits": good_limits,
                "routines": {"a": routine},
                "tasks": [
                    {"id": "1", "routine": "a", "depends_on": ["2"]},
                    {"id": "2", "routine": "a", "depends_on": ["1"]},
                ],
            },
            "dependency cycle",
        ),
    ]
    for k, (data, words) in enumerate(cases):
        done = hrwsi("--instance", str(write(tmp_path, data, f"bad{k}.json")), "--json")
        assert done.returncode == 2, (words, done.stdout)
        assert words in " ".join(done.stderr.split()), (words, done.stderr)
        assert done.stdout == ""
    missing = hrwsi("--instance", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read instance file" in missing.stderr


def test_gantt_file_is_an_svg_with_one_bar_per_vm(tmp_path: Path) -> None:
    """--gantt writes an SVG that parses and carries one titled group per VM."""
    instance = instances.maja_fsc(300, seed=2)
    svg = tmp_path / "plan.svg"
    done = hrwsi(
        "--instance",
        str(write(tmp_path, instances.instance_to_json(instance))),
        "--gantt",
        str(svg),
    )
    assert done.returncode == 0, done.stderr
    assert "planned 300 tasks on" in done.stdout
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    vm_lines = [line for line in done.stdout.splitlines() if line.strip().startswith("vm-")]
    assert len(titles) == len(vm_lines) > 0
