"""The stand-in as one object: lifecycle, faults and the HTTP entry that routes to each area."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hrwsi.testing.nomad_server.allocations import AllocationsApi
from hrwsi.testing.nomad_server.common import (
    RecordedRequest,
    Script,
    _Fault,
    _HttpError,
    _QuietServer,
)
from hrwsi.testing.nomad_server.events import EventStream
from hrwsi.testing.nomad_server.jobs import JobsApi
from hrwsi.testing.nomad_server.variables import VariablesApi


class NomadStandIn(JobsApi, AllocationsApi, EventStream, VariablesApi):
    """A simulated Nomad cluster served on ``127.0.0.1`` (see the package docstring).

    ``variables_api=False`` plays a cluster without Nomad variables (Nomad < 1.4): every
    ``/v1/var`` path answers 404 as an unknown route does. ``replace_lost_always=True``
    plays Nomad < 1.7.2: lost allocations are replaced whatever the group says.
    """

    def __init__(
        self,
        *,
        nodes: Iterable[str] = ("vm-1",),
        drivers: Iterable[str] = ("docker", "exec", "raw_exec"),
        tokens: Iterable[str] | None = None,
        namespaces: Iterable[str] = ("default",),
        region: str = "global",
        heartbeat_s: float = 30.0,
        event_buffer: int = 1000,
        gc_threshold_s: float | None = None,
        scripts: Mapping[str, Script] | None = None,
        rule: Callable[[dict[str, Any]], Script | None] | None = None,
        port: int = 0,
        variables_api: bool = True,
        replace_lost_always: bool = False,
    ) -> None:
        super().__init__(
            drivers=drivers,
            tokens=tokens,
            namespaces=namespaces,
            region=region,
            heartbeat_s=heartbeat_s,
            event_buffer=event_buffer,
            gc_threshold_s=gc_threshold_s,
            scripts=scripts,
            rule=rule,
            port=port,
            variables_api=variables_api,
            replace_lost_always=replace_lost_always,
        )
        for name in nodes:
            self.add_node(name)
        methods = ["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"]
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    async def __aenter__(self) -> NomadStandIn:
        await self.start_listening()
        self._gc_task = asyncio.create_task(self._gc_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._gc_task is not None:
            self._gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gc_task
        for task in list(self._sims.values()):
            task.cancel()
        for task in list(self._sims.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.stop_listening()

    async def start_listening(self) -> None:
        """Serve on the port (the same one again after :meth:`stop_listening`)."""
        if self._serve_task is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it: without it h11's separate header and body writes meet
        # Nagle and delayed ACKs, and every reply takes 40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", self._port))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        self._stopping = asyncio.Event()
        config = uvicorn.Config(
            self.app,
            log_level="critical",
            lifespan="off",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        server = _QuietServer(config)
        self._server = server
        self._serve_task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._serve_task.done():
                self._serve_task.result()
            await asyncio.sleep(0.01)

    async def stop_listening(self) -> None:
        """Close the port and every open connection (event streams end); the cluster runs on."""
        if self._server is None or self._serve_task is None:
            return
        self._stopping.set()
        self._server.should_exit = True
        await self._serve_task
        self._server = None
        self._serve_task = None

    async def outage(self, seconds: float) -> None:
        """Be unreachable for ``seconds`` (connections refused), then listen on the same port."""
        await self.stop_listening()
        await asyncio.sleep(seconds)
        await self.start_listening()

    # -- faults and scripting ----------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        body: str = "rpc error: EOF",
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests (whose path contains the text) with this error."""
        self._faults.append(_Fault(status, body, path_contains, count))

    # -- HTTP entry --------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(
            RecordedRequest(
                request.method,
                request.url.path,
                {k: request.query_params.getlist(k) for k in request.query_params},
                dict(request.headers),
                body,
            )
        )
        try:
            self._check_faults(request)
            return await self._route(request, body)
        except _HttpError as exc:
            return Response(
                exc.body, status_code=exc.status, media_type="text/plain; charset=utf-8"
            )

    def _check_faults(self, request: Request) -> None:
        if self.leader_lost:
            raise _HttpError(500, "No cluster leader")
        for fault in self._faults:
            if fault.remaining > 0 and (
                fault.path_contains is None or fault.path_contains in request.url.path
            ):
                fault.remaining -= 1
                raise _HttpError(fault.status, fault.body)
        self._check_token(request)
        region = request.query_params.get("region")
        if region and region != self.region:
            raise _HttpError(500, "No path to region")

    async def _route(self, request: Request, body: bytes) -> Response:
        path = request.url.path
        ns = request.query_params.get("namespace") or "default"
        response = (
            await self._jobs_route(request, ns, body)
            or await self._reads_route(request)
            or self._variables_route(request, ns, body)
            or self._stream_route(request, ns)
        )
        if response is not None:
            return response
        if path == "/v1/system/gc" and request.method in ("PUT", "POST"):
            self._collect(force=True)
            return Response(b"", status_code=200)
        raise _HttpError(404, "Invalid URL")
