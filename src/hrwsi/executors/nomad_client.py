"""A thin client for the subset of the Nomad HTTP API the launcher uses.

Follows ``shared/nomad-api/CONTRACT.md``. Why not python-nomad: it sends the dispatch
idempotency token in the body (Nomad ignores it there), has no blocking queries, and its
event stream loses filter keys and replays from the first index on reconnect.

- The ``httpx.AsyncClient`` is injected (tests pass ``httpx.MockTransport``); the ACL token
  goes in ``X-Nomad-Token`` and nowhere else (never logged, never in a URL or a body).
- Errors are plain text. They become :class:`hrwsi.domain.errors.ExecutorRejected` (403, 4xx,
  spec validation and other permanent 500s), :class:`JobNotFound` (404), or
  :class:`hrwsi.domain.errors.ExecutorTransient` (timeouts, connection errors, leader loss,
  other 5xx) which is retried here (``stamina``: exponential backoff with jitter, switched
  off by a zero ``initial_s``) before it is raised.
- Reads are blocking queries when given ``index``: they return :class:`Indexed` with the
  ``X-Nomad-Index`` of the reply.
- :meth:`NomadClient.events` follows the ndjson event stream, skips ``{}`` heartbeats and
  reconnects from the last index after a cut or ``event_silence_s`` without a byte, dropping
  frames already seen.
- The client reads no environment: the address and the token are handed in (by
  ``hrwsi.bootstrap`` in production, from the configuration).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import stamina
from pydantic import SecretStr

from hrwsi.config import NomadExecutorConfig
from hrwsi.domain import errors

log = logging.getLogger(__name__)

T = TypeVar("T")

# 500 bodies that will not change if the request is repeated.
_PERMANENT_500 = (
    "error occurred",  # go-multierror validation body: "1 error occurred:\n\t* ..."
    "errors occurred",
    "Enforcing job modify index",
    "nonexistent namespace",
    "No path to region",
    "parameterized job",
    "is stopped",
    "Payload",
    "meta keys",
    "unpermitted metadata",
    "Invalid UUID",
)
_FORBIDDEN = (
    "Permission denied",
    "ACL token not found",
    "Job registration, dispatch, and scale are disabled",
)


class JobNotFound(errors.ExecutorRejected):
    """Nomad has no such job, allocation, evaluation or node (404): never made, purged or GC'd."""


