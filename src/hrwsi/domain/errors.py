"""Errors raised by hrwsi. Every error derives from :class:`HrwsiError`.

::

    HrwsiError
    ├── ConfigError              a configuration file or variable is invalid (names file and key)
    ├── DatabaseError            PostgreSQL is unreachable or a statement failed
    │   └── MigrationError       a migration could not be applied
    ├── CatalogueError           the catalogue could not be read
    │   ├── CatalogueTransient   a page may succeed if tried again (timeout, 429, 5xx, bad body)
    │   ├── CatalogueRejected    the catalogue refused the request (4xx other than 429)
    │   └── MalformedRecord      one catalogue record cannot be used (the rest of its page can)
    ├── ProductNameError         a product name does not follow the Sentinel naming rules
    ├── PlanningError            an instance is malformed (unknown routine, cyclic dependencies)
    ├── ExecutorError            an executor could not submit, follow or cancel an attempt
    │   ├── ExecutorTransient    may succeed if tried again (Nomad unreachable, 5xx, leader loss)
    │   └── ExecutorRejected     refused for good (bad job spec, permission denied)
    ├── TaskNotFound             an operator named a task that does not exist
    └── TaskNotRetryable         an operator asked to retry a task that cannot be retried
"""

from __future__ import annotations


class HrwsiError(Exception):
    """Root of every error hrwsi raises on purpose."""


class ConfigError(HrwsiError):
    """A configuration file or environment variable is invalid."""

    def __init__(
        self, message: str, *, source: str = "", key: str = "", problems: tuple[str, ...] = ()
    ) -> None:
        self.source = source
        self.key = key
        # Every problem found ("source: key: message"), when there were several.
        self.problems = problems or (": ".join(p for p in (source, key, message) if p),)
        where = ": ".join(part for part in (source, key) if part)
        several = len(problems) > 1  # the message lists them, each with its own source
        super().__init__(f"{where}: {message}" if where and not several else message)


class DatabaseError(HrwsiError):
    """PostgreSQL is unreachable or a statement failed."""


class MigrationError(DatabaseError):
    """A migration could not be applied."""


class CatalogueError(HrwsiError):
    """The catalogue could not be read."""

    def __init__(self, message: str, *, url: str = "", status_code: int | None = None) -> None:
        self.url = url
        self.status_code = status_code
        super().__init__(message)


class CatalogueTransient(CatalogueError):
    """A catalogue request that may succeed if tried again."""

    def __init__(
        self,
        message: str,
        *,
        url: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, url=url, status_code=status_code)


class CatalogueRejected(CatalogueError):
    """The catalogue refused the request for good."""


class MalformedRecord(CatalogueError):
    """One catalogue record is unusable; ``reason`` is a stable short code for summaries."""

    def __init__(self, reason: str, detail: str, *, record_id: str = "") -> None:
        self.reason = reason
        self.record_id = record_id
        super().__init__(f"{reason}: {detail}" + (f" (record {record_id})" if record_id else ""))


class ProductNameError(HrwsiError):
    """A product name does not follow the Sentinel naming rules."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"unparseable product name {name!r}: {reason}")


class PlanningError(HrwsiError):
    """A planning instance is malformed."""


class ExecutorError(HrwsiError):
    """An executor could not submit, follow or cancel an attempt."""

    def __init__(self, message: str, *, status_code: int | None = None, url: str = "") -> None:
        self.status_code = status_code
        self.url = url
        super().__init__(message)


class ExecutorTransient(ExecutorError):
    """An executor call that may succeed if tried again."""


class ExecutorRejected(ExecutorError):
    """An executor call refused for good."""


class TaskNotFound(HrwsiError):
    """An operator named a task that does not exist."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"processing task {task_id} does not exist")


class TaskNotRetryable(HrwsiError):
    """An operator asked to retry a task that has not failed for good (or is superseded)."""

    def __init__(self, task_id: int, reason: str) -> None:
        self.task_id = task_id
        self.reason = reason
        super().__init__(f"processing task {task_id} cannot be retried: {reason}")
