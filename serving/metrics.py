"""Prometheus metrics (prometheus-client), one registry per app: requests, latency, scored tickets by route and
category, review outbox depth and failures, the served model version."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from triage.tickets import ScoredTicket

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StateCollector(Collector):
    """Read at scrape time from the app state: model version, outbox depth, spool counters."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        slot = getattr(self.state, "slot", None)
        current = slot.current if slot is not None else None
        info = GaugeMetricFamily("triage_model_info", "The model in service (value 1).", labels=["name", "version"])
        if current is not None:
            info.add_metric([current.loaded.name, current.loaded.version], 1.0)
        yield info
        yield GaugeMetricFamily("triage_model_loaded", "1 when a model is in service.",
                                value=float(current is not None))
        spool = getattr(self.state, "review_spool", None)
        if spool is not None:
            stats = spool.stats()
            yield CounterMetricFamily("triage_review_outbox_failures", "Failed writes to the review outbox.",
                                      value=stats.failures)
            yield GaugeMetricFamily("triage_review_spool_held", "Review tickets held in memory (outbox failing).",
                                    value=stats.pending)
            yield CounterMetricFamily("triage_review_spool_dropped", "Review tickets dropped from a full spool.",
                                      value=stats.dropped)
            yield GaugeMetricFamily("triage_review_degraded", "1 while the review outbox fails.",
                                    value=float(spool.degraded))
        review = getattr(self.state, "review", None)
        if review is not None:
            depth = GaugeMetricFamily("triage_review_outbox_items", "Review outbox rows by state.", labels=["state"])
            try:
                counts = review.outbox.counts()
            except Exception as err:
                log.debug("outbox counts unavailable: %s", type(err).__name__)
            else:
                for state in ("waiting", "sent", "rejected"):
                    depth.add_metric([state], float(counts[state]))
            yield depth


class Metrics:
    """The app's metrics; `render()` is the /metrics body."""

    def __init__(self, state: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("triage_http_requests", "HTTP requests by method, route template and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("triage_http_request_duration_seconds", "HTTP request latency.", ["method", "route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self.tickets = Counter("triage_tickets_scored", "Scored tickets by routing decision and category.",
                               ["route", "category"], registry=self.registry)
        self.registry.register(_StateCollector(state))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One finished request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_scored(self, scored: Sequence[ScoredTicket]) -> None:
        """Tickets scored by one request."""
        for s in scored:
            self.tickets.labels(s.decision.route, s.decision.category).inc()

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
