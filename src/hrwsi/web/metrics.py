"""Prometheus metrics: ``/metrics`` of the console and ``hrwsi run --metrics-port``.

Two kinds of figures, in one registry per process:

* **events of this process**, counted from the services' event-name logs by
  :class:`LogBridge` (no service calls the metrics code): inputs harvested, tasks planned,
  attempts by outcome, catalogue and Nomad request errors by kind, planner pass duration; and
  the notification-to-action latency, measured by the runner (:func:`notified` /
  :func:`acting`);
* **the tables' truth**, read at each scrape by :class:`DatabaseCollector`: queue depths per
  task state, inputs per condition, attempts recorded per outcome, paused conditions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from hrwsi.db import queries

__all__ = ["CONTENT_TYPE_LATEST", "DatabaseCollector", "LogBridge", "Metrics", "metrics"]

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The instruments of one process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.inputs_harvested = Counter(
            "hrwsi_inputs_harvested", "Inputs created by this process", ["source"], registry=r
        )
        self.tasks_planned = Counter(
            "hrwsi_tasks_planned", "Tasks planned by this process", registry=r
        )
        self.attempts = Counter(
            "hrwsi_attempts", "Attempt outcomes recorded by this process", ["outcome"], registry=r
        )
        self.catalogue_errors = Counter(
            "hrwsi_catalogue_request_errors", "Catalogue request errors", ["kind"], registry=r
        )
        self.nomad_errors = Counter(
            "hrwsi_nomad_request_errors", "Nomad / executor request errors", ["kind"], registry=r
        )
        self.planner_pass = Histogram(
            "hrwsi_planner_pass_seconds",
            "Duration of planning passes that wrote a plan",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.notification_to_action = Histogram(
            "hrwsi_notification_to_action_seconds",
            "From a notification to the start of the pass it woke",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._notified: dict[str, float] = {}
        self._lock = threading.Lock()

    def notified(self, service: str) -> None:
        """A notification woke ``service`` (the first of a burst counts)."""
        with self._lock:
            self._notified.setdefault(service, time.perf_counter())

    def acting(self, service: str) -> None:
        """``service`` starts the pass a notification asked for."""
        with self._lock:
            at = self._notified.pop(service, None)
        if at is not None:
            self.notification_to_action.labels(service).observe(time.perf_counter() - at)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


metrics = Metrics()
"""The process's instruments (the runner and the log bridge feed these)."""


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


class LogBridge(logging.Handler):
    """Counts the services' events (log records named ``service.event``) into metrics."""

    def __init__(self, target: Metrics | None = None) -> None:
        super().__init__(level=logging.DEBUG)
        self.target = target or metrics

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._count(record.getMessage(), record.__dict__)
        except Exception:  # a metric must never break a log call
            self.handleError(record)

    def _count(self, event: str, extra: dict[str, Any]) -> None:
        m = self.target
        if event == "harvester.nrt_query_done":
            m.inputs_harvested.labels("catalogue").inc(_number(extra.get("new_inputs")))
        elif event in ("harvester.products_to_inputs", "harvester.products_sweep_found"):
            m.inputs_harvested.labels("products").inc(_number(extra.get("new_inputs")))
        elif event == "orchestrator.planned":
            m.tasks_planned.inc(_number(extra.get("tasks")))
            m.planner_pass.observe(_number(extra.get("pass_ms")) / 1000)
        elif event == "launcher.processed":
            m.attempts.labels("processed").inc()
        elif event in ("launcher.retry_scheduled", "launcher.failed_for_good"):
            m.attempts.labels(str(extra.get("state") or "error")).inc()
        elif event == "launcher.cancelled":
            m.attempts.labels("cancelled").inc()
        elif event == "catalogue.retry":
            code = extra.get("status_code")
            m.catalogue_errors.labels(f"http_{code}" if code else "transport").inc()
        elif event == "catalogue.page_failed":
            m.catalogue_errors.labels("page_failed").inc()
        elif event == "catalogue.record_skipped":
            m.catalogue_errors.labels(f"record_{extra.get('reason') or 'malformed'}").inc()
        elif event.startswith("nomad.") and (
            event.endswith(("_failed", "_retry", "_reconnect", "_crashed", "_timeout"))
        ):
            m.nomad_errors.labels(event.removeprefix("nomad.")).inc()
        elif event in (
            "launcher.submit_failed",
            "launcher.status_failed",
            "launcher.cancel_failed",
        ):
            m.nomad_errors.labels(event.removeprefix("launcher.")).inc()


_bridged: set[int] = set()


def bridge_logs(target: Metrics | None = None) -> None:
    """Attach one :class:`LogBridge` to the ``hrwsi`` logger (idempotent per target)."""
    target = target or metrics
    if id(target) in _bridged:
        return
    _bridged.add(id(target))
    logging.getLogger("hrwsi").addHandler(LogBridge(target))


class DatabaseCollector(Collector):
    """Figures read from the tables at each scrape (a short synchronous connection)."""

    def __init__(self, db_url: str, timeout_s: float = 5.0) -> None:
        self.db_url = db_url
        self.timeout_s = timeout_s

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "hrwsi_queue_depth", "Tasks per state (the tables)", labels=["state", "condition"]
        )
        inputs = GaugeMetricFamily(
            "hrwsi_inputs", "Inputs per processing condition (the tables)", labels=["condition"]
        )
        paused = GaugeMetricFamily(
            "hrwsi_condition_paused", "1 while a condition is paused", labels=["condition"]
        )
        recorded = GaugeMetricFamily(
            "hrwsi_attempts_recorded", "Attempt outcomes in the tables", labels=["outcome"]
        )
        up = GaugeMetricFamily("hrwsi_database_up", "1 when the database answered the scrape")
        try:
            with psycopg.connect(
                self.db_url,
                autocommit=True,
                connect_timeout=max(1, int(self.timeout_s)),
                prepare_threshold=None,
            ) as conn:
                conn.execute(queries.get("console_statement_timeout"))
                for row in conn.execute(queries.get("console_funnel")).fetchall():
                    (
                        condition,
                        n_inputs,
                        _planned,
                        pending,
                        running,
                        waiting,
                        processed,
                        failed,
                        cancelled,
                        paused_at,
                        _by,
                    ) = row
                    inputs.add_metric([condition], n_inputs)
                    for state, n in (
                        ("pending", pending),
                        ("running", running),
                        ("waiting_retry", waiting),
                        ("processed", processed),
                        ("failed", failed),
                        ("cancelled", cancelled),
                    ):
                        depth.add_metric([state, condition], n)
                    paused.add_metric([condition], 1 if paused_at is not None else 0)
                for outcome, n in conn.execute(queries.get("console_metrics_attempts")):
                    recorded.add_metric([outcome], n)
            up.add_metric([], 1)
        except psycopg.Error as exc:
            log.warning("metrics.database_failed", extra={"error": str(exc)})
            up.add_metric([], 0)
        yield from (depth, inputs, paused, recorded, up)


def serve(port: int, db_url: str | None, host: str = "127.0.0.1") -> None:
    """Expose this process's metrics (and the tables' figures) on ``http://host:port/metrics``."""
    from prometheus_client import start_http_server

    if db_url is not None:
        metrics.registry.register(DatabaseCollector(db_url))
    bridge_logs()
    start_http_server(port, addr=host, registry=metrics.registry)
