"""``GET /metrics``: the real app, broker and SQLite; a raw MQTT client speaks as node-1
(its own account), so each number is driven by a message the test sends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import prometheus_client
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import mqtt_contract as contract
from controller.metrics import OTHER, UNMATCHED_ROUTE, Metrics, RequestTimer
from mqtt_contract import Alert, ClockState, Status, Telemetry
from tests.conftest import make_user, wait_for

COMMUNE = "xa-demo"
NODE = "node-1"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (name, labels) → value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client) -> Samples:  # type: ignore[no-untyped-def]
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


@pytest.fixture
def node(broker):  # type: ignore[no-untyped-def]
    """node-1's own account, client id and TLS files: what its agent would connect as."""
    client = broker.mqtt_client(NODE, broker.node_password(NODE), broker.node_client_id(NODE),
                                broker.node_tls(NODE))
    client.connect("127.0.0.1", broker.broker_port)
    client.loop_start()
    yield client
    client.loop_stop()
    client.disconnect()


def send(client: mqtt.Client, spec: contract.TopicSpec, payload: bytes,
         retain: bool = False) -> None:
    client.publish(spec.topic(COMMUNE, node=NODE), payload, qos=1,
                   retain=retain).wait_for_publish(5)


def telemetry(plan_version: int | None) -> bytes:
    return Telemetry(node=NODE, uptime_s=5, disk_free_mb=500, volume=70,
                     plan_version=plan_version, clock=ClockState(synced=True)).to_bytes()


def alert(alert_id: str, kind: str) -> bytes:
    return Alert(id=alert_id, node=NODE, camera="cam-1", kind=kind, at=datetime.now(UTC),
                 confidence=0.9).to_bytes()


def test_the_numbers_follow_what_the_nodes_send(controller, node) -> None:  # type: ignore[no-untyped-def]
    before = scrape(controller)
    known = value(before, "loaxa_nodes", commune=COMMUNE)
    assert known >= 3 and value(before, "loaxa_nodes_online", commune=COMMUNE) == 0
    assert value(before, "loaxa_mqtt_connected") == 1
    assert value(before, "loaxa_plan_leader") == 1  # the only replica holds the lease
    assert value(before, "loaxa_database_up") == 1
    assert ("loaxa_ingest_queue_depth", frozenset()) in before

    # node-1 comes online: one node online in its commune; it has not acknowledged the
    # plan published for it, so it lags
    send(node, contract.STATUS, Status(node=NODE, online=True).to_bytes(), retain=True)
    wait_for(lambda: value(scrape(controller), "loaxa_nodes_online", commune=COMMUNE) == 1,
             10, what="node-1 online")
    now = scrape(controller)
    assert value(now, "loaxa_nodes", commune=COMMUNE) == known
    assert value(now, "loaxa_reports_ingested_total", topic="status") >= value(
        before, "loaxa_reports_ingested_total", topic="status") + 1
    wait_for(lambda: value(scrape(controller), "loaxa_plan_lag_nodes", commune=COMMUNE) == 1,
             10, what="node-1's plan published and not acknowledged")

    # its heartbeat names the plan it was sent: no lag any more
    published = controller.get(f"/api/nodes/{NODE}").json()["plan_version"]
    assert published > 0
    send(node, contract.TELEMETRY, telemetry(published))
    wait_for(lambda: value(scrape(controller), "loaxa_plan_lag_nodes", commune=COMMUNE) == 0,
             10, what="node-1's plan acknowledged")
    assert value(scrape(controller), "loaxa_reports_ingested_total", topic="telemetry") >= 1

    # an alert counts once by its kind, a replay of it not again; a kind the desk does not
    # know is "other" (a node's string never becomes a label of its own)
    grown = value(scrape(controller), "loaxa_alerts_ingested_total", kind="no_helmet")
    send(node, contract.ALERT, alert("metrics-1", "no_helmet"))
    wait_for(lambda: value(scrape(controller), "loaxa_alerts_ingested_total",
                           kind="no_helmet") == grown + 1, 10, what="the alert counted")
    send(node, contract.ALERT, alert("metrics-1", "no_helmet"))  # the same id again
    send(node, contract.ALERT, alert("metrics-2", "made-up-kind"))
    wait_for(lambda: value(scrape(controller), "loaxa_alerts_ingested_total",
                           kind=OTHER) == 1, 10, what="the unknown kind counted")
    after = scrape(controller)
    assert value(after, "loaxa_alerts_ingested_total", kind="no_helmet") == grown + 1
    assert not [k for k in after if ("kind", "made-up-kind") in k[1]]

    # a malformed message is counted as dropped
    dropped = value(after, "loaxa_mqtt_dropped_messages_total")
    send(node, contract.TELEMETRY, b"not json")
    wait_for(lambda: value(scrape(controller), "loaxa_mqtt_dropped_messages_total")
             == dropped + 1, 10, what="the malformed message dropped")


