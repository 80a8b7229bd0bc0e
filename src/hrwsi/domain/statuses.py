"""Processing statuses as the HR-WSI v1 model seeds them (``processing_status`` table)."""

from __future__ import annotations

import enum


class ProcessingStatus(enum.IntEnum):
    """Row ids of ``hrwsi.processing_status``; the v1 codes are in :data:`STATUS_CODES`."""

    STARTED = 1
    PROCESSED = 2
    INTERNAL_ERROR = 3
    EXTERNAL_ERROR = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def is_terminal(self) -> bool:
        return self is not ProcessingStatus.STARTED

    @property
    def is_error(self) -> bool:
        return self in (ProcessingStatus.INTERNAL_ERROR, ProcessingStatus.EXTERNAL_ERROR)


STATUS_CODES: dict[ProcessingStatus, int] = {
    ProcessingStatus.STARTED: 0,
    ProcessingStatus.PROCESSED: 1,
    ProcessingStatus.INTERNAL_ERROR: 110,
    ProcessingStatus.EXTERNAL_ERROR: 210,
}
