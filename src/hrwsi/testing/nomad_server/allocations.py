"""Read-only API areas: allocations, evaluations and nodes."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hrwsi.testing.nomad_server.common import (
    _HttpError,
)
from hrwsi.testing.nomad_server.core import ClusterCore


class AllocationsApi(ClusterCore):
    """``/v1/allocation/:id``, ``/v1/evaluation/:id``, ``/v1/nodes``, ``/v1/node/:id``."""

    async def _reads_route(self, request: Request) -> Response | None:
        """The answer for an allocation, evaluation or node path, else None."""
        path = request.url.path
        if request.method != "GET":
            return None
        if path.startswith("/v1/allocation/"):
            alloc_id = path[len("/v1/allocation/") :]
            index = await self._block(request, "allocs")
            if not re.fullmatch(
                r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", alloc_id
            ):
                raise _HttpError(500, f'rpc error: alloc lookup failed: Invalid UUID: "{alloc_id}"')
            alloc = self._allocs.get(alloc_id)
            if alloc is None:
                raise _HttpError(404, "alloc not found")
            return self._json(alloc, index)
        if path.startswith("/v1/evaluation/"):
            index = await self._block(request, "evals")
            evaluation = self._evals.get(path[len("/v1/evaluation/") :])
            if evaluation is None:
                raise _HttpError(404, "eval not found")
            return self._json(evaluation, index)
        if path == "/v1/nodes":
            index = await self._block(request, "nodes")
            nodes = self._filter_nodes(request.query_params.get("filter"))
            with_resources = request.query_params.get("resources") == "true"
            stubs = [self._node_stub(n, with_resources) for n in nodes]
            return self._json(stubs, index)
        if path.startswith("/v1/node/"):
            index = await self._block(request, "nodes")
            node = self._nodes.get(path[len("/v1/node/") :])
            if node is None:
                raise _HttpError(404, "node not found")
            return self._json(node, index)
        return None

    def _filter_nodes(self, expression: str | None) -> list[dict[str, Any]]:
        nodes = sorted(self._nodes.values(), key=lambda n: n["Name"])
        if not expression:
            return nodes
        match = re.fullmatch(r'\s*(Name|Attributes\["([^"]+)"\])\s*==\s*"([^"]*)"\s*', expression)
        if not match:
            raise _HttpError(
                400, f"failed to read filter expression: unsupported by the stand-in: {expression}"
            )
        if match[1] == "Name":
            return [n for n in nodes if n["Name"] == match[3]]
        return [n for n in nodes if n["Attributes"].get(match[2]) == match[3]]

    @staticmethod
    def _node_stub(node: dict[str, Any], with_resources: bool) -> dict[str, Any]:
        keys = (
            "ID",
            "Name",
            "Address",
            "Datacenter",
            "NodePool",
            "Status",
            "SchedulingEligibility",
            "Drain",
            "Drivers",
            "CreateIndex",
            "ModifyIndex",
        )
        stub = {k: node[k] for k in keys}
        if with_resources:
            stub["NodeResources"] = node["NodeResources"]
        return stub
