"""Prometheus metrics of cameras, read from the health reports their workers write."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pipelines.worker import read_health


class HealthCollector(Collector):
    """Prometheus metrics of every camera, from the workers' health reports."""

    def __init__(self, health_dir: Path, cameras: set[str] | None = None) -> None:
        self.health_dir = health_dir
        self.cameras = cameras  # a camera worker exports only its own

    def collect(self):  # type: ignore[no-untyped-def]
        reports = [h for h in read_health(self.health_dir) if self.cameras is None or h.camera_id in self.cameras]
        gauges = {
            "decode_fps": ("Frames decoded per second", lambda h: h.decode_fps),
            "detect_fps": ("Frames the engine looked at per second", lambda h: h.detect_fps),
            "lag_seconds": ("Seconds between a frame's capture and the engine finishing it", lambda h: h.lag_s),
            "gated_fraction": (
                "Fraction of engine frames the motion gate spared the detector",
                lambda h: h.gated_fraction,
            ),
            "up": ("1 when the camera is live, else 0", lambda h: float(h.state == "live")),
            "tampered": ("1 while a tampering condition is active", lambda h: float(bool(h.tamper))),
        }
        counters = {
            "frames": ("Frames the engine looked at", lambda h: h.frames),
            "reconnects": ("Times the stream was reconnected", lambda h: h.reconnects),
            "corrupt_frames": ("Frames that could not be decoded", lambda h: h.corrupt),
            "dropped_frames": ("Frames dropped because the engine fell behind", lambda h: h.dropped),
            "violations": ("Violations closed", lambda h: h.violations),
        }
        for name, (doc, value) in gauges.items():
            family = GaugeMetricFamily(f"nonsite_camera_{name}", doc, labels=["camera", "worker"])
            for h in reports:
                family.add_metric([h.camera_id, h.worker], value(h))
            yield family
        for name, (doc, value) in counters.items():
            counter = CounterMetricFamily(f"nonsite_camera_{name}", doc, labels=["camera", "worker"])
            for h in reports:
                counter.add_metric([h.camera_id, h.worker], value(h))
            yield counter
