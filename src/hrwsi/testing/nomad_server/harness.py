"""The stand-in for the executor contract tests, and ``python -m hrwsi.testing.nomad_server``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from hrwsi.config import NomadExecutorConfig
from hrwsi.executors.base import Attempt, RoutineSpec
from hrwsi.executors.nomad import NomadExecutor
from hrwsi.testing.nomad_server.common import (
    Script,
)
from hrwsi.testing.nomad_server.server import NomadStandIn


class ContractHarness:
    """The Nomad executor on a fresh stand-in, for ``tests/integration/test_executor_contract``.

    ``async with ContractHarness(tmp_path) as executor``; ``attempt(task_id, behaviour)`` makes
    an attempt whose job will ``"succeed"``, ``"fail"`` (exit 4) or ``"hang"``.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.nomad = NomadStandIn(nodes=["vm-1"], heartbeat_s=0.2)
        self.executor: NomadExecutor | None = None

    async def __aenter__(self) -> NomadExecutor:
        await self.nomad.__aenter__()
        settings = NomadExecutorConfig(
            address=self.nomad.address,
            sweep_interval_s=0.5,
            placement_timeout_s=5.0,
            request_timeout_s=5.0,
            event_silence_s=2.0,
            backoff_initial_s=0.0,
            backoff_max_s=0.0,
        )
        self.executor = NomadExecutor(settings)
        return self.executor

    async def __aexit__(self, *exc: object) -> None:
        if self.executor is not None:
            await self.executor.aclose()
        await self.nomad.__aexit__(*exc)

    def attempt(self, task_id: int, behaviour: str) -> Attempt:
        routine = RoutineSpec("R", 1, 1, 1, 1, docker_image="busybox:1")
        attempt = Attempt(task_id, 1, routine, "vm-1", ("/in/x",), "/HRWSI/L2A/PC/T/x")
        scripts = {"succeed": Script(), "fail": Script(exit_code=4), "hang": Script(hang=True)}
        job_id = (
            "hrwsi-" + attempt.key if self.executor is None else self.executor.job_id(attempt.key)
        )
        self.nomad.scripts[job_id] = scripts[behaviour]
        return attempt


async def _serve_forever(server: NomadStandIn) -> None:
    async with server:
        print(f"nomad stand-in: {server.address}", flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m hrwsi.testing.nomad_server --port 4646 --nodes vm-1 vm-2``: serve forever.

    Every job succeeds after ``--run-s`` seconds (the routine does not really run: no
    product file is written), which is enough to watch the launcher's status trail.
    """
    parser = argparse.ArgumentParser(description="Serve the Nomad HTTP API stand-in.")
    parser.add_argument("--port", type=int, default=4646)
    parser.add_argument("--nodes", nargs="*", default=["vm-1"], help="node (VM) names")
    parser.add_argument("--token", action="append", help="accepted ACL token (repeatable)")
    parser.add_argument("--run-s", type=float, default=2.0, help="how long each run lasts")
    parser.add_argument("--gc-s", type=float, default=None, help="GC threshold in seconds")
    args = parser.parse_args(argv)
    server = NomadStandIn(
        nodes=args.nodes,
        tokens=args.token,
        port=args.port,
        gc_threshold_s=args.gc_s,
        rule=lambda job: Script(run_s=args.run_s),
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(server))
