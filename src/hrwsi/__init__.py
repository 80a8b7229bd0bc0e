"""hrwsi: an event-driven production system for Earth observation.

Three services around one PostgreSQL database: the harvester finds inputs, the orchestrator
plans processing tasks on virtual machines, the launcher runs them and records every status.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hrwsi")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
