"""Optional Prometheus metrics (``[service] metrics = "127.0.0.1:9464"``).

The counters always exist and cost a lock and an add, so any module records
events without checking whether an endpoint is configured; only `serve`
opens a port. A private registry keeps them apart from other code in the
process, and `reset()` gives tests a clean slate. Labels are small fixed
vocabularies (outcomes, reasons, part names): never an address or a subject.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .errors import ConfigError

log = logging.getLogger(__name__)

_lock = threading.Lock()


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ingested = Counter("saygoodbye_messages_ingested", "Messages stored", registry=r)
        self.sync_seconds = Histogram(
            "saygoodbye_sync_seconds", "Duration of one mailbox sync pass", registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.last_sync = Gauge("saygoodbye_last_sync_timestamp_seconds",
                               "Unix time of the last successful sync", registry=r)
        self.alerts = Counter("saygoodbye_alerts", "Health alerts queued for owners",
                              registry=r)
        self.sends = Counter("saygoodbye_sends", "Outbox delivery attempts by outcome",
                             ["outcome"], registry=r)
        self.rejections = Counter("saygoodbye_command_rejections",
                                  "Owner replies refused, by reason", ["reason"], registry=r)
        self.part_restarts = Counter("saygoodbye_part_restarts",
                                     "Restarts of a supervised daemon part", ["part"],
                                     registry=r)


_metrics = _Metrics()


def registry() -> CollectorRegistry:
    return _metrics.registry


def reset() -> None:
    """Fresh counters (tests)."""
    global _metrics
    with _lock:
        _metrics = _Metrics()


# -- recording ----------------------------------------------------------------


def messages_ingested(count: int) -> None:
    if count > 0:
        _metrics.ingested.inc(count)


def sync_finished(seconds: float, *, at: float | None = None) -> None:
    """A sync pass ended; `seconds` <= 0 means its duration was not measured."""
    if seconds > 0:
        _metrics.sync_seconds.observe(seconds)
    if at is None:
        _metrics.last_sync.set_to_current_time()
    else:
        _metrics.last_sync.set(at)


def alerts_sent(count: int = 1) -> None:
    if count > 0:
        _metrics.alerts.inc(count)


SEND_OUTCOMES = ("sent", "retried", "failed", "uncertain", "deferred", "resolved")


def sends(outcome: str, count: int = 1) -> None:
    if count > 0:
        _metrics.sends.labels(outcome=outcome).inc(count)


def send_report(report: Any) -> None:
    """Count an outbox `SendReport` (lists of ids per outcome)."""
    for outcome in SEND_OUTCOMES:
        sends(outcome, len(getattr(report, outcome, ()) or ()))


def command_rejected(reason: str) -> None:
    # Reasons are free text upstream; keep the label set small and free of data.
    label = reason.split(":", 1)[0].strip().lower().replace(" ", "_")[:40] or "unknown"
    _metrics.rejections.labels(reason=label).inc()


def part_restarted(part: str) -> None:
    _metrics.part_restarts.labels(part=part).inc()


# -- figures read from the database at scrape time ---------------------------


class StoreCollector(Collector):
    """Outbox rows by kind and state, owner replies by verdict, messages stored.

    Read from the database on each scrape, so they are true whichever process
    did the work (the daemon, or `saygoodbye sync` from cron) and survive
    restarts; `kind="alert"` rows are the alerts, states are send outcomes.
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    def describe(self) -> list[Any]:
        return []  # no query at registration time

    def collect(self) -> Iterator[Any]:
        from sqlalchemy import func, select

        from .store.models import CommandLog, Message, OutboxMessage

        try:
            with self.store.session() as session:
                outbox = session.execute(
                    select(OutboxMessage.kind, OutboxMessage.state, func.count())
                    .group_by(OutboxMessage.kind, OutboxMessage.state)
                ).all()
                replies = session.execute(
                    select(CommandLog.accepted, func.count()).group_by(CommandLog.accepted)
                ).all()
                stored = session.scalar(select(func.count()).select_from(Message)) or 0
        except Exception as exc:  # a scrape must never take anything down
            log.warning("event=metrics_query_failed error=%s", exc)
            return
        rows = GaugeMetricFamily("saygoodbye_outbox_messages",
                                 "Outbox messages by kind and state", labels=["kind", "state"])
        for kind, state, count in outbox:
            rows.add_metric([kind, state], count)
        yield rows
        verdicts = CounterMetricFamily("saygoodbye_owner_replies",
                                       "Owner reply commands considered, by verdict",
                                       labels=["accepted"])
        for accepted, count in replies:
            verdicts.add_metric(["true" if accepted else "false"], count)
        yield verdicts
        yield GaugeMetricFamily("saygoodbye_messages_stored", "Messages in the store",
                                value=stored)


# -- serving ------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_endpoint(value: str) -> Endpoint:
    """'127.0.0.1:9464', '[::1]:9464' or ':9464' (loopback) -> Endpoint."""
    text = value.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ConfigError(f"expected 'HOST:PORT' like '127.0.0.1:9464', got {value!r}",
                          key="service.metrics")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"port out of range in {value!r}", key="service.metrics")
    return Endpoint(host or "127.0.0.1", port)


class MetricsServer:
    """The HTTP endpoint; `close()` stops it."""

    def __init__(self, endpoint: Endpoint, store: Any = None) -> None:
        self._collector: StoreCollector | None = None
        self._registry = _metrics.registry
        if store is not None:
            self._collector = StoreCollector(store)
            self._registry.register(self._collector)
        if not endpoint.loopback:
            log.warning("event=metrics_public host=%s note=%s", endpoint.host,
                        "metrics are served beyond loopback; restrict access")
        self.endpoint = endpoint
        try:
            self._server, self._thread = start_http_server(
                endpoint.port, addr=endpoint.host, registry=self._registry
            )
        except OSError:
            self._unregister()
            raise
        log.info("event=metrics_listening host=%s port=%d", endpoint.host, self.port)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def _unregister(self) -> None:
        if self._collector is not None:
            self._registry.unregister(self._collector)
            self._collector = None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._unregister()


def serve(value: str | None, store: Any = None) -> MetricsServer | None:
    """Start the endpoint when configured; None when `[service] metrics` is unset."""
    if not value:
        return None
    return MetricsServer(parse_endpoint(value), store)


def sample(name: str, labels: Iterable[tuple[str, str]] = ()) -> float | None:
    """Current value of one sample (tests, `status`)."""
    return _metrics.registry.get_sample_value(name, dict(labels))
