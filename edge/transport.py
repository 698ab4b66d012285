"""The node's MQTT link: one paho client driven by the node's event loop.

The one adapter between the node's parts and the broker. Nothing else touches paho:
parts hand it contract :class:`~mqtt_contract.Message` values (topic, bytes, and the QoS
and retain flag their topic declares) and get called back on connect, disconnect,
message and acknowledgement, always on the loop.

paho runs without its own thread (``loop_read``/``loop_write``/``loop_misc`` from the
loop's epoll). The TCP and TLS connect blocks, so it runs in the loop's worker pool;
reconnects back off exponentially (1 s doubling to 60 s), as paho's own loop would.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.loop import Reactor, Timer
from mqtt_contract import Message, connect_properties, new_client

log = logging.getLogger(__name__)

MISC_INTERVAL_S = 2.0
"""How often keep-alive bookkeeping runs (pings, a silent broker noticed)."""
BACKOFF_MIN_S, BACKOFF_MAX_S = 1.0, 60.0


@dataclass
class LinkSettings:
    host: str
    port: int
    client_id: str
    username: str
    password: str | None
    keepalive_s: int = 30
    tls: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


def tls_context(settings: LinkSettings) -> ssl.SSLContext:
    """TLS 1.2 or later; the broker's certificate must chain to ``ca_file`` (the fleet CA;
    the system's CAs only if none is given) and name the host connected to. With a client
    certificate, the node proves it is a fleet device before it sends its password."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.ca_file:
        ctx.load_verify_locations(cafile=str(settings.ca_file))
    else:
        ctx.load_default_certs()
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if settings.cert_file and settings.key_file:
        ctx.load_cert_chain(str(settings.cert_file), str(settings.key_file))
    return ctx


@dataclass
class LinkEvents:
    """What the transport tells the agent; every callback runs on the loop."""

    connected: Callable[[bool], None]
    disconnected: Callable[[], None]
    message: Callable[[str, bytes, Any], None]
    published: Callable[[int], None]
    subscribed: Callable[[], None]
    """The broker acknowledged a subscription: messages on it will now arrive."""


