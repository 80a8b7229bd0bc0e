"""The composition root wires the configured adapters into the services."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from hrwsi import bootstrap
from hrwsi.config import Config, ExecutorConfig, NomadExecutorConfig
from hrwsi.domain import errors
from hrwsi.executors.local import LocalExecutor
from hrwsi.executors.nomad import NomadExecutor
from hrwsi.testing.nomad_server import NomadStandIn


async def test_only_builds_the_named_services(db_url: str) -> None:
    """`--only orchestrator,launcher` hosts exactly those, the launcher with a local executor."""
    app = await bootstrap.build(Config(), db_url, only=("orchestrator", "launcher"))
    try:
        assert [s.name for s in app.services] == ["orchestrator", "launcher"]
        launcher = app.services[1]
        assert isinstance(launcher.executor, LocalExecutor)  # type: ignore[attr-defined]
    finally:
        for service in app.services:
            await service.aclose()


async def test_nomad_secrets_are_published_to_a_variable_not_a_spec(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With executor.kind nomad, passthrough secrets go to the Nomad variable at start."""
    monkeypatch.setenv("HRWSI_ROUTINE_S3_KEY", "s3cr3t-value")
    async with NomadStandIn(tokens=["tok"]) as nomad:
        config = Config(
            executor=ExecutorConfig(
                kind="nomad",
                nomad=NomadExecutorConfig(
                    address=nomad.address,
                    token=SecretStr("tok"),
                    passthrough_env=("HRWSI_ROUTINE_S3_KEY",),
                ),
            )
        )
        app = await bootstrap.build(config, db_url, only=("launcher",))
        try:
            launcher = app.services[0]
            assert isinstance(launcher.executor, NomadExecutor)  # type: ignore[attr-defined]
            stored = [items for (_, _), items in nomad.variables.items()]
            assert {"HRWSI_ROUTINE_S3_KEY": "s3cr3t-value"} in stored
            assert nomad.received_jobs == []
        finally:
            await app.services[0].aclose()


async def test_nomad_without_variables_fails_at_start_with_a_clear_message(db_url: str) -> None:
    """passthrough_env on a cluster without Nomad variables (< 1.4) stops the build itself,
    naming what is missing, before any job is submitted."""
    async with NomadStandIn(variables_api=False) as nomad:
        config = Config(
            executor=ExecutorConfig(
                kind="nomad",
                nomad=NomadExecutorConfig(
                    address=nomad.address, passthrough_env=("HRWSI_ROUTINE_S3_KEY",)
                ),
            )
        )
        with pytest.raises(errors.ExecutorRejected, match=r"Nomad variables \(Nomad >= 1\.4\)"):
            await bootstrap.build(config, db_url, only=("launcher",))
        assert nomad.received_jobs == []


async def test_build_seeds_the_configured_routines_so_planner_and_launcher_agree(
    db_url: str,
) -> None:
    """A routine resized in the configuration (not re-seeded by hand) is resized in the
    database at start: the orchestrator plans with the sizes the launcher dispatches with."""
    import psycopg

    from hrwsi.services.orchestrator import OrchestratorService

    base = Config()
    bigger = tuple(
        r.model_copy(update={"cpu": r.cpu + 3, "duration": r.duration + 7}) for r in base.routines
    )
    config = Config(routines=bigger)
    app = await bootstrap.build(config, db_url, only=("orchestrator",))
    try:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            cur = await conn.execute("SELECT name, cpu, duration FROM hrwsi.processing_routine")
            stored = {name: (cpu, duration) for name, cpu, duration in await cur.fetchall()}
        for routine in bigger:
            assert stored[routine.name] == (routine.cpu, routine.duration)
        orchestrator = app.services[0]
        assert isinstance(orchestrator, OrchestratorService)
        result = await orchestrator.plan_pending(write=False)
        assert result.outcome == "nothing_pending"
    finally:
        for service in app.services:
            await service.aclose()