def test_request_latency_is_labelled_by_route_template(controller) -> None:  # type: ignore[no-untyped-def]
    assert controller.get(f"/api/nodes/{NODE}").status_code == 200
    assert controller.get("/api/nodes/no-such-node").status_code == 404
    assert controller.get("/nowhere-at-all").status_code == 404
    samples = scrape(controller)
    count = "loaxa_http_request_duration_seconds_count"
    route = "/api/nodes/{node_id}"
    assert value(samples, count, route=route, method="GET", status="2xx") == 1
    assert value(samples, count, route=route, method="GET", status="4xx") == 1
    assert value(samples, count, route=UNMATCHED_ROUTE, method="GET", status="4xx") == 1
    routes = {dict(labels).get("route") for name, labels in samples if name == count}
    assert not [r for r in routes if r and (NODE in r or "nowhere" in r)], routes


def test_only_admins_scrape_and_an_api_token_works(controller) -> None:  # type: ignore[no-untyped-def]
    for role in ("staff", "leader", "officer"):
        r = controller.get("/metrics", headers=make_user(controller, f"m-{role}", role))
        assert r.status_code == 403, (role, r.text)
        assert r.json()["code"] == "forbidden"
    assert controller.get("/metrics", headers={"Authorization": ""}).status_code == 401
    make_user(controller, "prometheus", "admin")
    r = controller.post("/api/tokens", json={"name": "prometheus scrape",
                                             "username": "prometheus"})
    assert r.status_code == 201, r.text
    token, token_id = r.json()["token"], r.json()["id"]
    r = controller.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and "loaxa_nodes_online" in r.text
    # the same token, revoked, scrapes no more
    assert controller.delete(f"/api/tokens/{token_id}").status_code == 204
    assert controller.get("/metrics", headers={"Authorization": f"Bearer {token}"}
                          ).status_code == 401


# ---------------------------------------------------------------- without a broker

@pytest.fixture
def unstarted(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two runtimes, never started: no broker, no link, and no tables (never migrated)."""
    from controller.runtime import Runtime
    from controller.settings import Settings

    runtimes = [Runtime(Settings(data_dir=tmp_path / f"c{i}",  # its own, empty database
                                 database_url=f"sqlite:///{tmp_path / f'c{i}.sqlite3'}"))
                for i in (1, 2)]
    yield runtimes
    for runtime in runtimes:
        runtime.db.dispose()


def test_each_runtime_has_its_own_registry(unstarted) -> None:  # type: ignore[no-untyped-def]
    one, two = unstarted
    one.metrics.alert_stored("dumping")
    assert value(parse(one.metrics.exposition().decode()), "loaxa_alerts_ingested_total",
                 kind="dumping") == 1
    assert value(parse(two.metrics.exposition().decode()), "loaxa_alerts_ingested_total",
                 kind="dumping") == 0
    default = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "loaxa_" not in default


def test_a_database_that_does_not_answer_leaves_the_rest(unstarted) -> None:  # type: ignore[no-untyped-def]
    samples = parse(unstarted[0].metrics.exposition().decode())
    assert value(samples, "loaxa_database_up") == 0
    assert not [k for k in samples if k[0] == "loaxa_nodes_online"]
    assert value(samples, "loaxa_mqtt_connected") == 0
    assert ("loaxa_ingest_queue_depth", frozenset()) in samples


def test_a_request_that_raises_is_timed_as_a_server_error(unstarted) -> None:  # type: ignore[no-untyped-def]
    app = FastAPI()
    app.add_middleware(RequestTimer)
    app.state.runtime = unstarted[0]

    @app.get("/boom/{n}")
    def boom(n: int) -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/boom/7").status_code == 500
    metrics: Metrics = unstarted[0].metrics
    samples = parse(metrics.exposition().decode())
    assert value(samples, "loaxa_http_request_duration_seconds_count", route="/boom/{n}",
                 method="GET", status="5xx") == 1
