"""Live frame sources that survive faults, for camera workers that run for months.

`LiveSource` reads a camera stream (rtsp://, http(s):// MJPEG or HLS) or replays a video
file or image folder as if it were live, on a daemon thread, and hands the newest frames
to one consumer. Cameras fail in ordinary ways: the network drops, the camera reboots,
a connection goes silent, the picture freezes while frames keep coming, a frame arrives
garbled. None of these ends the source: a lost stream is reopened forever with jittered
exponential backoff until `stop()`, and every change of state becomes a `StreamEvent`
so that a worker can raise a camera alarm instead of finding out from an empty case
list.

Streams are read with PyAV rather than `cv2.VideoCapture`: OpenCV's `read()` answers
`False` alike for a garbled frame, a closed connection and a read timeout (and then
keeps answering `False` at once), so it cannot tell a corrupt frame from a lost camera;
PyAV raises a decoding error for the one and an I/O error for the others. Its error
messages quote the URL with its password, so every message leaving this module goes
through `_Scrubber` first.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import cast
from urllib.parse import unquote, urlsplit

import av
import numpy as np

from pipelines.sources import FileSource, SourceError
from vision.camera import mask_credentials
from vision.types import ClockSource, Frame

logger = logging.getLogger(__name__)

#: URL schemes read as network streams; anything else is a file or folder path
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp"})
#: the shortest backoff delay: a zero delay would turn a dead camera into a busy loop
MIN_BACKOFF_S = 0.05
#: at most one CORRUPT event per this many seconds; `StreamStats.corrupt` counts them all
CORRUPT_REPORT_INTERVAL_S = 5.0
#: frozen-feed test: frames whose every FROZEN_STRIDE-th pixel (both ways) is identical are the same picture
FROZEN_STRIDE = 7
#: a frame may come this fraction of a period early and still count as due (arrival jitter)
_DUE_SLACK = 0.25


@dataclass(frozen=True)
class Backoff:
    """How long to wait before reconnect attempt `attempt` (0 for the first).

    Full jitter (uniform in [0, ceiling], the ceiling growing by `factor` per attempt up
    to `maximum_s`) keeps a site's cameras from reconnecting in lockstep after a switch
    reboots, which would knock the recovering network over again.
    """

    initial_s: float = 0.5
    maximum_s: float = 30.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not self.initial_s > 0:
            raise ValueError(f"initial_s must be > 0, but got {self.initial_s}")
        if not self.maximum_s >= self.initial_s:
            raise ValueError(f"maximum_s must be >= initial_s ({self.initial_s}), but got {self.maximum_s}")
        if not self.factor >= 1:
            raise ValueError(f"factor must be >= 1, but got {self.factor}")

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt `attempt` may wait."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, but got {attempt}")
        try:
            return min(self.maximum_s, self.initial_s * self.factor**attempt)
        except OverflowError:
            return self.maximum_s

    def delay(self, attempt: int, rng: random.Random) -> float:
        """A delay in (0, ceiling(attempt)]: uniform, but never below a small floor."""
        ceiling = self.ceiling(attempt)
        return max(min(MIN_BACKOFF_S, ceiling), rng.uniform(0.0, ceiling))


class StreamEventKind(StrEnum):
    """What happened to a live source."""

    CONNECTED = "connected"  # opened; frames follow
    DISCONNECTED = "disconnected"  # the connection was lost or could not be made
    RECONNECTING = "reconnecting"  # waiting `delay_s` before the next attempt
    FROZEN = "frozen"  # frames keep coming but the picture has not changed for frozen_after_s
    UNFROZEN = "unfrozen"  # the picture changes again
    CORRUPT = "corrupt"  # a frame could not be decoded (reported at most every CORRUPT_REPORT_INTERVAL_S)
    ENDED = "ended"  # a replayed file ended and replay_loop is off


@dataclass(frozen=True)
class StreamEvent:
    """One change in a source's state; `detail` is for people and never holds a password."""

    source_id: str
    kind: StreamEventKind
    at: datetime
    detail: str
    delay_s: float | None = None  # RECONNECTING only: how long the source waits first


@dataclass
class StreamStats:
    """Counters of a live source, as a snapshot.

    `frames` counts good frames the source produced; each was then skipped for the decode
    rate (`skipped`) or queued, and a queued frame was either taken by the consumer
    (`delivered`) or overwritten before it was (`dropped`). `reconnects` counts reconnect
    attempts.
    """

    frames: int = 0
    skipped: int = 0
    delivered: int = 0
    dropped: int = 0
    corrupt: int = 0
    reconnects: int = 0
    frozen: bool = False
    connected: bool = False
    last_frame_at: datetime | None = None


