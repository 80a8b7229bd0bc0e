"""``hrwsi plan``: plan tasks on the fewest VMs and show the plan.

Two sources of work:

* ``--instance FILE.json`` — a standalone instance (limits, routines, tasks; see
  :mod:`hrwsi.domain.instances`), no database needed. ``--json`` prints the machine-readable
  answer ``{"feasible", "status", "reason", "vms", "makespan", "vm_minutes", "lower_bound",
  "gap", "seconds"}``; without it a short human summary is printed. ``--gantt FILE.svg`` draws
  the plan.
* no ``--instance`` — the pending inputs in the database (what the orchestrator would plan
  now). That path is :func:`_plan_from_database`, owned by the planning service: it builds the
  instance from the database and returns it with the plan; ``--dry-run`` means "show, write
  nothing". Output (summary, ``--json``, ``--gantt``) is shared by both sources.

Exit codes: 0 planned, 1 not planned (impossible or search failed; the answer is still
printed), 2 bad usage or a malformed instance file (the message names the culprit).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hrwsi.cli import common
from hrwsi.domain import errors, gantt, instances, planner
from hrwsi.domain.planning import Instance, Plan


def _load_instance(path: Path) -> Instance:
    """The instance in ``path``, or exit 2 saying what is wrong with the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        common.fail(f"cannot read instance file {path}: {exc.strerror or exc}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        common.fail(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
    try:
        return instances.instance_from_json(data)
    except errors.PlanningError as exc:
        common.fail(f"{path}: {exc}")


def _plan_from_database(*, dry_run: bool, time_limit_s: float | None) -> tuple[Instance, Plan]:
    """Plan the inputs pending in the database: the instance built from them, and its plan.

    One pass of :class:`hrwsi.services.orchestrator.OrchestratorService`: with ``dry_run`` it
    plans what is pending now and rolls back (no lock, nothing written); without, it takes the
    planning lock and writes the VMs and tasks as the running service would. Inputs by
    condition, VMs by flavour and what was written go to stderr (stdout stays the plan or its
    JSON). A pass that could not plan returns a non-feasible plan saying why (exit 1).
    """
    from hrwsi import bootstrap
    from hrwsi.domain import planning
    from hrwsi.services import orchestrator

    cfg = common.load_config()
    database = common.open_database(cfg)

    def plan_with_limit(instance: Instance) -> Plan:
        limit = orchestrator.search_time_limit(len(instance.tasks))
        return planner.plan(instance, time_limit_s=limit if time_limit_s is None else time_limit_s)

    async def one_pass() -> orchestrator.PassResult:
        svc = bootstrap.build_orchestrator(cfg, database.url, planner=plan_with_limit)
        try:
            return await svc.plan_pending(write=not dry_run)
        finally:
            await svc.aclose()

    result = common.run(one_pass())
    out = common.console
    conditions = ", ".join(f"{k} {v}" for k, v in result.inputs_by_condition.items())
    out.print(f"pending inputs: {conditions or 'none'}", highlight=False)
    if result.vms_by_flavour:
        flavours = ", ".join(f"{k} {v}" for k, v in result.vms_by_flavour.items())
        out.print(f"VMs by flavour: {flavours}", highlight=False)
    for why, n in result.left_pending.items():
        out.print(f"left pending: {n} ({why.replace('_', ' ')})", highlight=False)
    if result.outcome == "written":
        out.print(
            f"wrote {result.vms_written} VMs and {result.tasks_written} tasks", highlight=False
        )
    elif result.outcome == "dry_run":
        out.print("dry run: nothing written", highlight=False)
    limits = orchestrator.remaining_limits(cfg, ())
    empty = planning.Instance(limits=limits, routines={}, tasks=())
    instance = result.instance or empty
    if result.outcome == "plan_invalid":
        common.fail(f"the planner made an invalid plan, nothing written: {result.reason}", code=1)
    if result.plan is not None:
        return instance, result.plan
    if result.outcome == "nothing_pending":
        return empty, Plan(status="planned")
    if result.outcome == "locked":
        common.fail("another orchestrator is planning right now; try again", code=1)
    if result.outcome == "no_capacity":
        reason = "VMs still running use up a quota; the inputs wait for them to end"
    else:
        reason = result.reason or result.outcome.replace("_", " ")
    return instance, Plan(status="impossible", reason=reason)


def _summary(plan: Plan, instance: Instance) -> str:
    lb = plan.lower_bound
    if not plan.feasible:
        return (
            f"{plan.status.replace('_', ' ')}: {plan.reason}\n"
            f"lower bound: {lb.vms} VMs, makespan {lb.makespan} min"
        )
    lines = [
        f"planned {len(instance.tasks)} tasks on {len(plan.vms)} VMs "
        f"(lower bound {lb.vms}); makespan {plan.makespan} min of t_max "
        f"{instance.limits.t_max}; {plan.vm_minutes} VM-minutes; {plan.seconds:.3f} s"
    ]
    for vm in plan.vms[:50]:
        lines.append(f"  {vm.name:<24} {vm.start:>6} - {vm.stop:<6} {len(vm.tasks):>6} tasks")
    if len(plan.vms) > 50:
        lines.append(f"  ... and {len(plan.vms) - 50} more VMs")
    return "\n".join(lines)


def plan_command(
    instance_file: Annotated[
        Path | None,
        typer.Option(
            "--instance", help="Plan this JSON instance instead of the database's inputs."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    gantt_file: Annotated[
        Path | None,
        typer.Option("--gantt", help="Write the plan as an SVG Gantt chart to this file."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Database source: show what would be planned, write nothing."
        ),
    ] = False,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit",
            min=0.0,
            help=(
                "Seconds of search after the first schedule (default 1.5); 5 or more also "
                "lets the exact mode (OR-Tools, independent tasks) load and run."
            ),
        ),
    ] = None,
) -> None:
    """Plan tasks on the fewest VMs within the quotas; print it, draw it."""
    if instance_file is not None:
        instance = _load_instance(instance_file)
        try:
            result = planner.plan(instance, time_limit_s=time_limit)
        except errors.PlanningError as exc:
            common.fail(f"{instance_file}: {exc}")
    else:
        instance, result = _plan_from_database(dry_run=dry_run, time_limit_s=time_limit)
    if gantt_file is not None:
        try:
            gantt_file.write_text(
                gantt.render_svg(result, instance, instance.limits), encoding="utf-8"
            )
        except OSError as exc:
            common.fail(f"cannot write {gantt_file}: {exc.strerror or exc}")
    if as_json:
        typer.echo(json.dumps(instances.plan_to_json(result)))
    else:
        typer.echo(_summary(result, instance))
        if gantt_file is not None:
            typer.echo(f"Gantt chart written to {gantt_file}")
    if not result.feasible:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)
