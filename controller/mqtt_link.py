"""The controller's one MQTT connection: it publishes plans, media and commands, and
hands what nodes report (status, telemetry, playback, replies, media requests) to the
ingest service. Malformed messages are logged and dropped; the link keeps running.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqtt_contract import (
    ALERT_SUBSCRIPTION,
    CONTROLLER_SUBSCRIPTIONS,
    Command,
    ContractError,
    MediaRef,
    Plan,
    TopicInfo,
    Topics,
    connect_properties,
    new_client,
    parse_topic,
)

log = logging.getLogger(__name__)

Handler = Callable[[TopicInfo, bytes], None]


class MqttLink:
    def __init__(self, host: str, port: int, username: str, password: str | None,
                 client_id: str, share_group: str) -> None:
        self.host, self.port = host, port
        self.share_group = share_group
        self.client = new_client(client_id, username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.handlers: dict[str, Handler] = {}
        self.dropped_messages = 0
        self.on_connected: Callable[[], None] | None = None
        """Called (in its own thread) after every (re)connection."""

    def on(self, kind: str, handler: Handler) -> None:
        """Route messages whose topic kind is ``kind`` (status, telemetry, …) to handler."""
        self.handlers[kind] = handler

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                                  properties=connect_properties())
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self.connected.wait(timeout)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the controller: %s", reason)
            return
        subs = [(t, 1) for t in CONTROLLER_SUBSCRIPTIONS]
        subs.append((f"$share/{self.share_group}/{ALERT_SUBSCRIPTION}", 1))
        client.subscribe(subs)
        self.connected.set()
        if self.on_connected:
            threading.Thread(target=self.on_connected, name="on-connected", daemon=True).start()
        log.info("controller connected to the broker at %s:%d", self.host, self.port)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        self.connected.clear()
        log.warning("controller disconnected from the broker (%s); retrying", reason)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            info = parse_topic(msg.topic)
            handler = self.handlers.get(info.kind)
            if handler is None:
                raise ContractError(f"no handler for {info.kind!r}")
            handler(info, msg.payload)
        except ContractError as exc:
            self.dropped_messages += 1
            log.warning("dropped message on %s: %s", msg.topic, exc)
        except Exception:
            self.dropped_messages += 1
            log.exception("dropped message on %s: handler failed", msg.topic)

    # publishing --------------------------------------------------------------------------
    def publish_plan(self, commune: str, plan: Plan) -> None:
        self.client.publish(Topics(commune).plan(plan.node), plan.to_bytes(), qos=1, retain=True)

    def publish_media(self, topic_for_chunk: Callable[[int], str], ref: MediaRef,
                      read_chunk: Callable[[int], bytes], chunks: list[int] | None = None) -> None:
        """Publish chunks (all, or those listed) of one media file, QoS 1, in order."""
        for index in chunks if chunks is not None else range(ref.chunks):
            if 0 <= index < ref.chunks:
                info = self.client.publish(topic_for_chunk(index), read_chunk(index), qos=1)
                if info.rc != 0:
                    log.warning("media chunk %d of %s not queued (rc %s)", index,
                                ref.sha256[:12], info.rc)

    def send_command(self, topic: str, command: Command, reply_topic: str | None = None) -> None:
        props = Properties(PacketTypes.PUBLISH)
        if reply_topic:
            props.ResponseTopic = reply_topic
        props.CorrelationData = command.id.encode()
        props.MessageExpiryInterval = 3600
        self.client.publish(topic, command.to_bytes(), qos=1, properties=props)

