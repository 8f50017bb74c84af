"""`nonsite run` as a newcomer runs it: the demo cameras file cases, SIGTERM stops it cleanly;
and a broken run file is refused with the line that is wrong."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cases.db import Database
from cases.models import Case
from evidence.bundle import export_bundle, verify_bundle
from evidence.vault import Vault
from nonsite.cli import main
from pipelines.staging import StagingArea

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_files_cases_while_it_runs_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NONSITE_DATABASE_URL", "NONSITE_RUNTIME")}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "nonsite.cli", "run", "--port", "0"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()

    def wait_for_line(check: Callable[[str], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {what} within {timeout:g} s:\n" + "".join(seen)) from None
            if line is None:
                raise AssertionError(f"nonsite run ended before {what}:\n" + "".join(seen))
            seen.append(line)
            if check(line):
                return

    try:
        wait_for_line(lambda line: line.startswith("case ") and " filed: " in line, 150, "case filed")
        (camera_worker,) = children(process.pid, "worker cameras")
        os.kill(camera_worker, signal.SIGKILL)  # a camera worker dies: the supervisor starts another
        wait_for_line(lambda line: "restarting it" in line, 30, "restart")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    rest = []
    while (line := lines.get(timeout=10)) is not None:
        rest.append(line)
    output = "".join(seen + rest)
    assert process.returncode == 0, output
    assert "console and API at http://" in output
    assert "SIGTERM, stopping" in output
    assert "cameras-0 exited with status -9; restarting it (restart 1)" in output
    assert (tmp_path / "var" / "demo-run.yaml").is_file(), "the demo's run file is there to read and edit"
    var = tmp_path / "var"
    assert StagingArea(var / "staging").pending() == [], "everything the cameras handed over was filed"
    db = Database(f"sqlite:///{var / 'nonsite.db'}", migrate=False)
    vault = Vault(var / "evidence", var / "keys")
    try:
        with db.session() as s:
            cases = s.query(Case).all()
            assert cases and all(c.state == "pending_review" for c in cases)
            package_id = cases[0].evidence[0].package_id
        bundle = export_bundle(vault, package_id, tmp_path / "bundle.zip")
        assert all(check.ok for check in verify_bundle(bundle))
    finally:
        vault.close()
        db.close()
    health = sorted(p.stem for p in (var / "health").glob("*.json"))
    assert health == ["demo-construction-site", "demo-restaurant-street", "demo-sidewalk-stall"]


def children(pid: int, command: str) -> list[int]:
    """Pids of the child processes of `pid` whose command line holds `command`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and command in cmdline:
            found.append(int(proc.name))
    return found


def test_a_run_file_with_a_mistyped_key_is_refused_with_its_line(tmp_path: Path, capsys) -> None:
    run_file = tmp_path / "run.yaml"
    run_file.write_text(
        "runtime:\n  var: var\n  camera_proceses: 2\ncameras:\n  - id: a\n    name: A\n    source: rtsp://x/y\n",
        encoding="utf-8",
    )
    assert main(["run", "--config", str(run_file)]) == 1
    err = capsys.readouterr().err
    assert "runtime.camera_proceses (line 3): unknown key; did you mean 'camera_processes'?" in err
