"""A Nomad stand-in over real HTTP, following ``shared/nomad-api/CONTRACT.md``.

::

    async with NomadStandIn(nodes=["vm-1"], heartbeat_s=0.2) as nomad:
        client = httpx.AsyncClient(base_url=nomad.address)
        nomad.scripts["hrwsi-task-1-attempt-1"] = Script(exit_code=3)

What it serves (plain-text errors everywhere, ``X-Nomad-Index`` on reads, blocking queries
with ``index``/``wait``, ``namespace``/``region`` checks, ACL tokens in ``X-Nomad-Token`` or
``Authorization: Bearer``):

- ``PUT|POST /v1/jobs`` and ``/v1/job/:id``: register with Canonicalize defaults, validation
  500s with go-multierror bodies, ``EnforceIndex`` semantics; ``GET /v1/jobs?prefix=``.
- ``PUT|POST /v1/jobs/parse``: the stand-in parses no HCL. An empty spec is 400
  ``Job spec is empty``; anything else is 400 ``Failed to parse job: …`` (register JSON).
- ``PUT|POST /v1/job/:id/dispatch`` with ``idempotency_token`` (query wins over body): the
  same token returns the existing child with ``EvalID: ""`` until the child is GC'd/purged.
- ``GET /v1/job/:id``, ``/summary``, ``/allocations``, ``/v1/allocation/:id``,
  ``/v1/evaluation/:id``, ``/v1/nodes``, ``/v1/node/:id``; ``DELETE /v1/job/:id[?purge]``;
  ``PUT /v1/system/gc``; ``GET|PUT|DELETE /v1/var/:path`` (Nomad variables, kept in
  :attr:`NomadStandIn.variables`).
- ``GET /v1/event/stream``: ndjson, ``{}`` heartbeats every ``heartbeat_s``, ``topic=T[:key]``
  filters, inclusive ``index``, a ring buffer of ``event_buffer`` frames.

The simulated cluster: ``nodes`` (names are VM names, ``unique.hostname`` = name, drivers
``docker``, ``exec``, ``raw_exec``). Placement honours equality/inequality/regexp constraints
on ``${attr.unique.hostname}``, ``${node.unique.name}`` and ``${attr.*}`` and the driver;
a run no node can take gets a *complete* evaluation with ``FailedTGAllocs`` and a
``BlockedEval`` and stays ``pending`` with ``Queued: 1`` until a fitting node is added.
Each allocation plays a :class:`Script` (looked up in ``scripts`` by job id, then via the
``rule`` callable, else a default success). Finished jobs are GC'd ``gc_threshold_s`` after
they end (then 404). Faults: :attr:`NomadStandIn.leader_lost`, :meth:`NomadStandIn.fail_next`,
:meth:`NomadStandIn.cut_streams`, :meth:`NomadStandIn.silence_streams`,
:meth:`NomadStandIn.outage` (stop listening, come back on the same port).

The package follows the API areas it serves: :mod:`.core` (state, indexes, blocking
queries, job status), :mod:`.scheduler` (evaluations, placement, allocation life, node loss,
GC), :mod:`.jobs`, :mod:`.allocations` (allocations, evaluations, nodes), :mod:`.events`,
:mod:`.variables` (variables and ACL tokens), :mod:`.server` (lifecycle, faults, routing)
and :mod:`.harness` (the contract-test harness and ``python -m hrwsi.testing.nomad_server``).

Re-registering a live job replaces its spec without replacing its allocations (the stand-in
does no rolling updates); re-registering a stopped job places it again.
"""

from __future__ import annotations

from hrwsi.testing.nomad_server.common import RecordedRequest, Script
from hrwsi.testing.nomad_server.harness import ContractHarness, main
from hrwsi.testing.nomad_server.server import NomadStandIn

__all__ = ["ContractHarness", "NomadStandIn", "RecordedRequest", "Script", "main"]
