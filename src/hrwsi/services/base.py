"""What a service is to the runner that hosts it (``hrwsi run``).

A service is a reconcile loop: ``reconcile()`` is one idempotent, set-based pass over the
tables. The runner calls it at start, after every (re)connect of its listener, on every
notification on one of ``channels`` (bursts coalesced), and every ``interval_s`` seconds. A
service with work that is not driven by the tables (the launcher following its executor)
does it in ``background()``, which the runner runs alongside and restarts if it crashes.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Service(Protocol):
    @property
    def name(self) -> str:
        """Stable name, used in logs and by ``hrwsi run --only``."""
        ...

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels whose notifications wake this service."""
        ...

    @property
    def interval_s(self) -> float:
        """The safety timer: seconds between passes when nothing wakes the service."""
        ...

    async def reconcile(self) -> None:
        """One idempotent pass over the tables."""
        ...

    async def background(self, stop: asyncio.Event) -> None:
        """Work outside reconcile, until ``stop`` is set (return at once if there is none)."""
        ...

    async def aclose(self) -> None:
        """Release connections and clients."""
        ...
