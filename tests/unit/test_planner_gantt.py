"""The SVG Gantt chart: well-formed, one bar per VM, usage against the quotas, readable at scale."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

from hrwsi.domain import gantt, instances, planner
from hrwsi.domain.planning import Plan

SVG = "{http://www.w3.org/2000/svg}"


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_small_plan_labels_every_vm_and_draws_four_quota_panels() -> None:
    """Few VMs: each has a labelled row and a tooltip; cpu/ram/storage/VMs panels show quotas."""
    instance = instances.five_routines(200, seed=1, quota=20, vm_max=10)
    plan = planner.plan(instance)
    root = ET.fromstring(gantt.render_svg(plan, instance, instance.limits))
    labels = texts(root)
    for vm in plan.vms:
        assert vm.name in labels
    assert len(list(root.iter(f"{SVG}title"))) == len(plan.vms)
    assert sum(label.startswith("quota ") for label in labels) == 4
    assert {"cpu", "ram", "storage", "VMs"} <= set(labels)


def test_many_vms_are_grouped_by_flavour() -> None:
    """Hundreds of VMs: rows get thin and one label per flavour says how many VMs it has."""
    instance = instances.five_routines(10000, seed=1, quota=1000, vm_max=500)
    plan = planner.plan(instance)
    assert len(plan.vms) > 100
    labels = texts(ET.fromstring(gantt.render_svg(plan, instance, instance.limits)))
    counts = {vm.flavour: 0 for vm in plan.vms}
    for vm in plan.vms:
        counts[vm.flavour] += 1
    for flavour, count in counts.items():
        assert f"{flavour} \N{MULTIPLICATION SIGN} {count}" in labels
    assert not any(label.startswith("vm-") for label in labels)


def test_over_quota_usage_is_flagged() -> None:
    """A plan breaking a quota (drawn for diagnosis) says OVER QUOTA on that panel."""
    instance = instances.five_routines(60, seed=3)
    plan = planner.plan(instance)
    tight = dataclasses.replace(instance.limits, cpu_max=1)
    labels = texts(ET.fromstring(gantt.render_svg(plan, instance, tight)))
    assert any("OVER QUOTA" in label for label in labels)


def test_unplanned_answer_shows_the_reason() -> None:
    """An impossible answer draws no bar and prints the reason."""
    instance = instances.five_routines(20, seed=0)
    answer = Plan("impossible", reason="routine 'R5' does not fit the quotas")
    root = ET.fromstring(gantt.render_svg(answer, instance, instance.limits))
    assert any("does not fit the quotas" in label for label in texts(root))
    assert not list(root.iter(f"{SVG}title"))