class _Scrubber:
    """Removes a URL's password from text, whatever form the text quotes it in."""

    def __init__(self, url: str) -> None:
        self.masked = mask_credentials(url)
        self._replacements = [(url, self.masked)] if url != self.masked else []
        with contextlib.suppress(ValueError):
            password = urlsplit(url).password
            if password:
                self._replacements += [(password, "***"), (unquote(password), "***")]

    def __call__(self, text: str) -> str:
        for secret, shown in self._replacements:
            text = text.replace(secret, shown)
        return text

    def error(self, error: BaseException) -> str:
        """An exception's message, scrubbed, without the `: 'url'` that PyAV appends to every error."""
        return self(str(error)).replace(f": '{self.masked}'", "")


class _StreamLostError(Exception):
    """The stream is gone for now; the message says why (already scrubbed)."""


class LiveSource:
    """A camera stream (rtsp://, http(s):// MJPEG/HLS, or a file/folder replayed at its own rate as if live).

    A reader thread decodes frames, keeps the newest `buffer` of them for the consumer
    (dropping and counting older ones, so a slow consumer sees fresh frames rather than a
    growing delay) and reconnects after any failure. Frames carry the wall-clock time of
    their arrival (`ClockSource.SYSTEM`) and an index that counts every frame the source
    produced since `start()`, across reconnects and loops, so gaps show skipped or dropped
    frames. `on_event` is called on the reader thread; it must return quickly.
    """

    def __init__(
        self,
        url: str,
        *,
        source_id: str,
        fps: float,
        replay_loop: bool = False,
        backoff: Backoff | None = None,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        frozen_after_s: float = 10.0,
        buffer: int = 2,
        on_event: Callable[[StreamEvent], None] | None = None,
        seed: int | None = None,
    ) -> None:
        for name, value in (
            ("fps", fps),
            ("open_timeout_s", open_timeout_s),
            ("read_timeout_s", read_timeout_s),
            ("frozen_after_s", frozen_after_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, but got {value}")
        if buffer < 1:
            raise ValueError(f"buffer must hold at least 1 frame, but got {buffer}")
        if not source_id:
            raise ValueError("source_id must be a non-empty string")
        self._url = url
        self._scrub = _Scrubber(url)
        self.masked_url = self._scrub.masked
        self.source_id = self._scrub(mask_credentials(source_id))
        self.fps = fps
        self.replay_loop = replay_loop
        self.backoff = backoff if backoff is not None else Backoff()
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.frozen_after_s = frozen_after_s
        self.buffer = buffer
        self._on_event = on_event
        self._rng = random.Random(seed)
        scheme = urlsplit(url).scheme.lower() if "://" in url else ""
        self._path = None if scheme in STREAM_SCHEMES else Path(url.removeprefix("file://"))

        self._cond = threading.Condition()
        self._queue: deque[Frame] = deque()
        self._stats = StreamStats()
        self._stopping = threading.Event()
        self._ended = False
        self._thread: threading.Thread | None = None
        # reader-thread state
        self._period = 1.0 / fps
        self._next_due = 0.0
        self._reference: np.ndarray | None = None  # thumbnail of the picture as it last changed
        self._unchanged_since = 0.0
        self._last_corrupt_report = -float("inf")

    def __repr__(self) -> str:
        return f"LiveSource(source_id={self.source_id!r}, url={self.masked_url!r}, fps={self.fps})"

    @property
    def ended(self) -> bool:
        """A file replayed without loop has ended (a stream never ends; it reconnects)."""
        return self._ended

    @property
    def stats(self) -> StreamStats:
        """A consistent copy of the counters (the live ones change on the reader thread)."""
        with self._cond:
            return replace(self._stats)

    def start(self) -> None:
        """Start the daemon reader thread; frames and events follow."""
        if self._thread is not None:
            raise RuntimeError(f"{self!r} was already started; make a new source to read again")
        self._thread = threading.Thread(target=self._run, name=f"live-source-{self.source_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading and wake any `read()`; returns within `timeout` (a blocked read ends by read_timeout_s)."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        if timeout <= 0:  # asked not to wait
            return
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("%s: reader thread still busy %.1f s after stop(); it exits on its own", self, timeout)

    def read(self, timeout: float) -> Frame | None:
        """The oldest frame held, or None when none came within `timeout` s, the source stopped or the file ended."""
        if self._thread is None:
            raise RuntimeError(f"{self!r} is not started: call start() before read()")
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                remaining = deadline - time.monotonic()
                if self._stopping.is_set() or self._ended or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._stopping.is_set():
                return None
            self._stats.delivered += 1
            return self._queue.popleft()

    def __iter__(self) -> Iterator[Frame]:
        """Frames until `stop()` or, for a file replayed without loop, its end."""
        while True:
            frame = self.read(timeout=0.5)
            if frame is not None:
                yield frame
            elif self._stopping.is_set() or self._ended:
                return

    # -- reader thread ---------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        was_lost = False
        while not self._stopping.is_set():
            produced_before = self._stats.frames
            try:
                if self._path is None:
                    self._read_stream()
                else:
                    self._replay_file(self._path)
                    if not self._stopping.is_set():
                        self._emit(StreamEventKind.ENDED, f"{self.masked_url}: end of file", logging.INFO)
                        with self._cond:
                            self._ended = True
                            self._stats.connected = False
                            self._cond.notify_all()
                    return
                reason = "stream ended"
            except _StreamLostError as lost:
                reason = str(lost)
            except Exception as error:  # a long-running worker outlives bugs in a codec or here
                reason = f"unexpected {type(error).__name__}: {self._scrub.error(error)}"
                logger.error(
                    "%s: %s\n%s", self.masked_url, reason, self._scrub("".join(traceback.format_exception(error)))
                )
            if self._stopping.is_set():
                return
            if self._stats.frames > produced_before:
                attempt = 0
            with self._cond:
                was_connected, self._stats.connected = self._stats.connected, False
            if was_connected or not was_lost:
                self._emit(StreamEventKind.DISCONNECTED, f"{self.masked_url}: {reason}", logging.WARNING)
            was_lost = True
            delay = self.backoff.delay(attempt, self._rng)
            attempt += 1
            with self._cond:
                self._stats.reconnects += 1
            self._emit(
                StreamEventKind.RECONNECTING,
                f"{self.masked_url}: retrying in {delay:.2f} s ({reason})",
                logging.INFO,
                delay_s=delay,
            )
            self._stopping.wait(delay)

    def _read_stream(self) -> None:
        """Read one connection until it fails; raises `_StreamLostError`, or returns when stopped or the stream ends."""
        options = {"rtsp_transport": "tcp"} if self._url.lower().startswith("rtsp") else {}
        try:
            container = av.open(self._url, options=options, timeout=(self.open_timeout_s, self.read_timeout_s))
        except av.error.ExitError:  # PyAV's timeout interrupts FFmpeg; its message would say only "exit requested"
            raise _StreamLostError(f"cannot open: no answer within {self.open_timeout_s:g} s") from None
        except (av.FFmpegError, OSError) as error:
            raise _StreamLostError(f"cannot open: {self._scrub.error(error)}") from None
        try:
            if not container.streams.video:
                raise _StreamLostError("no video stream in it")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            self._connected()
            last_good = time.monotonic()
            for packet in container.demux(stream):
                if self._stopping.is_set():
                    return
                try:
                    decoded = packet.decode()
                except av.FFmpegError as error:
                    self._count_corrupt(self._scrub.error(error))
                    decoded = []
                now = time.monotonic()
                for video_frame in decoded:
                    last_good = now
                    if self._take(now):
                        self._offer(video_frame.to_ndarray(format="bgr24"), now)
                if now - last_good > self.read_timeout_s:
                    raise _StreamLostError(f"no decodable frame for {now - last_good:.1f} s")
        except av.error.ExitError:
            raise _StreamLostError(f"read failed: no data for {self.read_timeout_s:g} s") from None
        except (av.FFmpegError, OSError) as error:
            raise _StreamLostError(f"read failed: {self._scrub.error(error)}") from None
        finally:
            container.close()

    def _replay_file(self, path: Path) -> None:
        """Replay the file or folder paced at its own rate (a folder: at `fps`), looping if asked."""
        try:
            source = FileSource(path, source_id=self.source_id)
        except SourceError as error:
            raise _StreamLostError(f"cannot open: {self._scrub.error(error)}") from None
        period = 1.0 / source.fps if source.kind == "video" and source.fps > 0 else self._period
        self._connected()
        due = time.monotonic()
        skipped_seen = 0
        while True:
            produced = source.stats.read
            # FileSource iterates with a generator; closing it releases the decoder when we stop early
            with contextlib.closing(cast(Generator[Frame, None, None], iter(source))) as frames:
                for file_frame in frames:
                    for _ in range(source.stats.skipped - skipped_seen):
                        self._count_corrupt("unreadable frame in the file")
                    skipped_seen = source.stats.skipped
                    if self._stopping.wait(max(0.0, due - time.monotonic())):
                        return
                    now = time.monotonic()
                    if self._take(due):
                        self._offer(np.asarray(file_frame.image), now)
                    due = max(due + period, now - period)  # a slow decode does not make us burst later
            if not self.replay_loop or self._stopping.is_set():
                return
            if source.stats.read == produced and self._stopping.wait(max(period, 1.0)):
                return  # a pass that gave no frame at all: wait, not spin
            logger.debug("%s: end of file, replaying from the start", self.masked_url)

    def _connected(self) -> None:
        with self._cond:
            self._stats.connected = True
        self._emit(StreamEventKind.CONNECTED, f"{self.masked_url}: connected", logging.INFO)

    def _take(self, now: float) -> bool:
        """Count a produced frame and say whether it is due under the decode rate `fps`."""
        with self._cond:
            self._stats.frames += 1
            if now < self._next_due - _DUE_SLACK * self._period:
                self._stats.skipped += 1
                return False
        # keep the schedule (so jitter does not lower the rate) unless more than a period behind
        behind = now - self._next_due >= self._period
        self._next_due = now + self._period if behind else self._next_due + self._period
        return True

    def _offer(self, image: np.ndarray, now: float) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.size == 0 or image.dtype != np.uint8:
            self._count_corrupt(f"decoded to shape {image.shape} {image.dtype}, not H×W×3 uint8")
            return
        self._watch_frozen(image, now)
        with self._cond:
            frame = Frame(
                image=image,
                source_id=self.source_id,
                index=self._stats.frames - 1,
                captured_at=datetime.now(UTC),
                clock_source=ClockSource.SYSTEM,
            )
            if len(self._queue) >= self.buffer:
                self._queue.popleft()
                self._stats.dropped += 1
            self._queue.append(frame)
            self._stats.last_frame_at = frame.captured_at
            self._cond.notify_all()

    def _watch_frozen(self, image: np.ndarray, now: float) -> None:
        # a sample of the pixels as decoded, not averaged: a still street still has sensor noise,
        # and only a feed that repeats its last picture gives the very same pixels
        thumbnail = np.ascontiguousarray(image[::FROZEN_STRIDE, ::FROZEN_STRIDE])
        reference = self._reference
        if reference is None or not np.array_equal(thumbnail, reference):
            self._reference = thumbnail
            self._unchanged_since = now
            if self._stats.frozen:
                with self._cond:
                    self._stats.frozen = False
                self._emit(StreamEventKind.UNFROZEN, f"{self.masked_url}: picture changes again", logging.INFO)
            return
        unchanged = now - self._unchanged_since
        if not self._stats.frozen and unchanged >= self.frozen_after_s:
            with self._cond:
                self._stats.frozen = True
            self._emit(
                StreamEventKind.FROZEN,
                f"{self.masked_url}: picture unchanged for {unchanged:.1f} s while frames keep coming",
                logging.WARNING,
            )

    def _count_corrupt(self, reason: str) -> None:
        with self._cond:
            self._stats.corrupt += 1
            total = self._stats.corrupt
        now = time.monotonic()
        if now - self._last_corrupt_report >= CORRUPT_REPORT_INTERVAL_S:
            self._last_corrupt_report = now
            self._emit(
                StreamEventKind.CORRUPT,
                f"{self.masked_url}: undecodable frame skipped ({reason}); {total} so far",
                logging.WARNING,
            )

    def _emit(self, kind: StreamEventKind, detail: str, level: int, *, delay_s: float | None = None) -> None:
        detail = self._scrub(detail)
        logger.log(level, "%s [%s] %s", self.source_id, kind, detail)
        if self._on_event is None:
            return
        event = StreamEvent(self.source_id, kind, datetime.now(UTC), detail, delay_s)
        try:
            self._on_event(event)
        except Exception:
            logger.exception("%s: on_event callback failed on %s; the source carries on", self.source_id, kind)
