"""The MQTT subscriber against a real Mosquitto: readings in, episodes out, nothing lost."""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pipelines.monitors import EndReason, Episode, ExceedanceEpisode, MonitorBank, MonitorConfig
from pipelines.mqtt import MonitorSubscriber, RejectReason

pytestmark = pytest.mark.services

HOST, PORT = "127.0.0.1", 1883
T0 = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
TIMEOUT_S = 3.0


def payload(seconds: float, concentration: float, monitor_id: str = "m1", **extra: object) -> bytes:
    body = {
        "monitor_id": monitor_id,
        "at": (T0 + timedelta(seconds=seconds)).isoformat(),
        "concentration_mg_m3": concentration,
        "purifier_on": True,
        "fan_on": True,
    }
    return json.dumps(body | extra).encode()


#: six minutes above the standard, then clear: one exceedance episode of 300 s
EXCEEDANCE = [payload(60 * i, 4.0) for i in range(6)] + [payload(360, 0.5)]


def wait_until(condition: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def prefix() -> str:
    return f"test/{uuid.uuid4().hex}/monitors"


@pytest.fixture
def bank() -> MonitorBank:
    return MonitorBank([MonitorConfig(monitor_id="m1", premises_id="p1"), MonitorConfig(monitor_id="m2")])


@pytest.fixture
def episodes() -> queue.Queue[Episode]:
    return queue.Queue()


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex}")
        self.client.connect(HOST, port)
        self.client.loop_start()

    def publish(self, topic: str, *payloads: bytes) -> None:
        for body in payloads:
            self.client.publish(topic, body, qos=1).wait_for_publish(TIMEOUT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    pub = Publisher(PORT)
    yield pub
    pub.close()


@pytest.fixture
def make_subscriber(
    bank: MonitorBank, episodes: queue.Queue[Episode], prefix: str
) -> Iterator[Callable[..., MonitorSubscriber]]:
    made: list[MonitorSubscriber] = []

    def make(**options: object) -> MonitorSubscriber:
        settings: dict = {
            "client_id": f"test-sub-{uuid.uuid4().hex}",
            "topic_prefix": prefix,
            "session_expiry_s": 30,  # the broker forgets the test's session soon after
            "sweep_interval_s": None,
        } | options
        port = settings.pop("port", PORT)
        subscriber = MonitorSubscriber(HOST, port, bank, episodes.put, **settings)
        made.append(subscriber)
        return subscriber

    yield make
    for subscriber in made:
        subscriber.stop()


@pytest.fixture
def subscriber(make_subscriber: Callable[..., MonitorSubscriber]) -> Iterator[MonitorSubscriber]:
    sub = make_subscriber()
    sub.start()
    assert sub.wait_subscribed(TIMEOUT_S), "the subscriber did not subscribe"
    yield sub


def test_published_readings_become_an_episode(
    subscriber: MonitorSubscriber, publisher: Publisher, prefix: str, episodes: queue.Queue[Episode]
) -> None:
    publisher.publish(f"{prefix}/m1/readings", *EXCEEDANCE)
    episode = episodes.get(timeout=TIMEOUT_S)
    assert isinstance(episode, ExceedanceEpisode)
    assert (episode.monitor_id, episode.premises_id) == ("m1", "p1")
    assert (episode.started_at, episode.last_at, episode.readings) == (T0, T0 + timedelta(seconds=300), 6)
    assert episode.end_reason is EndReason.CLEARED
    assert wait_until(lambda: subscriber.stats().accepted == 7)
    assert subscriber.stats().episodes == 1


@pytest.mark.parametrize(
    ("topic_id", "body", "reason", "detail"),
    [
        ("m1", b"{not json", RejectReason.MALFORMED_JSON, "Invalid JSON"),
        ("m1", b"\xff\xfe\x00", RejectReason.MALFORMED_JSON, "Invalid JSON"),
        ("m1", b"[1, 2]", RejectReason.NOT_AN_OBJECT, "Input should be an object"),
        ("m1", b'{"monitor_id": "m1", "at": "2024-05-01T11:00:00Z"}', RejectReason.INVALID_FIELDS, "concentration"),
        (
            "m1",
            b'{"monitor_id": "m1", "at": "2024-05-01T11:00:00", "concentration_mg_m3": 1}',
            RejectReason.INVALID_FIELDS,
            "at: Value error, at must carry a UTC offset",
        ),
        ("m1", payload(0, -1.0), RejectReason.INVALID_FIELDS, "concentration_mg_m3: Input should be greater"),
        ("m1", payload(0, 1.0, humidity=40), RejectReason.INVALID_FIELDS, "humidity: Extra inputs"),
        ("m1", b'{"pad": "' + b"x" * 20_000 + b'"}', RejectReason.TOO_LARGE, "exceeds max_payload_bytes"),
        ("m1", payload(0, 1.0, monitor_id="m2"), RejectReason.TOPIC_MISMATCH, "'m2' differs from the topic's 'm1'"),
        ("m9", payload(0, 1.0, monitor_id="m9"), RejectReason.UNKNOWN_MONITOR, "unknown monitor 'm9'"),
        ("bad id!", payload(0, 1.0), RejectReason.BAD_TOPIC, "<monitor id>"),
    ],
)
def test_unusable_messages_are_counted_by_reason_and_kept(
    subscriber: MonitorSubscriber,
    publisher: Publisher,
    prefix: str,
    topic_id: str,
    body: bytes,
    reason: RejectReason,
    detail: str,
) -> None:
    topic = f"{prefix}/{topic_id}/readings"
    publisher.publish(topic, body)
    assert wait_until(lambda: subscriber.stats().rejected == {reason: 1})
    [reject] = subscriber.rejects
    assert (reject.reason, reject.topic, reject.payload_size) == (reason, topic, len(body))
    assert reject.payload == body[: subscriber.max_payload_bytes]
    assert detail in reject.detail
    assert subscriber.stats().accepted == 0


def test_the_subscriber_carries_on_after_rejects(
    subscriber: MonitorSubscriber, publisher: Publisher, prefix: str, episodes: queue.Queue[Episode]
) -> None:
    topic = f"{prefix}/m1/readings"
    publisher.publish(topic, b"garbage", payload(0, 1.0, monitor_id="m2"), *EXCEEDANCE)
    assert episodes.get(timeout=TIMEOUT_S).readings == 6
    assert subscriber.stats().rejected == {RejectReason.MALFORMED_JSON: 1, RejectReason.TOPIC_MISMATCH: 1}


def test_only_the_last_rejects_are_kept_but_all_are_counted(
    make_subscriber: Callable[..., MonitorSubscriber], publisher: Publisher, prefix: str
) -> None:
    sub = make_subscriber(max_rejects=3)
    sub.start()
    assert sub.wait_subscribed(TIMEOUT_S)
    publisher.publish(f"{prefix}/m1/readings", *(f"bad {i}".encode() for i in range(5)))
    assert wait_until(lambda: sub.stats().rejected == {RejectReason.MALFORMED_JSON: 5})
    assert [r.payload for r in sub.rejects] == [b"bad 2", b"bad 3", b"bad 4"]


def test_a_failing_on_episode_is_counted_and_does_not_stop_the_subscriber(
    make_subscriber: Callable[..., MonitorSubscriber], publisher: Publisher, prefix: str
) -> None:
    def refuse(episode: Episode) -> None:
        raise RuntimeError("database down")

    sub = make_subscriber()
    sub.on_episode = refuse
    sub.start()
    assert sub.wait_subscribed(TIMEOUT_S)
    publisher.publish(f"{prefix}/m1/readings", *EXCEEDANCE)
    publisher.publish(f"{prefix}/m2/readings", *(p.replace(b'"m1"', b'"m2"') for p in EXCEEDANCE))
    assert wait_until(lambda: sub.stats().delivery_failures == 2)
    assert sub.stats().accepted == 14


def test_readings_published_while_stopped_arrive_after_restart(
    make_subscriber: Callable[..., MonitorSubscriber],
    publisher: Publisher,
    prefix: str,
    episodes: queue.Queue[Episode],
) -> None:
    client_id = f"test-sub-{uuid.uuid4().hex}"
    first = make_subscriber(client_id=client_id)
    first.start()
    assert first.wait_subscribed(TIMEOUT_S)
    first.stop()
    publisher.publish(f"{prefix}/m1/readings", *EXCEEDANCE)  # QoS 1, queued by the broker in the session
    second = make_subscriber(client_id=client_id)
    second.start()
    episode = episodes.get(timeout=TIMEOUT_S)
    assert (episode.started_at, episode.readings) == (T0, 6)
    assert wait_until(lambda: second.stats().accepted == 7)
    assert first.stats().accepted == 0


def test_the_sweep_closes_the_episode_of_a_monitor_gone_silent(
    make_subscriber: Callable[..., MonitorSubscriber],
    publisher: Publisher,
    prefix: str,
    episodes: queue.Queue[Episode],
) -> None:
    now = [T0 + timedelta(seconds=300)]
    sub = make_subscriber(sweep_interval_s=0.05, clock=lambda: now[0])
    sub.start()
    assert sub.wait_subscribed(TIMEOUT_S)
    publisher.publish(f"{prefix}/m1/readings", *EXCEEDANCE[:6])
    assert wait_until(lambda: sub.stats().accepted == 6)
    assert episodes.empty()
    now[0] += timedelta(seconds=181)
    episode = episodes.get(timeout=TIMEOUT_S)
    assert (episode.readings, episode.end_reason) == (6, EndReason.SILENCE)


# -- a broker of the test's own, to take away and bring back


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Broker:
    """A private Mosquitto on a free port, started and stopped by the test."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if binary is None:
            message = "needs the mosquitto binary to start a private broker"
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"CI must run this test, but it {message}")
            pytest.skip(message)
        self.binary = binary
        self.port = _free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} {HOST}\nallow_anonymous true\npersistence false\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not wait_until(self._listening):
            raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=TIMEOUT_S)
            self.process = None

    def _listening(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.2):
                return True
        except OSError:
            return False


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    own = Broker(tmp_path)
    yield own
    own.stop()


def test_a_broker_down_at_start_is_waited_for(
    broker: Broker, make_subscriber: Callable[..., MonitorSubscriber]
) -> None:
    sub = make_subscriber(port=broker.port)
    sub.start()
    assert not sub.wait_subscribed(0.2)
    broker.start()
    assert sub.wait_subscribed(TIMEOUT_S)


def test_the_subscriber_reconnects_when_the_broker_comes_back(
    broker: Broker,
    make_subscriber: Callable[..., MonitorSubscriber],
    prefix: str,
    episodes: queue.Queue[Episode],
) -> None:
    broker.start()
    sub = make_subscriber(port=broker.port)
    sub.start()
    assert sub.wait_subscribed(TIMEOUT_S)
    broker.stop()
    assert wait_until(lambda: not sub.connected)
    broker.start()  # a fresh broker without the session: the subscriber subscribes again
    assert sub.wait_subscribed(TIMEOUT_S)
    pub = Publisher(broker.port)
    try:
        pub.publish(f"{prefix}/m1/readings", *EXCEEDANCE)
        assert episodes.get(timeout=TIMEOUT_S).readings == 6
    finally:
        pub.close()
    assert sub.stats().connects == 2
