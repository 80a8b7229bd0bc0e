"""Console pieces without I/O beyond a temp file: log tail, plan view, auth, metric bridge."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from hrwsi.domain import gantt, planning
from hrwsi.web import auth, metrics, plan_view, store


def test_log_tail_reads_only_the_end_in_whole_lines(tmp_path: Path) -> None:
    """A 1 MiB log gives its last lines, at most max_bytes, never the start of the file."""
    log = tmp_path / "run.log"
    log.write_text("".join(f"line {n:06d}\n" for n in range(100_000)))
    tail = store.log_tail(str(log), max_bytes=1024)
    assert tail is not None and len(tail.encode()) <= 1024
    assert tail.endswith("line 099999\n") and tail.startswith("line ")
    assert "line 000000" not in tail
    assert store.log_tail(str(tmp_path / "missing.log")) is None
    assert store.log_tail(None) is None


def test_plan_view_places_tasks_of_several_passes_on_one_axis() -> None:
    """Tasks planned by passes a minute apart line up; the Gantt renders them per VM."""
    t0 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    t1 = datetime(2026, 3, 4, 10, 1, tzinfo=UTC)
    rows = [
        {
            "id": 1,
            "created_at": t0,
            "planned_start_min": 0,
            "planned_end_min": 5,
            "vm_name": "vm-a",
            "flavour": "MAJA",
        },
        {
            "id": 2,
            "created_at": t1,
            "planned_start_min": 4,
            "planned_end_min": 9,
            "vm_name": "vm-a",
            "flavour": "MAJA",
        },
        {
            "id": 3,
            "created_at": t1,
            "planned_start_min": 0,
            "planned_end_min": None,
            "vm_name": "vm-b",
            "flavour": "FSC",
        },
    ]
    routines = {"MAJA": planning.Routine("MAJA", 5, 5, 5, 5)}
    limits = planning.Limits(900, 200, 200, 200, 100)
    plan, instance = plan_view.build(rows, routines, limits)
    by_name = {vm.name: vm for vm in plan.vms}
    assert [(t.start, t.end) for t in by_name["vm-a"].tasks] == [(0, 5), (5, 10)]
    assert by_name["vm-b"].tasks[0].start == 1 and "FSC" in instance.routines
    svg = gantt.render_svg(plan, instance, limits)
    assert "vm-a" in svg and "vm-b" in svg


def test_session_and_csrf_cannot_be_forged() -> None:
    """Signed values verify only under the same token; read-only guards sign nothing."""
    guard = auth.Guard("tok")
    cookie = guard.session_value("alice")
    assert guard.actor_of(cookie) == "alice"
    assert guard.actor_of(cookie.replace("alice", "mallory")) is None
    assert auth.Guard("other").actor_of(cookie) is None
    nonce = guard.new_nonce()
    assert guard.csrf_ok(nonce, guard.csrf_token(nonce))
    assert not guard.csrf_ok(guard.new_nonce(), guard.csrf_token(nonce))
    assert not auth.Guard(None).csrf_ok(nonce, guard.csrf_token(nonce))
    assert auth.Guard(None).actor_of(cookie) is None
    assert guard.actor_of(None, "Bearer tok") == "api"


def test_log_bridge_counts_service_events() -> None:
    """Event-name logs become counters and the planner pass histogram."""
    m = metrics.Metrics()
    logger = logging.getLogger("hrwsi.test_bridge")
    handler = metrics.LogBridge(m)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("orchestrator.planned", extra={"tasks": 7, "pass_ms": 12.0})
        logger.info("launcher.processed", extra={"key": "k"})
        logger.warning("catalogue.retry", extra={"status_code": 503})
        logger.warning("nomad.request_retry", extra={"error": "x"})
    finally:
        logger.removeHandler(handler)
    text = m.exposition().decode()
    assert "hrwsi_tasks_planned_total 7.0" in text
    assert 'hrwsi_attempts_total{outcome="processed"} 1.0' in text
    assert 'hrwsi_catalogue_request_errors_total{kind="http_503"} 1.0' in text
    assert 'hrwsi_nomad_request_errors_total{kind="request_retry"} 1.0' in text
    assert "hrwsi_planner_pass_seconds_count 1.0" in text
