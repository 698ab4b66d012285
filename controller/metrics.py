"""What one controller replica tells Prometheus (``GET /metrics``, admin only).

Every metric is declared here, on a registry of the replica's own
(:class:`Metrics`, one per :class:`~controller.runtime.Runtime`): several apps live in one
test process, and the process-wide default registry would refuse the second app's metrics
(or mix both apps' numbers).

Three kinds of numbers:

- counters the runtime bumps where it handles a message (alerts stored, reports queued):
  each replica counts its own share of the shared subscriptions, so sum them across
  replicas;
- gauges read at scrape time (:class:`RuntimeCollector`): the fleet's state from the
  database (every replica reports the same value: take ``max`` across replicas, not
  ``sum``) and this replica's own parts (ingest queue, MQTT link, plan lease);
- the HTTP latency histogram, filled by :class:`RequestTimer` with the matched route's
  template, so node ids and announcement ids never become label values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.models import Node
from controller.services.alerts import KIND_LABELS
from mqtt_contract import PLAYBACK, SOFTWARE_VERSION, STATUS, TELEMETRY

if TYPE_CHECKING:
    from controller.runtime import Runtime
    from controller.services.ingest import Incoming

log = logging.getLogger(__name__)

EXPOSITION_TYPE = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of the text exposition format."""
OTHER = "other"
"""The label value for an alert kind the desk does not know (a node may send any string:
it must not grow the label set without bound)."""
UNMATCHED_ROUTE = "unmatched"
"""The route label of a request no route matched (404s, refusals before routing)."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds; up to 30 s because rendering an announcement's speech runs inside its request."""
REPORT_TOPICS = {spec.payload: spec.name for spec in (STATUS, TELEMETRY, PLAYBACK)}
"""A queued report's payload type → its contract topic's name (the ``topic`` label)."""


class Name(StrEnum):
    """Every metric's name (counters without the ``_total`` the exposition adds)."""

    nodes = "loaxa_nodes"
    nodes_online = "loaxa_nodes_online"
    plan_lag = "loaxa_plan_lag_nodes"
    database_up = "loaxa_database_up"
    alerts = "loaxa_alerts_ingested"
    reports = "loaxa_reports_ingested"
    ingest_queue = "loaxa_ingest_queue_depth"
    mqtt_connected = "loaxa_mqtt_connected"
    mqtt_dropped = "loaxa_mqtt_dropped_messages"
    plan_leader = "loaxa_plan_leader"
    build_info = "loaxa_build_info"
    requests = "loaxa_http_request_duration_seconds"


@dataclass(frozen=True)
class CommuneNodes:
    """One commune's nodes as the database holds them at the scrape."""

    commune: str
    total: int
    online: int
    lagging: int


def commune_nodes(session: Session) -> list[CommuneNodes]:
    """Nodes, nodes online and online nodes whose plan is behind, per commune, in one
    query. ``online`` is the dashboard's count (``Node.online``, from the retained status
    and the will). A node lags when a plan was published for it (``plan_version``) and its
    latest heartbeat names an older one (``plan_version_acked``), or none yet. Offline
    nodes are left out of the lag: they cannot acknowledge, and ``nodes - nodes_online``
    counts them already."""
    behind = and_(Node.online.is_(True), Node.plan_version > 0,
                  or_(Node.plan_version_acked.is_(None),
                      Node.plan_version_acked < Node.plan_version))
    rows = session.execute(
        select(Node.commune, func.count(Node.id),
               func.sum(case((Node.online.is_(True), 1), else_=0)),
               func.sum(case((behind, 1), else_=0)))
        .group_by(Node.commune).order_by(Node.commune))
    return [CommuneNodes(commune, int(total), int(online or 0), int(lagging or 0))
            for commune, total, online, lagging in rows]