class MqttTransport:
    def __init__(self, loop: Reactor, settings: LinkSettings, events: LinkEvents,
                 will: Message | None = None) -> None:
        self.loop, self.settings, self.events = loop, settings, events
        self.client = new_client(settings.client_id, settings.username, settings.password)
        if will:
            self.client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        if settings.tls:
            self.client.tls_set_context(tls_context(settings))
        c = self.client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = lambda _c, _u, msg: self.events.message(msg.topic, msg.payload,
                                                               msg.properties)
        c.on_publish = lambda _c, _u, mid, _rc, _p: self.events.published(mid)
        c.on_subscribe = lambda *_: self.events.subscribed()
        c.on_socket_open = lambda _c, _u, sock: self._hand_over(self._watch, sock)
        c.on_socket_close = lambda _c, _u, sock: self._hand_over(self.loop.unwatch, sock)
        c.on_socket_register_write = lambda _c, _u, sock: self._want_write(sock)
        c.on_socket_unregister_write = lambda _c, _u, sock: self._hand_over(
            self._stop_writing, sock)
        self.connected = False
        self._flush_queued = False
        self._in_flush = False
        self._watching_write = False
        self._closing = False
        self._connecting = False
        self._backoff = BACKOFF_MIN_S
        self._misc: Timer | None = None
        self._retry: Timer | None = None

    # lifecycle (loop thread) ---------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s, clean_start=False,
                                  properties=connect_properties())
        self._connect()
        self._misc = self.loop.call_later(MISC_INTERVAL_S, self._keepalive)

    def close(self, final: Message | None = None) -> None:
        """Disconnect; ``final`` (the retained offline status) goes out first if we can."""
        self._closing = True
        for timer in (self._misc, self._retry):
            if timer:
                timer.cancel()
        if self.connected:
            if final:
                self.publish(final)
            self.client.disconnect()
            self._flush_writes()
        sock = self.client.socket()
        if sock is not None:
            self.loop.unwatch(sock)

    def drop(self) -> None:
        """Cut the link without a DISCONNECT (the broker then publishes the will)."""
        self._closing = True
        for timer in (self._misc, self._retry):
            if timer:
                timer.cancel()
        sock = self.client.socket()
        if sock is not None:
            self.loop.unwatch(sock)
            sock.close()

    def publish(self, msg: Message, properties: Properties | None = None) -> int | None:
        """Send ``msg``; its mid for QoS 1 (acknowledged through ``events.published``),
        None if it could not be queued (not connected: the caller keeps it)."""
        if not self.connected:
            return None
        info = self.client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain,
                                   properties=properties)
        return info.mid if info.rc == 0 else None

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        if self.connected and filters:
            self.client.subscribe(filters)

    def unsubscribe(self, topic: str) -> None:
        if self.connected:
            self.client.unsubscribe(topic)

    @staticmethod
    def reply_properties(incoming: Any) -> Properties:
        """Properties of a reply: the request's MQTT 5 Correlation Data, copied."""
        out = Properties(PacketTypes.PUBLISH)
        corr = getattr(incoming, "CorrelationData", None)
        if corr:
            out.CorrelationData = corr
        return out

    # connecting ----------------------------------------------------------------------
    def _connect(self) -> None:
        if self._closing or self._connecting:
            return
        self._connecting = True
        self.loop.run_blocking(self.client.reconnect, self._connect_done)

    def _connect_done(self, rc: Any, error: BaseException | None) -> None:
        self._connecting = False
        if self._closing:
            return
        if error is not None or (rc is not None and rc != 0):
            log.warning("cannot reach the broker at %s:%d (%s); retrying in %.0f s",
                        self.settings.host, self.settings.port, error or rc, self._backoff)
            self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._closing:
            return
        self._retry = self.loop.call_later(self._backoff, self._connect)
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self.connected = True
        self._backoff = BACKOFF_MIN_S
        self.events.connected(bool(flags.session_present))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        was = self.connected
        self.connected = False
        if self._closing:
            return
        if was:
            log.warning("disconnected from the broker (%s); retrying with backoff", reason)
            self.events.disconnected()
        self._schedule_retry()

    # socket events (loop thread) -------------------------------------------------------
    def _hand_over(self, fn: Callable[..., None], *args: Any) -> None:
        """paho calls socket hooks from the connecting worker too: run them on the loop."""
        if self.loop.in_loop():
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def _watch(self, sock: Any, want_write: bool | None = None) -> None:
        if self.client.socket() is not sock or sock.fileno() < 0:
            return  # a socket already replaced or closed
        if want_write is None:
            want_write = self.client.want_write()
        self._watching_write = want_write
        self.loop.watch(sock, self._readable, self._writable if want_write else None)

    def _want_write(self, sock: Any) -> None:
        """paho has bytes to send. On the loop they go out in one write after the current
        burst of events (no epoll change per packet: a hundred nodes answering at once
        would make two system calls each); from the connecting thread, watch for write."""
        if not self.loop.in_loop():
            self.loop.call_soon_threadsafe(self._watch, sock, True)
        elif not self._flush_queued and not self._in_flush and not self._watching_write:
            self._flush_queued = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_queued = False
        sock = self.client.socket()
        if sock is None:
            return
        self._in_flush = True
        try:
            self.client.loop_write()
        finally:
            self._in_flush = False
        if self.client.want_write() and self.client.socket() is sock:
            self._watch(sock, True)  # the socket is full: wait until it drains

    def _stop_writing(self, sock: Any) -> None:
        if self._watching_write:
            self._watch(sock, False)

    def _readable(self) -> None:
        """Read what the socket has. TLS decrypts whole records: bytes of a next packet may
        already sit in the SSL buffer, where epoll cannot see them, so read on while the
        SSL layer still holds some."""
        self.client.loop_read()
        sock = self.client.socket()
        while isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
            if self.client.loop_read() != 0:
                break
            sock = self.client.socket()

    def _writable(self) -> None:
        self.client.loop_write()

    def _flush_writes(self) -> None:
        """Write what is queued now (closing: the loop will not come back for it)."""
        deadline = time.monotonic() + 2.0
        while self.client.want_write() and time.monotonic() < deadline:
            if self.client.loop_write() != 0:
                break
            time.sleep(0.005)

    def _keepalive(self) -> None:
        if self._closing:
            return
        if self.client.socket() is not None and not self._connecting:
            self.client.loop_misc()
        self._misc = self.loop.call_later(MISC_INTERVAL_S, self._keepalive)
