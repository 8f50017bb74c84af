"""Fume-monitor readings over MQTT: a subscriber that feeds a `MonitorBank`.

Monitors publish JSON readings (`pipelines.monitors.Reading`) on
`nonsite/monitors/<monitor id>/readings`. `MonitorSubscriber` subscribes to
`nonsite/monitors/+/readings`, checks that the id in the topic is the id in the payload,
gives each reading to the bank and hands every episode the bank closes to `on_episode`.

Nothing is lost on the way:

- QoS 1 with a persistent MQTT v5 session (clean start off, a session expiry interval)
  and a stable client id: the broker keeps the subscription and queues readings while
  the subscriber is away — a broker restart, a network drop, a redeploy — and delivers
  them when it comes back. paho acknowledges a message only after the callback returns,
  so a reading in flight when the process dies is delivered again (the tracker drops
  the duplicate).
- A lost connection is retried forever with exponential backoff (paho's own reconnect,
  `reconnect_min_s` doubling up to `reconnect_max_s`); the subscription is renewed on
  every connect in case the broker lost the session.
- A payload that cannot be used is never a crash and never silent: it is counted per
  `RejectReason`, logged with its topic, and kept, raw, among the last `max_rejects`
  rejects for an operator to look at. A reading of an unknown monitor is rejected the
  same way, whole, so that it can be replayed once the monitor is registered.

Callbacks run on paho's network thread; a sweep thread closes the episodes of monitors
that fell silent (`MonitorBank.expire`). `on_episode` is called from one thread at a time.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from pipelines.monitors import ID_PATTERN, Episode, Reading, ReadingSink, UnknownMonitorError

logger = logging.getLogger(__name__)

#: where monitors publish: `<prefix>/<monitor id>/readings`
DEFAULT_TOPIC_PREFIX = "nonsite/monitors"
#: the last topic level of a reading
READINGS_LEVEL = "readings"
#: the client id nonsite subscribes under; stable, so that the broker keeps its session
DEFAULT_CLIENT_ID = "nonsite-monitors"
#: how long the broker keeps the session (and queues readings) of a subscriber that is gone: one day
DEFAULT_SESSION_EXPIRY_S = 86_400
_MONITOR_ID = re.compile(ID_PATTERN)
#: characters of a rejected payload quoted in the log line (the whole payload stays in `rejects`)
_LOGGED_PAYLOAD_CHARS = 200


class RejectReason(StrEnum):
    """Why a message did not become a reading."""

    #: the topic is not `<prefix>/<monitor id>/readings` or is not UTF-8
    BAD_TOPIC = "bad_topic"
    #: the payload is longer than max_payload_bytes
    TOO_LARGE = "too_large"
    #: the payload is not JSON (or not UTF-8)
    MALFORMED_JSON = "malformed_json"
    #: the payload is JSON but not an object
    NOT_AN_OBJECT = "not_an_object"
    #: the object is not a valid reading: a field missing, out of bounds, unknown, a naive time...
    INVALID_FIELDS = "invalid_fields"
    #: the payload's monitor id is not the one in the topic
    TOPIC_MISMATCH = "topic_mismatch"
    #: no monitor of that id is configured; the reading is kept here to be replayed
    UNKNOWN_MONITOR = "unknown_monitor"


@dataclass(frozen=True, slots=True)
class Reject:
    """A message that did not become a reading, kept as it came."""

    reason: RejectReason
    topic: str
    payload: bytes
    payload_size: int
    detail: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    """Counters of a subscriber since it was made."""

    connected: bool
    subscribed: bool
    connects: int
    disconnects: int
    accepted: int
    rejected: dict[RejectReason, int]
    episodes: int
    delivery_failures: int


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'payload'}: {e['msg']}" for e in error.errors(include_url=False)
    )


class MonitorSubscriber:
    """Subscribes to monitor readings on an MQTT broker and feeds them to a bank.

    `start()` returns at once: the connection is made (and remade) in the background, so
    a broker that is down at start is waited for, not an error. `stop()` disconnects and
    leaves the session on the broker, which queues readings until the next `start()`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        bank: ReadingSink,
        on_episode: Callable[[Episode], None],
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        topic_prefix: str = DEFAULT_TOPIC_PREFIX,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
        keepalive_s: int = 30,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 60,
        max_rejects: int = 100,
        max_payload_bytes: int = 16_384,
        sweep_interval_s: float | None = 30.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not host:
            raise ValueError("host must name the MQTT broker, but got an empty string")
        if not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, but got {port}")
        if not client_id or len(client_id.encode()) > 65535:
            raise ValueError(f"client_id must be 1 to 65535 bytes, but got {client_id!r}")
        levels = topic_prefix.split("/")
        if not topic_prefix or any(not level or level in ("+", "#") for level in levels):
            raise ValueError(
                f"topic_prefix must be topic levels without wildcards or empty levels, e.g. "
                f"{DEFAULT_TOPIC_PREFIX!r}, but got {topic_prefix!r}"
            )
        if not 0 <= session_expiry_s <= 0xFFFFFFFF:
            raise ValueError(f"session_expiry_s must be in 0..4294967295, but got {session_expiry_s}")
        if not keepalive_s > 0:
            raise ValueError(f"keepalive_s must be > 0, but got {keepalive_s}")
        if not 0 < reconnect_min_s <= reconnect_max_s:
            raise ValueError(
                f"reconnect delays must satisfy 0 < reconnect_min_s <= reconnect_max_s, "
                f"but got {reconnect_min_s} and {reconnect_max_s}"
            )
        if not max_rejects > 0:
            raise ValueError(f"max_rejects must be > 0, but got {max_rejects}")
        if not max_payload_bytes > 0:
            raise ValueError(f"max_payload_bytes must be > 0, but got {max_payload_bytes}")
        if sweep_interval_s is not None and not sweep_interval_s > 0:
            raise ValueError(f"sweep_interval_s must be > 0 or None, but got {sweep_interval_s}")
        self.host = host
        self.port = port
        self.bank = bank
        self.on_episode = on_episode
        self.client_id = client_id
        self.topic_prefix = topic_prefix
        self.topic_filter = f"{topic_prefix}/+/{READINGS_LEVEL}"
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.max_payload_bytes = max_payload_bytes
        self.sweep_interval_s = sweep_interval_s
        self._clock = clock

        self._lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        self._rejects: deque[Reject] = deque(maxlen=max_rejects)
        self._rejected: Counter[RejectReason] = Counter()
        self._accepted = 0
        self._episodes = 0
        self._delivery_failures = 0
        self._connects = 0
        self._disconnects = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self._client: mqtt.Client | None = None
        self._sweeper: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- life cycle

    def start(self) -> None:
        """Connect in the background and keep connected until `stop()`."""
        if self._client is not None:
            raise RuntimeError(f"subscriber {self.client_id!r} is already started; stop() it first")
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=True,
        )
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        client.reconnect_delay_set(min_delay=self.reconnect_min_s, max_delay=self.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        client.connect_async(self.host, self.port, keepalive=self.keepalive_s, clean_start=False, properties=properties)
        logger.info(
            "monitor subscriber %s: connecting to %s:%d for %s", self.client_id, self.host, self.port, self.topic_filter
        )
        self._stopping.clear()
        self._client = client
        client.loop_start()
        if self.sweep_interval_s is not None:
            self._sweeper = threading.Thread(
                target=self._sweep, args=(self.sweep_interval_s,), name=f"monitor-sweep-{self.client_id}", daemon=True
            )
            self._sweeper.start()

    def stop(self) -> None:
        """Disconnect, leaving the session (and readings queued meanwhile) on the broker."""
        client, self._client = self._client, None
        if client is None:
            return
        self._stopping.set()
        client.disconnect()
        client.loop_stop()
        if self._sweeper is not None:
            self._sweeper.join()
            self._sweeper = None
        self._connected.clear()
        self._subscribed.clear()
        logger.info("monitor subscriber %s: stopped", self.client_id)

    def __enter__(self) -> MonitorSubscriber:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_subscribed(self, timeout_s: float) -> bool:
        """Wait until the broker granted the subscription; whether it did within `timeout_s`."""
        return self._subscribed.wait(timeout_s)

    # -- what came in

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def rejects(self) -> list[Reject]:
        """The last rejected messages, oldest first."""
        with self._lock:
            return list(self._rejects)

    def stats(self) -> SubscriberStats:
        with self._lock:
            return SubscriberStats(
                connected=self._connected.is_set(),
                subscribed=self._subscribed.is_set(),
                connects=self._connects,
                disconnects=self._disconnects,
                accepted=self._accepted,
                rejected=dict(self._rejected),
                episodes=self._episodes,
                delivery_failures=self._delivery_failures,
            )

    # -- paho callbacks (network thread)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            logger.error(
                "monitor subscriber %s: %s:%d refused the connection: %s; retrying",
                self.client_id,
                self.host,
                self.port,
                reason_code,
            )
            return
        with self._lock:
            self._connects += 1
            reconnect = self._connects > 1
        self._connected.set()
        if reconnect and not flags.session_present:
            logger.warning(
                "monitor subscriber %s: reconnected to %s:%d but the broker had no session for it; readings "
                "published while it was away are lost",
                self.client_id,
                self.host,
                self.port,
            )
        else:
            logger.info(
                "monitor subscriber %s: connected to %s:%d (session present: %s)",
                self.client_id,
                self.host,
                self.port,
                flags.session_present,
            )
        # renewed on every connect: cheap, and it restores a subscription the broker lost with the session
        _, mid = client.subscribe(self.topic_filter, qos=1)
        with self._lock:
            self._subscribe_mid = mid

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._lock:
            if mid != self._subscribe_mid:
                return
        granted = reason_codes[0] if reason_codes else None
        if granted is None or granted.is_failure:
            logger.error(
                "monitor subscriber %s: the broker refused the subscription to %s: %s",
                self.client_id,
                self.topic_filter,
                granted,
            )
            return
        if granted.value < 1:
            logger.warning(
                "monitor subscriber %s: the broker granted QoS %d, not 1, for %s; readings may be lost while "
                "disconnected",
                self.client_id,
                granted.value,
                self.topic_filter,
            )
        self._subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        self._subscribed.clear()
        with self._lock:
            self._disconnects += 1
        if self._stopping.is_set():
            return
        logger.warning(
            "monitor subscriber %s: lost %s:%d (%s); reconnecting with backoff",
            self.client_id,
            self.host,
            self.port,
            reason_code,
        )

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # an exception escaping a paho callback stops the network loop: nothing may escape
        try:
            self._process(message)
        except Exception:
            logger.exception("monitor subscriber %s: failed on a message of topic %r", self.client_id, message._topic)

    # -- processing

    def _process(self, message: mqtt.MQTTMessage) -> None:
        received_at = self._clock()
        payload = bytes(message.payload)
        try:
            topic = message.topic
        except UnicodeDecodeError:
            self._reject(RejectReason.BAD_TOPIC, repr(message._topic), payload, "topic is not UTF-8", received_at)
            return
        topic_id = self._monitor_id_of(topic)
        if topic_id is None:
            self._reject(
                RejectReason.BAD_TOPIC,
                topic,
                payload,
                f"expected {self.topic_prefix}/<monitor id>/{READINGS_LEVEL} with an id matching {ID_PATTERN}",
                received_at,
            )
            return
        if len(payload) > self.max_payload_bytes:
            self._reject(
                RejectReason.TOO_LARGE,
                topic,
                payload,
                f"payload of {len(payload)} bytes exceeds max_payload_bytes={self.max_payload_bytes}",
                received_at,
            )
            return
        try:
            reading = Reading.model_validate_json(payload)
        except ValidationError as e:
            kinds = {error["type"] for error in e.errors(include_url=False)}
            if "json_invalid" in kinds:
                reason = RejectReason.MALFORMED_JSON
            elif kinds == {"model_type"}:
                reason = RejectReason.NOT_AN_OBJECT
            else:
                reason = RejectReason.INVALID_FIELDS
            self._reject(reason, topic, payload, _describe(e), received_at)
            return
        if reading.monitor_id != topic_id:
            self._reject(
                RejectReason.TOPIC_MISMATCH,
                topic,
                payload,
                f"payload monitor_id {reading.monitor_id!r} differs from the topic's {topic_id!r}",
                received_at,
            )
            return
        try:
            episodes = self.bank.add(reading, received_at=received_at)
        except UnknownMonitorError as e:
            self._reject(RejectReason.UNKNOWN_MONITOR, topic, payload, str(e), received_at)
            return
        with self._lock:
            self._accepted += 1
        self._deliver(episodes)

    def _monitor_id_of(self, topic: str) -> str | None:
        head = f"{self.topic_prefix}/"
        tail = f"/{READINGS_LEVEL}"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        monitor_id = topic[len(head) : -len(tail)]
        return monitor_id if _MONITOR_ID.fullmatch(monitor_id) else None

    def _reject(self, reason: RejectReason, topic: str, payload: bytes, detail: str, received_at: datetime) -> None:
        reject = Reject(
            reason=reason,
            topic=topic,
            payload=payload[: self.max_payload_bytes],
            payload_size=len(payload),
            detail=detail,
            received_at=received_at,
        )
        with self._lock:
            self._rejected[reason] += 1
            self._rejects.append(reject)
        shown = payload[:_LOGGED_PAYLOAD_CHARS]
        logger.warning(
            "monitor subscriber %s: rejected a message on %s (%s): %s; payload %r%s",
            self.client_id,
            topic,
            reason.value,
            detail,
            shown,
            "..." if len(payload) > len(shown) else "",
        )

    def _deliver(self, episodes: list[Episode]) -> None:
        for episode in episodes:
            with self._deliver_lock:
                try:
                    self.on_episode(episode)
                except Exception:
                    with self._lock:
                        self._delivery_failures += 1
                    logger.exception(
                        "monitor subscriber %s: on_episode failed; the episode was not handed on: %s",
                        self.client_id,
                        episode.model_dump_json(),
                    )
                    continue
            with self._lock:
                self._episodes += 1

    def _sweep(self, interval_s: float) -> None:
        while not self._stopping.wait(interval_s):
            try:
                self._deliver(self.bank.expire(self._clock()))
            except Exception:
                logger.exception("monitor subscriber %s: sweeping silent monitors failed", self.client_id)
