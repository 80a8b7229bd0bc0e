"""The Nomad variable holding the runs' secrets is never quoted in an error."""

from __future__ import annotations

import traceback

import httpx
import pytest

from hrwsi.config import NomadExecutorConfig
from hrwsi.domain import errors
from hrwsi.executors import nomad_client
from hrwsi.executors.nomad import NomadExecutor

SECRET = "wJalrXUtnFEMI-K7MDENG"


async def test_a_cut_variable_body_does_not_leak_its_values() -> None:
    """A variable read whose body is cut short fails as ExecutorTransient without the values
    it held (before: the first 200 characters, secrets included, were in the message that
    the launcher logs)."""
    body = '{"Path":"nomad/jobs","Items":{"S3_SECRET_KEY":"' + SECRET + '","OTHER":"x'

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/var/nomad/jobs"
        return httpx.Response(200, text=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://nomad")
    client = nomad_client.NomadClient(http, retry=nomad_client.RetryPolicy(1, 0, 0))
    executor = NomadExecutor(NomadExecutorConfig(passthrough_env=("S3_SECRET_KEY",)), client=client)
    try:
        with pytest.raises(errors.ExecutorTransient) as caught:
            await executor.publish_secrets({"S3_SECRET_KEY": "new-value"})
    finally:
        await executor.aclose()
        await http.aclose()
    assert SECRET not in "".join(traceback.format_exception(caught.value))
    assert "not JSON" in str(caught.value)


async def test_other_bodies_that_are_not_json_are_still_quoted() -> None:
    """Job reads keep the start of a bad body in the error (it helps diagnose a proxy)."""
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>proxy</html>")),
        base_url="http://nomad",
    )
    client = nomad_client.NomadClient(http, retry=nomad_client.RetryPolicy(1, 0, 0))
    try:
        with pytest.raises(errors.ExecutorTransient) as caught:
            await client.get_job("hrwsi-x")
    finally:
        await http.aclose()
    assert "<html>proxy</html>" in str(caught.value)
