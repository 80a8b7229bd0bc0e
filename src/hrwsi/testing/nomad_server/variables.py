"""Nomad variables (``/v1/var/:path``) and ACL tokens."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hrwsi.testing.nomad_server.common import (
    _HttpError,
)
from hrwsi.testing.nomad_server.core import ClusterCore


class VariablesApi(ClusterCore):
    """Variables kept in :attr:`variables`; tokens checked against :attr:`tokens`."""

    def _check_token(self, request: Request) -> None:
        """ACL: with ``tokens`` set, a request needs one of them (``X-Nomad-Token`` or Bearer)."""
        if self.tokens is None:
            return
        token = request.headers.get("x-nomad-token", "")
        auth = request.headers.get("authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            raise _HttpError(403, "Permission denied")
        if token not in self.tokens:
            raise _HttpError(403, "ACL token not found")

    def _variables_route(self, request: Request, ns: str, body: bytes) -> Response | None:
        path = request.url.path
        if not path.startswith("/v1/var"):
            return None
        if not self.variables_api:
            # Nomad < 1.4 has no such route: the HTTP mux answers its plain 404.
            raise _HttpError(404, "404 page not found")
        if path.startswith("/v1/var/"):
            return self._variable(request.method, ns, path[len("/v1/var/") :], body)
        return None

    def _variable(self, method: str, ns: str, var_path: str, body: bytes) -> Response:
        key = (ns, var_path)
        if method in ("PUT", "POST"):
            request = self._decode(body)
            items = request.get("Items") if isinstance(request, dict) else None
            if not isinstance(items, dict) or not items:
                raise _HttpError(400, "variable missing required Items object")
            self._write(["variables"], [])
            self.variables[key] = {str(k): str(v) for k, v in items.items()}
        elif method == "DELETE":
            self.variables.pop(key, None)
            self._write(["variables"], [])
            return Response(b"", status_code=200)
        elif method != "GET":
            raise _HttpError(405, "Invalid method")
        if key not in self.variables:
            raise _HttpError(404, "variable not found")
        variable = {"Namespace": ns, "Path": var_path, "Items": dict(self.variables[key])}
        return self._json(variable, self._tables.get("variables", 1))