class RuntimeCollector:
    """The gauges read when Prometheus scrapes: a database query for the fleet, and
    this replica's own parts. A database that does not answer makes
    ``loaxa_database_up`` 0 and leaves the fleet gauges out of that scrape (a scrape must
    not fail for it: the other numbers say why)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def describe(self) -> Iterable[Metric]:
        """The families without samples: the registry checks names against them at
        registration, without a database query."""
        return [*self._fleet_families(), *self._replica_families()]

    def collect(self) -> Iterator[Metric]:
        families = self._fleet_families()
        try:
            with self.runtime.db.session() as s:
                rows = commune_nodes(s)
        except Exception:
            log.warning("metrics: the database did not answer", exc_info=True)
            yield GaugeMetricFamily(Name.database_up, _DATABASE_UP_HELP, value=0)
        else:
            nodes, online, lag = families
            for row in rows:
                nodes.add_metric([row.commune], row.total)
                online.add_metric([row.commune], row.online)
                lag.add_metric([row.commune], row.lagging)
            yield from families
            yield GaugeMetricFamily(Name.database_up, _DATABASE_UP_HELP, value=1)
        yield from self._replica_families(filled=True)

    @staticmethod
    def _fleet_families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(Name.nodes, "Nodes the controller knows, per commune.",
                              labels=["commune"]),
            GaugeMetricFamily(Name.nodes_online, "Nodes whose last status is online "
                              "(the dashboard's count), per commune.", labels=["commune"]),
            GaugeMetricFamily(Name.plan_lag, "Online nodes whose last heartbeat names an "
                              "older plan than the one published for them, per commune.",
                              labels=["commune"]),
        ]

    def _replica_families(self, filled: bool = False) -> list[Metric]:
        rt = self.runtime if filled else None
        families: list[Metric] = [
            GaugeMetricFamily(Name.ingest_queue, "Status, telemetry and playback reports "
                              "waiting for the batch writer on this replica.",
                              value=len(rt.ingest) if rt else None),
            GaugeMetricFamily(Name.mqtt_connected, "1 while this replica's MQTT link is up.",
                              value=int(rt.link.connected.is_set()) if rt else None),
            CounterMetricFamily(Name.mqtt_dropped, "MQTT messages this replica dropped "
                                "as malformed (contract validation failed).",
                                value=rt.link.dropped_messages if rt else None),
            GaugeMetricFamily(Name.plan_leader, "1 while this replica holds the "
                              "plan-compiler lease.",
                              value=int(rt.is_plan_leader) if rt else None),
        ]
        info = GaugeMetricFamily(Name.build_info, "Always 1: this replica's software "
                                 "version and MQTT client id.", labels=["version", "replica"])
        if rt:
            info.add_metric([SOFTWARE_VERSION, rt.settings.mqtt_client_id], 1)
        return [*families, info]


_DATABASE_UP_HELP = "1 when the database answered this scrape's fleet query."


class Metrics:
    """One replica's metrics and the registry that exposes them."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry()
        self.alerts = Counter(Name.alerts, "Camera alerts stored by this replica (new "
                              "ones: a replayed alert is not counted), by kind.",
                              ["kind"], registry=self.registry)
        self.reports = Counter(Name.reports, "Node reports this replica took in, by "
                               "contract topic.", ["topic"], registry=self.registry)
        self.requests = Histogram(Name.requests, "Time from a request's arrival to its "
                                  "response's start, by route template, method and "
                                  "status class.", ["route", "method", "status"],
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(RuntimeCollector(runtime))

    def alert_stored(self, kind: str) -> None:
        self.alerts.labels(kind if kind in KIND_LABELS else OTHER).inc()

    def report_taken(self, item: Incoming) -> None:
        self.reports.labels(REPORT_TOPICS[type(item.payload)]).inc()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, f"{status // 100}xx").observe(seconds)

    def exposition(self) -> bytes:
        """The text exposition of everything, scrape-time gauges read now."""
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/nodes/{node_id}``), set on the scope by
    the router; a mount's prefix (``/static``); :data:`UNMATCHED_ROUTE` otherwise."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestTimer:
    """ASGI middleware: each HTTP request's time until its response starts, into the
    runtime's histogram. The start, not the end: a Server-Sent Events stream lasts an
    hour, and what the histogram is for is how long callers wait. A request that raises
    before answering counts as a 500 (the server's error handler answers it so)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        observed = False

        def observe(status: int) -> None:
            nonlocal observed
            observed = True
            metrics = _metrics_of(scope)
            if metrics is not None:
                metrics.observe_request(route_template(scope), scope["method"], status,
                                        time.perf_counter() - began)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not observed:
                observe(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not observed:
                observe(500)


def _metrics_of(scope: Scope) -> Metrics | None:
    """The metrics of the app's runtime (none before its lifespan started it)."""
    runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
    return getattr(runtime, "metrics", None)
