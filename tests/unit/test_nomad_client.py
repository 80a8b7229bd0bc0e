"""The thin Nomad client: exact requests and error mapping, through httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import SecretStr

from hrwsi.domain import errors
from hrwsi.executors.nomad_client import JobNotFound, NomadClient, RetryPolicy, classify

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **kw: object) -> NomadClient:
    http = httpx.AsyncClient(base_url="http://nomad:4646", transport=httpx.MockTransport(handler))
    options: dict[str, object] = {"retry": RetryPolicy(3, 0.0, 0.0)}
    options.update(kw)
    return NomadClient(http, **options)  # type: ignore[arg-type]


def text(status: int, body: str) -> httpx.Response:
    return httpx.Response(status, text=body, headers={"Content-Type": "text/plain; charset=utf-8"})


async def test_token_goes_in_the_header_only() -> None:
    """The ACL token is sent as X-Nomad-Token and never in the URL or body."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ID": "j"}, headers={"X-Nomad-Index": "7"})

    nomad = client(handler, token=SecretStr("s3cret-token"), namespace="eo", region="eu")
    result = await nomad.get_job("j")
    assert result.index == 7 and result.value == {"ID": "j"}
    request = seen[0]
    assert request.headers["X-Nomad-Token"] == "s3cret-token"
    assert "s3cret-token" not in str(request.url)
    assert request.url.params["namespace"] == "eo" and request.url.params["region"] == "eu"
    assert "s3cret-token" not in repr(nomad.__dict__)


async def test_no_token_no_header() -> None:
    """Without a token no X-Nomad-Token header is sent."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    await client(handler).get_job_allocations("j")
    assert "X-Nomad-Token" not in seen[0].headers


async def test_dispatch_sends_idempotency_token_as_query_parameter() -> None:
    """Dispatch puts idempotency_token in the query string, never in the JSON body."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"DispatchedJobID": "p/dispatch-1-ab", "EvalID": ""})

    reply = await client(handler).dispatch_job(
        "p", meta={"run_id": "r1"}, payload=b"{}", idempotency_token="task-1-attempt-1"
    )
    assert reply["EvalID"] == ""
    request = seen[0]
    assert request.method == "PUT"
    assert request.url.path == "/v1/job/p/dispatch"
    assert request.url.params["idempotency_token"] == "task-1-attempt-1"
    body = json.loads(request.content)
    assert body == {"Meta": {"run_id": "r1"}, "Payload": "e30="}
    assert "idempotency" not in request.content.decode().lower()


async def test_register_wraps_job_with_enforce_index() -> None:
    """Register sends {"Job": ..., "EnforceIndex": true, "JobModifyIndex": 0} to /v1/jobs."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"EvalID": "e", "JobModifyIndex": 9})

    await client(handler).register_job({"ID": "j"}, enforce_index=True)
    body = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/jobs"
    assert body["Job"] == {"ID": "j"} and body["EnforceIndex"] is True
    assert body["JobModifyIndex"] == 0


async def test_child_job_ids_are_escaped() -> None:
    """A dispatched child id with '/' is escaped in the path."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"Summary": {}})

    await client(handler).get_job_summary("p/dispatch-1-ab")
    assert seen[0].url.raw_path.startswith(b"/v1/job/p%2Fdispatch-1-ab/summary")


async def test_blocking_query_sends_index_and_wait() -> None:
    """A read with index sends index and wait and returns the reply's X-Nomad-Index."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[], headers={"X-Nomad-Index": "42"})

    result = await client(handler).get_job_allocations("j", index=41, wait_s=2.5)
    assert result.index == 42
    assert seen[0].url.params["index"] == "41" and seen[0].url.params["wait"] == "2500ms"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (403, "Permission denied", errors.ExecutorRejected),
        (403, "ACL token not found", errors.ExecutorRejected),
        (500, "rpc error: Permission denied", errors.ExecutorRejected),
        (500, "1 error occurred:\n\t* Missing job datacenters\n\n", errors.ExecutorRejected),
        (500, "Enforcing job modify index 0: job already exists", errors.ExecutorRejected),
        (404, "job not found", JobNotFound),
        (500, "No cluster leader", errors.ExecutorTransient),
        (500, "rpc error: No cluster leader", errors.ExecutorTransient),
        (500, "rpc error: EOF", errors.ExecutorTransient),
        (503, "", errors.ExecutorTransient),
        (400, "Invalid wait time", errors.ExecutorRejected),
    ],
)
def test_classify_plain_text_errors(status: int, body: str, kind: type[Exception]) -> None:
    """Status and plain-text body map to the contract's typed errors."""
    error = classify(status, body, "/v1/x")
    assert type(error) is kind
    assert error.status_code == status


