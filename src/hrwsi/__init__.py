"""hrwsi: an event-driven production system for Earth observation.

Three services around one PostgreSQL database: the harvester finds inputs, the orchestrator
plans processing tasks on virtual machines, the launcher runs them and records every status.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Resolved lazily: importlib.metadata costs ~40 ms, paid by every process that imports
    # any hrwsi module (the local run wrapper included) if done at import time.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("hrwsi")
        except PackageNotFoundError:  # running from a source tree without install
            return "0.0.0"
    raise AttributeError(f"module 'hrwsi' has no attribute {name!r}")
