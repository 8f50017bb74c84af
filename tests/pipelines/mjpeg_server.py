"""A controllable MJPEG-over-HTTP camera on 127.0.0.1, for testing live sources against real sockets.

It speaks what many IP cameras speak (`multipart/x-mixed-replace`, one JPEG per part) and
can be made to fail the ways cameras fail: the server dies (`kill`) and comes back on the
same port (`restart`), a connection stays open but goes silent (`stall`), the picture
stops changing (`freeze`), or parts carry bytes that are no JPEG (`corrupt_next`).
Frames are drawn from the frame counter, so consecutive frames always differ unless
frozen.
"""

from __future__ import annotations

import base64
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "frame"

Renderer = Callable[[int], np.ndarray]


def moving_box(counter: int, width: int = 160, height: int = 90) -> np.ndarray:
    """A BGR frame with a box that moves with `counter` and the counter written on it."""
    image = np.full((height, width, 3), 40, np.uint8)
    x = (counter * 7) % max(1, width - 30)
    cv2.rectangle(image, (x, height // 3), (x + 30, height // 3 + 30), (0, 200, 255), -1)
    cv2.putText(image, str(counter), (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return image


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: MjpegServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a test's output should show the test, not the camera's access log."""

    def do_GET(self) -> None:
        owner = self.server.owner
        if not owner._authorized(self.headers.get("Authorization")):
            owner.auth_failures += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="camera"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.split("?", 1)[0] != owner.path:
            self.send_error(404)
            return
        owner._track(self.connection, add=True)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            owner._stream(self)
        except (OSError, ValueError):
            pass  # the client went away, or kill() cut the connection
        finally:
            owner._track(self.connection, add=False)


class MjpegServer:
    """An MJPEG camera on 127.0.0.1 served from a background thread; see the module docstring."""

    def __init__(
        self,
        *,
        fps: float = 25.0,
        render: Renderer = moving_box,
        credentials: tuple[str, str] | None = None,
        path: str = "/stream.mjpg",
        port: int = 0,
    ) -> None:
        self.fps = fps
        self.render = render
        self.credentials = credentials
        self.path = path
        self.port = port
        self.connections_served = 0
        self.parts_sent = 0
        self.auth_failures = 0
        self._lock = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self._frozen_jpeg: bytes | None = None
        self._freeze = False
        self._stalled_until: float | None = None  # monotonic deadline; inf until resume()
        self._corrupt_left = 0

    @property
    def url(self) -> str:
        """The stream's URL, with the credentials in it when the server checks them."""
        if self.port == 0:
            raise RuntimeError("start() the server first: its port is chosen when it binds")
        userinfo = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"http://{userinfo}127.0.0.1:{self.port}{self.path}"

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def start(self) -> MjpegServer:
        """Listen (on an ephemeral port the first time, the same port afterwards) and serve."""
        if self._server is not None:
            raise RuntimeError("the server is already running")
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.owner = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def kill(self) -> None:
        """Stop listening and reset every open connection, as a camera that loses power does."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
            self._lock.notify_all()
        for connection in connections:
            try:
                # SO_LINGER 0: the handler's close sends RST instead of a polite FIN
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restart(self) -> None:
        """Come back on the same port after `kill()` (or kill and come back)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Shut down for good (the same as `kill`; named for fixtures)."""
        self.kill()

    def stall(self, seconds: float | None = None) -> None:
        """Keep connections open but send nothing, for `seconds` or until `resume()`."""
        with self._lock:
            self._stalled_until = float("inf") if seconds is None else time.monotonic() + seconds
            self._lock.notify_all()

    def resume(self) -> None:
        """End a stall."""
        with self._lock:
            self._stalled_until = None
            self._lock.notify_all()

    def freeze(self) -> None:
        """Keep sending the same JPEG, byte for byte, as a camera with a hung sensor does."""
        with self._lock:
            self._freeze = True

    def unfreeze(self) -> None:
        """Send changing frames again."""
        with self._lock:
            self._freeze = False
            self._frozen_jpeg = None

    def corrupt_next(self, n: int) -> None:
        """Send the next `n` parts with bytes that no JPEG decoder accepts."""
        with self._lock:
            self._corrupt_left += n

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def _authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(f"{self.credentials[0]}:{self.credentials[1]}".encode()).decode()
        return header == f"Basic {expected}"

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
                self.connections_served += 1
            else:
                self._connections.discard(connection)

    def _next_part(self) -> bytes:
        with self._lock:
            if self._corrupt_left > 0:
                self._corrupt_left -= 1
                # no SOI marker: a decoder rejects it at once instead of guessing
                return bytes(range(256)) * 8
            if self._freeze and self._frozen_jpeg is not None:
                return self._frozen_jpeg
            counter = self._counter
            self._counter += 1
        ok, encoded = cv2.imencode(".jpg", self.render(counter), [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise RuntimeError(f"cannot encode frame {counter} as JPEG")
        data = encoded.tobytes()
        with self._lock:
            if self._freeze:
                self._frozen_jpeg = data
        return data

    def _wait_while_stalled(self, connection: socket.socket) -> bool:
        """Block during a stall; False when the connection was cut meanwhile."""
        with self._lock:
            while self._stalled_until is not None and connection in self._connections:
                remaining = self._stalled_until - time.monotonic()
                if remaining <= 0:
                    self._stalled_until = None
                    break
                self._lock.wait(min(remaining, 0.05))
            return connection in self._connections

    def _stream(self, handler: _Handler) -> None:
        period = 1.0 / self.fps
        due = time.monotonic()
        while True:
            if not self._wait_while_stalled(handler.connection):
                return
            data = self._next_part()
            header = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
            handler.wfile.write(header.encode("ascii") + data + b"\r\n")
            handler.wfile.flush()
            with self._lock:
                self.parts_sent += 1
            due = max(due + period, time.monotonic() - period)  # after a stall, do not burst to catch up
            time.sleep(max(0.0, due - time.monotonic()))