async def test_rejections_are_not_retried() -> None:
    """A 403 is raised at once, with Nomad's text, after a single request."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return text(403, "Permission denied")

    with pytest.raises(errors.ExecutorRejected, match="Permission denied"):
        await client(handler).delete_job("j")
    assert calls == 1


async def test_leader_loss_is_retried_then_succeeds() -> None:
    """Two 'No cluster leader' 500s are retried; the third answer is returned."""
    replies = [text(500, "No cluster leader"), text(500, "rpc error: No cluster leader")]

    def handler(request: httpx.Request) -> httpx.Response:
        return replies.pop(0) if replies else httpx.Response(200, json={"ID": "j"})

    assert (await client(handler).get_job("j")).value == {"ID": "j"}
    assert replies == []


async def test_timeouts_and_connection_errors_become_transient() -> None:
    """Timeouts and refused connections raise ExecutorTransient after all attempts."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise httpx.ConnectError("refused", request=request)
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(errors.ExecutorTransient):
        await client(handler).get_job("j")
    assert calls == 3


async def test_not_found_is_typed() -> None:
    """A 404 'job not found' raises JobNotFound (an ExecutorRejected) without retry."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return text(404, "job not found")

    with pytest.raises(JobNotFound, match="job not found"):
        await client(handler).get_job("j")
    assert calls == 1


async def test_retry_policy_is_stamina_with_its_attempt_limit() -> None:
    """The policy's stamina context tries ``attempts`` times in all, then lets the error out."""
    tries = 0
    with pytest.raises(errors.ExecutorTransient):
        async for attempt in RetryPolicy(3, 0.0, 0.0).retrying(errors.ExecutorTransient):
            with attempt:
                tries += 1
                raise errors.ExecutorTransient("down")
    assert tries == 3
    tries = 0
    with pytest.raises(ValueError):
        async for attempt in RetryPolicy(3, 0.0, 0.0).retrying(errors.ExecutorTransient):
            with attempt:
                tries += 1
                raise ValueError("not transient")
    assert tries == 1


# -- event stream -------------------------------------------------------------------------------


class Lines(httpx.AsyncByteStream):
    """A response body sending lines, then ending or failing with a read timeout."""

    def __init__(self, lines: list[str], fail: bool = False) -> None:
        self.lines = lines
        self.fail = fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for line in self.lines:
            yield (line + "\n").encode()
        if self.fail:
            raise httpx.ReadTimeout("silence")


def frame(index: int) -> str:
    return json.dumps({"Index": index, "Events": [{"Topic": "Job", "Key": f"j{index}"}]})


async def test_events_skip_heartbeats_reconnect_from_last_index_and_drop_repeats() -> None:
    """The stream skips {}, reconnects after a cut and a silence, and yields each index once."""
    seen: list[httpx.Request] = []
    bodies = [
        Lines(["{}", frame(1), "", frame(2)]),  # then the body ends (a cut)
        Lines(["{}", frame(2), frame(3), "{}"], fail=True),  # then silence
        Lines(["{}", frame(3), frame(4)]),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=bodies.pop(0))

    connects = 0

    async def on_connect() -> None:
        nonlocal connects
        connects += 1

    nomad = client(handler, event_silence_s=0.5)
    got = []
    async for item in nomad.events(["Job", "Allocation:abc"], on_connect=on_connect):
        got.append(item["Index"])
        if item["Index"] == 4:
            break
    assert got == [1, 2, 3, 4]
    assert connects == 3
    assert [r.url.params["index"] for r in seen] == ["0", "2", "3"]
    assert seen[0].url.params.get_list("topic") == ["Job", "Allocation:abc"]


async def test_events_raise_on_permission_denied() -> None:
    """A 403 on the event stream is raised rather than retried forever."""

    def handler(request: httpx.Request) -> httpx.Response:
        return text(403, "Permission denied")

    with pytest.raises(errors.ExecutorRejected):
        async for _ in client(handler).events(["Job"]):
            pass
