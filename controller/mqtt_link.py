"""The controller's one MQTT connection: it publishes plans, media and commands, and
hands what nodes report (status, telemetry, playback, replies, media requests) to the
ingest service. Malformed messages are logged and dropped; the link keeps running.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.signing import Signer
from mqtt_contract import (
    ALL_CMD,
    COMMAND_TTL_S,
    NODE_CMD,
    PLAN,
    PLAN_TTL_S,
    REPLY,
    ZONE_CMD,
    Command,
    Dispatcher,
    MediaRef,
    Message,
    Plan,
    Target,
    TopicInfo,
    TopicSpec,
    connect_properties,
    controller_subscriptions,
    new_client,
)

log = logging.getLogger(__name__)

Handler = Callable[[TopicInfo, Any], None]
COMMAND_EXPIRY_S = COMMAND_TTL_S
"""A command older than this is not delivered to a node that comes back later (and a node
refuses it by its signed expiry anyway)."""
TARGET_OF = {NODE_CMD.name: (Target.node, "node"), ZONE_CMD.name: (Target.zone, "zone"),
             ALL_CMD.name: (Target.all, None)}
"""Which signed target each command topic stands for, and the topic parameter naming it."""


class NotSigned(RuntimeError):
    """The link has no signer: it publishes no plan or command that nodes would refuse."""


class MqttLink:
    def __init__(self, host: str, port: int, username: str, password: str | None,
                 client_id: str, share_group: str, signer: Signer | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port = host, port
        self.signer = signer
        """Signs every plan and command here, the one place they are published."""
        self.share_group = share_group
        self.client = new_client(client_id, username, password)
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _c, _u, msg: self.dispatcher.dispatch(
            msg.topic, msg.payload, msg.properties)
        self.connected = threading.Event()
        self.dispatcher = Dispatcher("controller")
        self.on_connected: Callable[[], None] | None = None
        """Called on the MQTT network thread after every (re)connection: it must return
        at once (schedule the work, do not do it there)."""

    @property
    def dropped_messages(self) -> int:
        return self.dispatcher.dropped

    def on(self, spec: TopicSpec, handler: Handler) -> None:
        """Route messages of the declared topic ``spec`` to ``handler(info, payload)``;
        the payload arrives validated against the topic's model."""
        self.dispatcher.on(spec, lambda info, payload, props: handler(info, payload))

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
        client.subscribe(controller_subscriptions(self.share_group))
        self.connected.set()
        if self.on_connected:
            self.on_connected()
        log.info("controller connected to the broker at %s:%d", self.host, self.port)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        self.connected.clear()
        log.warning("controller disconnected from the broker (%s); retrying", reason)

    # publishing --------------------------------------------------------------------------
    def publish(self, msg: Message, properties: Properties | None = None) -> bool:
        info = self.client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain,
                                   properties=properties)
        if info.rc != 0:
            log.warning("%s not queued (rc %s)", msg.topic, info.rc)
        return info.rc == 0

    def _signer(self) -> Signer:
        if self.signer is None:
            raise NotSigned("the MQTT link has no signing key: plans and commands stay here")
        return self.signer

    def publish_plan(self, commune: str, plan: Plan) -> None:
        """Sign ``plan`` for its node and publish it (retained)."""
        signed = self._signer().sign(plan, commune, Target.node, plan.node, PLAN_TTL_S)
        self.publish(PLAN.message(commune, signed, node=plan.node))

    def publish_media(self, spec: TopicSpec, commune: str, ref: MediaRef,
                      read_chunk: Callable[[int], bytes], chunks: list[int] | None = None,
                      **params: str) -> None:
        """Publish chunks (all, or those listed) of one media file on ``spec``, in order."""
        for index in chunks if chunks is not None else range(ref.chunks):
            if 0 <= index < ref.chunks:
                self.publish(spec.message(commune, read_chunk(index), sha256=ref.sha256,
                                          index=index, **params))

    def send_command(self, spec: TopicSpec, commune: str, command: Command,
                     reply_node: str | None = None, **params: str) -> None:
        """Send ``command`` on one of the command topics; with ``reply_node`` the node is
        asked (MQTT 5 Response Topic) to answer on its reply topic."""
        props = Properties(PacketTypes.PUBLISH)
        if reply_node:
            props.ResponseTopic = REPLY.topic(commune, node=reply_node)
        props.CorrelationData = command.id.encode()
        props.MessageExpiryInterval = COMMAND_EXPIRY_S
        target, param = TARGET_OF[spec.name]
        signed = self._signer().sign(command, commune, target,
                                     params[param] if param else None, COMMAND_TTL_S)
        self.publish(spec.message(commune, signed, **params), props)
