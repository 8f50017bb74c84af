"""Sealing must not slow a camera down (issue 4): packages sealed per second, bundle cost.

Seals packages shaped like the engine's (two 370 kB keyframes, two annotated copies, a
1.6 MB clip, random bytes so nothing compresses) into a fresh vault: store, sign, log.
The baseline in the same run writes the same bytes as plain files with fsync and nothing
else, the least any durable recorder does. Then exports bundles and verifies them offline.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from evidence.bundle import export_bundle, verify_bundle
from evidence.package import PackageFile
from evidence.vault import Vault

SIZES = {"keyframe-1.png": 370_000, "keyframe-2.png": 370_000, "annotated-1.png": 375_000}
SIZES |= {"annotated-2.png": 375_000, "clip.mp4": 1_600_000}


def package(i: int) -> tuple[dict, list[PackageFile]]:
    files = [
        PackageFile(name, os.urandom(size), "video/mp4" if name.endswith("mp4") else "image/png", "keyframe")
        for name, size in SIZES.items()
    ]
    finding = {
        "device": {"id": "cam-1"},
        "place": {},
        "capture": {"started_at": f"2026-11-27T10:{i % 60:02d}:00+00:00"},
        "violation": {"kind": "occupation", "n": i},
        "model": {"sha256": "00" * 32},
        "rule": {},
        "engine": {"name": "nonsite"},
    }
    return finding, files


def plain_write(folder: Path, files: list[PackageFile]) -> None:
    folder.mkdir(parents=True)
    for f in files:
        with (folder / f.name).open("wb") as out:
            out.write(f.data)
            out.flush()
            os.fsync(out.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=60)
    args = parser.parse_args(argv)
    inputs = [package(i) for i in range(args.packages)]
    mb = sum(SIZES.values()) / 1e6
    print(f"evidence benchmark, {datetime.now(UTC).isoformat(timespec='seconds')}, {platform.machine()}")
    print(f"{args.packages} packages of {len(SIZES)} files, {mb:.1f} MB each\n")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seal_times, plain_times = [], []
        vault = Vault(root / "evidence", root / "keys")
        ids = []
        for i, (finding, files) in enumerate(inputs):
            started = time.perf_counter()
            plain_write(root / "plain" / str(i), files)
            plain_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            ids.append(vault.seal(finding, files).package.package_id)
            seal_times.append(time.perf_counter() - started)
        vault.timestamp_authority()  # the local authority's keys are made once, not timed
        publish_times = []
        for i in range(20):
            vault.log.append(f"checkpoint filler {i}".encode())
            started = time.perf_counter()
            vault.publish_checkpoint()
            publish_times.append(time.perf_counter() - started)
        export_times, verify_times = [], []
        for i, package_id in enumerate(ids[:20]):
            started = time.perf_counter()
            bundle = export_bundle(vault, package_id, root / f"b{i}.zip")
            export_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            ok = all(c.ok for c in verify_bundle(bundle))
            verify_times.append(time.perf_counter() - started)
            if not ok:
                raise SystemExit(f"bundle {i} failed verification")
        append_times = []
        for i in range(2000):
            started = time.perf_counter()
            vault.log.append(f"custody event {i}".encode())
            append_times.append(time.perf_counter() - started)
        vault.close()
    seal, plain = statistics.median(seal_times), statistics.median(plain_times)
    print(f"{'':44} {'median ms':>10} {'per second':>11}")
    print(f"{'plain files + fsync (baseline)':44} {plain * 1e3:10.2f} {1 / plain:11.1f}")
    print(f"{'seal: hash, store atomically, sign, log':44} {seal * 1e3:10.2f} {1 / seal:11.1f}   {seal / plain:.2f}x")
    publish = statistics.median(publish_times)
    print(f"{'publish a checkpoint: sign, RFC 3161 stamp':44} {publish * 1e3:10.2f} {1 / publish:11.1f}")
    print(f"{'export a bundle (published checkpoint)':44} {statistics.median(export_times) * 1e3:10.2f}")
    print(f"{'verify a bundle offline (with timestamp)':44} {statistics.median(verify_times) * 1e3:10.2f}")
    append = statistics.median(append_times)
    print(f"{'log append with fsync (one leaf)':44} {append * 1e3:10.3f} {1 / append:11.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