@dataclass(frozen=True, slots=True)
class Indexed(Generic[T]):
    """A read result with the ``X-Nomad-Index`` to pass back as ``index`` to block on it."""

    value: T
    index: int


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried: ``attempts`` tries in all, exponential backoff.

    The waits are stamina's: ``initial_s * 2**(n-1)`` plus up to ``initial_s`` of jitter,
    capped at ``max_s``; ``initial_s = 0`` switches waiting off (tests).
    """

    attempts: int = 5
    initial_s: float = 0.5
    max_s: float = 10.0

    def retrying(
        self, on: type[Exception] | tuple[type[Exception], ...], *, forever: bool = False
    ) -> AsyncIterator[stamina.Attempt]:
        """A ``stamina.retry_context`` retrying ``on`` (``forever``: no attempt limit)."""
        return stamina.retry_context(
            on=on,
            attempts=None if forever else max(1, self.attempts),
            timeout=None,
            wait_initial=max(0.0, self.initial_s),
            wait_max=max(0.0, self.max_s),
            wait_jitter=max(0.0, self.initial_s),
        )


def job_path(job_id: str) -> str:
    """URL path of a job; dispatched child ids contain ``/``, which is escaped."""
    return "/v1/job/" + quote(job_id, safe="")


def classify(status_code: int, body: str, url: str = "") -> errors.ExecutorError:
    """The typed error for a non-2xx reply with this plain-text body."""
    text = body.strip() or f"HTTP {status_code}"
    if status_code == 403 or any(marker in text for marker in _FORBIDDEN):
        return errors.ExecutorRejected(text, status_code=status_code, url=url)
    if status_code == 404:
        return JobNotFound(text, status_code=status_code, url=url)
    if "No cluster leader" in text:
        return errors.ExecutorTransient(text, status_code=status_code, url=url)
    if status_code == 429 or status_code >= 502:
        return errors.ExecutorTransient(text, status_code=status_code, url=url)
    if status_code == 500:
        if any(marker in text for marker in _PERMANENT_500):
            return errors.ExecutorRejected(text, status_code=status_code, url=url)
        return errors.ExecutorTransient(text, status_code=status_code, url=url)
    return errors.ExecutorRejected(text, status_code=status_code, url=url)


class NomadClient:
    """Calls on one Nomad region and namespace; see the module docstring for errors."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token: SecretStr | None = None,
        namespace: str = "default",
        region: str | None = None,
        request_timeout_s: float = 30.0,
        event_silence_s: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._http = http
        self._token = token
        self.namespace = namespace
        self.region = region
        self.request_timeout_s = request_timeout_s
        self.event_silence_s = event_silence_s
        self.retry = retry or RetryPolicy()

    @classmethod
    def from_config(
        cls, settings: NomadExecutorConfig, http: httpx.AsyncClient | None = None
    ) -> NomadClient:
        """A client for ``config.executor.nomad``; makes its own AsyncClient if none is given."""
        return cls.connect(settings.address, settings.token, settings, http)

    @classmethod
    def connect(
        cls,
        address: str,
        token: SecretStr | None,
        settings: NomadExecutorConfig,
        http: httpx.AsyncClient | None = None,
    ) -> NomadClient:
        """A client of the cluster at ``address`` with this ACL token (the other settings —
        namespace, region, timeouts, retries — from ``settings``)."""
        http = http or httpx.AsyncClient(base_url=address)
        return cls(
            http,
            token=token,
            namespace=settings.namespace,
            region=settings.region,
            request_timeout_s=settings.request_timeout_s,
            event_silence_s=settings.event_silence_s,
            retry=RetryPolicy(
                settings.max_attempts, settings.backoff_initial_s, settings.backoff_max_s
            ),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing ------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self._token is None or not self._token.get_secret_value():
            return {}
        return {"X-Nomad-Token": self._token.get_secret_value()}

    def _params(self, extra: Mapping[str, Any] | None = None) -> httpx.QueryParams:
        params: list[tuple[str, str | int | float | bool | None]] = [("namespace", self.namespace)]
        if self.region:
            params.append(("region", self.region))
        for key, value in (extra or {}).items():
            if value is None:
                continue
            if isinstance(value, bool):
                params.append((key, "true" if value else "false"))
            elif isinstance(value, list | tuple):
                params.extend((key, str(v)) for v in value)
            else:
                params.append((key, str(value)))
        return httpx.QueryParams(params)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        wait_s: float | None = None,
    ) -> httpx.Response:
        timeout = self.request_timeout_s + (wait_s * 1.1 if wait_s else 0.0)
        async for attempt in self.retry.retrying(errors.ExecutorTransient):
            with attempt:
                if attempt.num > 1:
                    log.warning(
                        "nomad.request_retry",
                        extra={"method": method, "path": path, "attempt": attempt.num},
                    )
                return await self._once(method, path, params, body, timeout)
        raise AssertionError("stamina ends a retry context by returning or raising")

    async def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        timeout: float,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method,
                path,
                params=self._params(params),
                json=body,
                headers=self._headers(),
                timeout=timeout,
            )
        except httpx.TimeoutException as exc:
            raise errors.ExecutorTransient(f"Nomad timed out: {exc!r}", url=path) from exc
        except httpx.TransportError as exc:
            raise errors.ExecutorTransient(f"Nomad unreachable: {exc!r}", url=path) from exc
        if response.status_code >= 300:
            raise classify(response.status_code, response.text, path)
        return response

    @staticmethod
    def _index(response: httpx.Response) -> int:
        try:
            return int(response.headers.get("X-Nomad-Index", "0"))
        except ValueError:
            return 0

    @staticmethod
    def _json(response: httpx.Response, *, secret: bool = False) -> Any:
        """The JSON body; a body that is not JSON is quoted in the error unless ``secret``."""
        try:
            return response.json()
        except ValueError as exc:
            shown = "(not shown: it may hold secrets)" if secret else repr(response.text[:200])
            raise errors.ExecutorTransient(
                f"Nomad sent a body that is not JSON: {shown}",
                status_code=response.status_code,
                url=str(response.request.url.path),
            ) from exc

    async def _read(
        self, path: str, index: int | None, wait_s: float | None, extra: Mapping[str, Any]
    ) -> Indexed[Any]:
        params: dict[str, Any] = dict(extra)
        if index is not None:
            params["index"] = index
            params["wait"] = f"{int((wait_s if wait_s is not None else 30.0) * 1000)}ms"
        response = await self._request(
            "GET", path, params=params, wait_s=(wait_s or 30.0) if index is not None else None
        )
        return Indexed(self._json(response), self._index(response))

    # -- jobs ----------------------------------------------------------------------------

    async def register_job(
        self, job: Mapping[str, Any], *, enforce_index: bool = False, job_modify_index: int = 0
    ) -> dict[str, Any]:
        """Register (create or update) a job given as its JSON object (not wrapped)."""
        body = {
            "Job": job,
            "EnforceIndex": enforce_index,
            "JobModifyIndex": job_modify_index,
            "PolicyOverride": False,
        }
        response = await self._request("PUT", "/v1/jobs", body=body)
        result: dict[str, Any] = self._json(response)
        return result

    async def parse_job(self, hcl: str, *, canonicalize: bool = True) -> dict[str, Any]:
        """Turn HCL into the bare Job JSON (wrap it as ``{"Job": ...}`` to register)."""
        response = await self._request(
            "PUT", "/v1/jobs/parse", body={"JobHCL": hcl, "Canonicalize": canonicalize}
        )
        result: dict[str, Any] = self._json(response)
        return result

    async def dispatch_job(
        self,
        job_id: str,
        *,
        meta: Mapping[str, str] | None = None,
        payload: bytes | None = None,
        idempotency_token: str | None = None,
        id_prefix_template: str | None = None,
    ) -> dict[str, Any]:
        """Dispatch a parameterized job; the idempotency token goes in the query string.

        A repeated token returns the existing child with ``EvalID == ""``.
        """
        body: dict[str, Any] = {"Meta": dict(meta or {})}
        if payload is not None:
            body["Payload"] = base64.b64encode(payload).decode("ascii")
        if id_prefix_template:
            body["IdPrefixTemplate"] = id_prefix_template
        response = await self._request(
            "PUT",
            job_path(job_id) + "/dispatch",
            params={"idempotency_token": idempotency_token},
            body=body,
        )
        result: dict[str, Any] = self._json(response)
        return result

    async def get_job(
        self, job_id: str, *, index: int | None = None, wait_s: float | None = None
    ) -> Indexed[dict[str, Any]]:
        return await self._read(job_path(job_id), index, wait_s, {})

    async def get_job_summary(
        self, job_id: str, *, index: int | None = None, wait_s: float | None = None
    ) -> Indexed[dict[str, Any]]:
        return await self._read(job_path(job_id) + "/summary", index, wait_s, {})

    async def get_job_allocations(
        self,
        job_id: str,
        *,
        all_: bool = False,
        index: int | None = None,
        wait_s: float | None = None,
    ) -> Indexed[list[dict[str, Any]]]:
        """Allocation stubs of a job (``[]`` for an unknown job, as Nomad answers)."""
        extra = {"all": True} if all_ else {}
        return await self._read(job_path(job_id) + "/allocations", index, wait_s, extra)

    async def list_jobs(
        self, *, prefix: str | None = None, index: int | None = None, wait_s: float | None = None
    ) -> Indexed[list[dict[str, Any]]]:
        return await self._read("/v1/jobs", index, wait_s, {"prefix": prefix})

    async def delete_job(self, job_id: str, *, purge: bool = False) -> dict[str, Any]:
        """Stop a job (``purge``: and forget it). An unknown job answers 200 with zero fields."""
        response = await self._request("DELETE", job_path(job_id), params={"purge": purge})
        result: dict[str, Any] = self._json(response)
        return result

    # -- allocations, evaluations, nodes ---------------------------------------------------

    async def get_allocation(
        self, alloc_id: str, *, index: int | None = None, wait_s: float | None = None
    ) -> Indexed[dict[str, Any]]:
        return await self._read(f"/v1/allocation/{quote(alloc_id, safe='')}", index, wait_s, {})

    async def get_evaluation(
        self, eval_id: str, *, index: int | None = None, wait_s: float | None = None
    ) -> Indexed[dict[str, Any]]:
        return await self._read(f"/v1/evaluation/{quote(eval_id, safe='')}", index, wait_s, {})

    async def list_nodes(
        self,
        *,
        filter_: str | None = None,
        resources: bool = False,
        index: int | None = None,
        wait_s: float | None = None,
    ) -> Indexed[list[dict[str, Any]]]:
        extra: dict[str, Any] = {"filter": filter_}
        if resources:
            extra["resources"] = True
        return await self._read("/v1/nodes", index, wait_s, extra)

    async def get_node(self, node_id: str) -> Indexed[dict[str, Any]]:
        return await self._read(f"/v1/node/{quote(node_id, safe='')}", None, None, {})

    # -- variables (where the runs' secrets live) ------------------------------------------

    async def get_variable(self, path: str) -> Indexed[dict[str, Any]]:
        """A Nomad variable (``Items`` holds its values); 404 raises :class:`JobNotFound`.

        Its values are secrets: a cut or garbled body is never quoted in the error."""
        response = await self._request("GET", f"/v1/var/{quote(path, safe='/')}")
        return Indexed(self._json(response, secret=True), self._index(response))

    async def put_variable(self, path: str, items: Mapping[str, str]) -> None:
        """Write a Nomad variable (replacing its items). The body is never logged."""
        body = {"Namespace": self.namespace, "Path": path, "Items": dict(items)}
        await self._request("PUT", f"/v1/var/{quote(path, safe='/')}", body=body)

    # -- event stream ----------------------------------------------------------------------

    async def events(
        self,
        topics: Sequence[str],
        *,
        index: int = 0,
        on_connect: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Event frames (``{"Index": n, "Events": [...]}``) in index order, forever.

        Reconnects from the last index seen after a cut, an error or ``event_silence_s``
        without a byte (heartbeats count), dropping frames whose index is not above it.
        ``on_connect`` runs after every successful (re)connection, so the caller can sweep
        what changed while it was away. A 403 is raised; every other failure is retried.
        """
        last = index
        while True:
            # A new backoff for every connection: a cut after connecting reconnects at once.
            async for attempt in self.retry.retrying(
                (errors.ExecutorTransient, httpx.HTTPError), forever=True
            ):
                with attempt:
                    if attempt.num > 1:
                        log.warning(
                            "nomad.events_reconnect", extra={"index": last, "attempt": attempt.num}
                        )
                    params = {"index": last, "topic": list(topics)}
                    timeout = httpx.Timeout(self.request_timeout_s, read=self.event_silence_s)
                    async with self._http.stream(
                        "GET",
                        "/v1/event/stream",
                        params=self._params(params),
                        headers=self._headers(),
                        timeout=timeout,
                    ) as response:
                        if response.status_code >= 300:
                            body = (await response.aread()).decode("utf-8", "replace")
                            raise classify(response.status_code, body, "/v1/event/stream")
                        log.info("nomad.events_connected", extra={"index": last})
                        if on_connect is not None:
                            await on_connect()
                        try:
                            async for line in response.aiter_lines():
                                frame = _frame(line)
                                if frame is None:
                                    continue
                                frame_index = int(frame.get("Index", 0) or 0)
                                if frame_index <= last:
                                    continue
                                last = frame_index
                                yield frame
                        except httpx.HTTPError as exc:  # cut or silent: reconnect below
                            log.warning(
                                "nomad.events_reconnect", extra={"index": last, "error": repr(exc)}
                            )
            await asyncio.sleep(0.05)  # the stream ended or was cut: reconnect from ``last``


def _frame(line: str) -> dict[str, Any] | None:
    """The event frame on one ndjson line, or None for a heartbeat, a blank or garbage."""
    text = line.strip()
    if not text or text == "{}":
        return None
    try:
        frame = json.loads(text)
    except ValueError:
        log.warning("nomad.events_bad_line", extra={"line": text[:200]})
        return None
    if not isinstance(frame, dict) or "Events" not in frame:
        return None
    return frame
