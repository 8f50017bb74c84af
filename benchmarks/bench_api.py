"""API latency at scale: the review queue and the case list with 100,000 cases in PostgreSQL.

The requirement: with 100,000 cases and 1,000,000 detections in PostgreSQL, the review queue
and the case list answer at p99 under 50 ms on this machine.

What it does, in one run:

1. Makes a fresh database `nonsite_bench_<random>` on the PostgreSQL server, migrates it
   (`cases.db.Database`) and bulk-loads synthetic rows with INSERT ... SELECT FROM
   generate_series: `--cases` cases over 12 cameras (two zones of different kinds each) and
   some drone findings, in a realistic mix of states (most old cases closed or rejected, the
   pending ones mostly among the newest), 1-2 evidence packages per case, `--detections`
   boxes (10 per case by default, stored next to each other as the engine files them) and
   1-3 transitions per case. The secondary indexes are dropped during the load and rebuilt
   after it from their own definitions, foreign-key triggers are off for the load
   (`session_replication_role = replica`; the rows are consistent by construction), then
   VACUUM ANALYZE, as autovacuum would leave a table that has settled. The cases a detail
   request opens (`--detail-pool`) get real manifests in the evidence store, since the detail
   reads them.
2. Serves the API as `nonsite run` does (`nonsite.run.api_app`: the run's `ApiSettings`, its
   vault, `Database(url, migrate=False)`; uvicorn with log level warning, lifespan off) in a
   separate process: `python -m uvicorn --factory benchmarks.bench_api:app_from_env`, on a
   free loopback port, one worker, then two worker processes (reported apart; `--no-workers2`
   skips them). Each server start first brings the schema up to date, as `nonsite run` does.
3. Drives it from this process with an asyncio load generator (raw HTTP/1.1 over keep-alive
   connections, one per client, each logged in as its own officer): for each client count
   (`--clients`, default 1 and 8) and endpoint, a warm-up, then `--seconds` of back-to-back
   requests per client, timing each from the first byte written to the last byte read.
   Reported per endpoint: requests, median, p90, p99, max (ms), requests/s, the API
   server's CPU per request (its processes' user + system time over the window: the figure
   a busy machine disturbs least), the load generator's, and how busy the whole machine was.
   Two rows with no case query in them give the floor: `/healthz` (no auth, no database) and
   `/api/auth/me` (the bearer token's lookup only, which every other request also pays).
4. Baseline, same run: the project's indexes for these pages dropped (ix_cases_queue,
   ix_cases_state_opened, ix_cases_camera_kind_opened, ix_detections_case_id), ANALYZE, the same measurements, then the
   indexes rebuilt. The table shows both and the ratio (baseline / indexed).
5. Each page's SQL (built like `api.views` builds it, literal parameters), with and without
   the indexes: its time from psycopg (median of 7 warm runs), and the EXPLAIN (ANALYZE,
   BUFFERS) of any slower than `--plan-ms`.

Exits 1 if, with the indexes and one worker, a review queue or case list row misses
p99 < `--target-ms` (50) at the client counts in `--gate-clients` (default 1: the latency of
one officer's request; at 8 clients one worker queues them, see RESULTS.md). The database is
dropped at the end (`--keep-db` keeps it and prints its URL).

    .venv/bin/python benchmarks/bench_api.py                                  # 100k cases: load 1.5 min, all 8 min
    .venv/bin/python benchmarks/bench_api.py --cases 5000 --seconds 2         # a smoke run, about 3 minutes
    .venv/bin/python benchmarks/bench_api.py --no-baseline --no-workers2 --out var/bench/api.json
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.client
import importlib.metadata
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # this tree's code, in this process and the server's, whatever is installed
    sys.path.insert(0, str(ROOT))
VAR_ENV = "NONSITE_BENCH_VAR"
ADMIN_URL = os.environ.get("NONSITE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench-officer-password"
BASELINE_INDEXES = ("ix_cases_queue", "ix_cases_state_opened", "ix_cases_camera_kind_opened", "ix_detections_case_id")
LOADED_TABLES = ("cases", "case_evidence", "detections", "transitions")

# (camera zone rule, case kind, labels the detector gives that kind)
KINDS = {
    "occupation": ("no_occupation", ("stall", "umbrella", "table", "goods")),
    "fume": ("fume_watch", ("smoke",)),
    "construction": ("construction_watch", ("scaffolding", "debris", "crane")),
}
KIND_PRIORITY = {"fume": 30, "construction": 20, "occupation": 10}  # as cases.casebook files them
CAMERAS = 12
DRONE_SHARE = 0.03  # findings of drone flights: no camera, a place on the ground
REPEAT_SHARE = 0.2  # repeat offences get +5 priority
RECENT_SHARE = 0.08  # the newest cases, where the review backlog is

# the state mix: older cases (mostly done) and the newest RECENT_SHARE (the live backlog)
OLD_MIX = {
    "closed": 45.0,
    "rejected": 22.0,
    "rectified": 5.0,
    "executed": 4.0,
    "served": 2.0,
    "decided": 2.0,
    "legal_reviewed": 1.5,
    "defense": 1.0,
    "pre_notice_sent": 1.5,
    "filed": 3.0,
    "escalated": 1.0,
    "warned": 4.0,
    "confirmed": 7.8,
    "pending_review": 0.2,
}
RECENT_MIX = {
    "pending_review": 36.0,
    "confirmed": 20.0,
    "rejected": 16.0,
    "warned": 14.0,
    "filed": 5.0,
    "pre_notice_sent": 3.0,
    "rectified": 3.0,
    "closed": 3.0,
}
# the step that led into each state (the third transition of a case past review)
STEP_INTO = {
    "warned": "warn",
    "rectified": "rectify",
    "escalated": "escalate",
    "filed": "file",
    "pre_notice_sent": "send_pre_notice",
    "defense": "record_defense",
    "legal_reviewed": "legal_review",
    "decided": "decide",
    "served": "serve",
    "executed": "execute",
    "closed": "close",
}
REJECT_CODES = ("false_detection", "steam", "fog", "shadow", "permitted", "duplicate", "other")


def scalar(conn: Any, query: str, params: Any = None) -> Any:
    """The first column of the first row."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def pg_conninfo(sqlalchemy_url: str) -> str:
    """The libpq URL psycopg wants, from a SQLAlchemy one."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


# --- the database ------------------------------------------------------------------------------


def create_database(admin_url: str) -> str:
    import psycopg

    name = f"nonsite_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _mix_case(mix: dict[str, float], r: str) -> str:
    """A SQL CASE picking a state from `mix` (percentages) with the uniform random `r`."""
    total = sum(mix.values())
    parts, edge = [], 0.0
    for state, share in mix.items():
        edge += share / total
        parts.append(f"WHEN {r} < {edge:.6f} THEN '{state}'")
    return "CASE " + " ".join(parts[:-1]) + f" ELSE '{next(reversed(mix))}' END"


def _pkg(case: str, k: str) -> str:
    """A 64-hex package id for evidence `k` of `case` (SQL)."""
    return f"(md5('pkg:' || {case} || ':' || {k}) || md5('pkg2:' || {case} || ':' || {k}))"


@dataclass
class Loaded:
    cameras: dict[str, list[str]]  # camera id -> kinds it watches
    officers: list[str]
    pending: int
    detail_numbers: list[str]
    states: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, str] = field(default_factory=dict)


def load(
    url: str,
    var: Path,
    *,
    cases: int,
    detections: int,
    evidence_per_case: float,
    days: float,
    officers: int,
    detail_pool: int,
) -> Loaded:
    """Migrate, seed accounts, cameras and zones, then bulk-load the case tables."""
    import psycopg

    from api.accounts import create_user, seed_accounts
    from api.settings import ApiSettings
    from cases.casebook import SYSTEM_USER
    from cases.db import Database
    from evidence.canonical import canonical_json
    from evidence.package import PackageFile, build_manifest
    from evidence.vault import Vault

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    db = Database(url)  # migrates
    timings["migrate"] = time.perf_counter() - t0

    t = time.perf_counter()
    settings = ApiSettings()
    seed_accounts(db, admin_password=settings.admin_password.get_secret_value(), development=settings.development)
    names = [f"bench-officer-{i}" for i in range(officers)]
    for name in names:
        create_user(db, username=name, role="officer", password=PASSWORD)
    db.close()
    timings["accounts"] = time.perf_counter() - t

    kinds = list(KINDS)
    cameras = {f"cam-{i:02d}": [kinds[i % 3], kinds[(i + 1) % 3]] for i in range(CAMERAS)}
    recent_from = int(cases * (1 - RECENT_SHARE))
    step_s = days * 86400 / max(cases, 1)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days)  # to about now
    with psycopg.connect(pg_conninfo(url)) as conn:
        t = time.perf_counter()
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SET session_replication_role = replica")  # no FK triggers while loading
        conn.execute(
            f"INSERT INTO users (username, display_name, role, active, created_at) VALUES "
            f"('{SYSTEM_USER}', 'nonsite engine', 'system', true, now()) ON CONFLICT DO NOTHING"
        )
        for i, (camera, watched) in enumerate(cameras.items()):
            conn.execute(
                "INSERT INTO cameras (id, name, lat, lon, created_at) VALUES (%s, %s, %s, %s, %s)",
                (camera, f"Camera {i}", 30.25 + i * 0.001, 120.16 + i * 0.001, start),
            )
            for kind in watched:
                conn.execute(
                    "INSERT INTO zones (camera_id, name, rule, polygon) VALUES (%s, %s, %s, %s)",
                    (camera, f"{kind}-zone", KINDS[kind][0], json.dumps([[8, 8], [1900, 8], [1900, 1070], [8, 1070]])),
                )
        conn.execute(
            "CREATE TEMP TABLE bench_zones AS SELECT (row_number() OVER (ORDER BY z.id) - 1)::int AS idx, "
            "z.id AS zone_id, z.camera_id, split_part(z.name, '-', 1) AS kind FROM zones z"
        )
        zones = scalar(conn, "SELECT count(*) FROM bench_zones")
        system_id = scalar(conn, "SELECT id FROM users WHERE username = %s", (SYSTEM_USER,))
        officer_ids = [r[0] for r in conn.execute("SELECT id FROM users WHERE role = 'officer' ORDER BY id")]
        # the paths each state's cases took: (state, seq, action, from, to, by the engine)
        paths = []
        for state in set(OLD_MIX) | set(RECENT_MIX):
            paths.append((state, 1, "queue", "detected", "pending_review", True))
            if state == "pending_review":
                continue
            reviewed = "rejected" if state == "rejected" else "confirmed"
            paths.append(
                (state, 2, "reject" if reviewed == "rejected" else "confirm", "pending_review", reviewed, False)
            )
            if state in STEP_INTO:
                source = "warned" if state in ("rectified", "escalated") else "confirmed"
                paths.append((state, 3, STEP_INTO[state], source, state, state in ("rectified", "closed")))
        conn.execute(
            "CREATE TEMP TABLE bench_paths (state text, seq int, action text, from_state text, "
            "to_state text, by_system bool)"
        )
        with conn.cursor().copy("COPY bench_paths FROM STDIN") as copy:
            for row in paths:
                copy.write_row(row)
        # secondary indexes off during the load, rebuilt after it from their own definitions
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            (list(LOADED_TABLES),),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.commit()
        timings["seed"] = time.perf_counter() - t

        t = time.perf_counter()
        conn.execute("SELECT setseed(0.17)")
        state_sql = (
            f"CASE WHEN b.g > {recent_from} THEN {_mix_case(RECENT_MIX, 'b.r_state')} "
            f"ELSE {_mix_case(OLD_MIX, 'b.r_state')} END"
        )
        conn.execute(
            f"""
            INSERT INTO cases (id, number, agency, kind, state, camera_id, zone_id, party_id, lat, lon, radius_m,
                               first_seen_at, last_seen_at, opened_at, closed_at, outcome, previous_case_id,
                               priority, version)
            SELECT s.g, 'CG-' || to_char(s.opened, 'YYYY') || '-' || lpad(s.g::text, 6, '0'), 'CG',
                   coalesce(z.kind, 'construction'), s.state, z.camera_id, z.zone_id, NULL,
                   CASE WHEN z.zone_id IS NULL THEN 30.2 + s.r_zone * 0.1 END,
                   CASE WHEN z.zone_id IS NULL THEN 120.1 + s.r_rep * 0.1 END,
                   CASE WHEN z.zone_id IS NULL THEN 25.0 END,
                   s.opened - s.dur - interval '30 seconds', s.opened - interval '30 seconds', s.opened,
                   CASE WHEN s.state IN ('closed', 'rejected')
                        THEN s.opened + interval '1 day' * (1 + s.r_done * 40) END,
                   CASE WHEN s.state = 'rejected'
                        THEN (ARRAY{list(REJECT_CODES)!r})[1 + mod(s.g, {len(REJECT_CODES)})]
                        WHEN s.state = 'closed' THEN CASE WHEN s.r_done < 0.7 THEN 'rectified' ELSE 'decided' END END,
                   NULL,
                   CASE coalesce(z.kind, 'construction') WHEN 'fume' THEN {KIND_PRIORITY["fume"]}
                        WHEN 'construction' THEN {KIND_PRIORITY["construction"]} ELSE {KIND_PRIORITY["occupation"]} END
                     + CASE WHEN s.r_rep < {REPEAT_SHARE} THEN 5 ELSE 0 END,
                   1 + (SELECT count(*) FROM bench_paths p WHERE p.state = s.state)
            FROM (SELECT b.*, {state_sql} AS state FROM (
                    SELECT g, random() AS r_state, random() AS r_zone, random() AS r_rep, random() AS r_done,
                           %(start)s::timestamptz + (g - 1) * %(step)s * interval '1 second'
                             + random() * interval '60 seconds' AS opened,
                           interval '1 second' * (60 + random() * 1800) AS dur
                    FROM generate_series(1, %(n)s) g) b) s
            LEFT JOIN bench_zones z
              ON s.r_zone >= {DRONE_SHARE} AND z.idx = floor((s.r_zone - {DRONE_SHARE}) / (1 - {DRONE_SHARE})
                                                            * {zones})::int
        """,
            {"start": start, "step": step_s, "n": cases},
        )
        conn.commit()
        timings["cases"] = time.perf_counter() - t

        t = time.perf_counter()
        extra = max(0.0, min(1.0, evidence_per_case - 1.0))
        conn.execute(f"""
            INSERT INTO case_evidence (case_id, package_id, role, observed_from, observed_to, score, added_at)
            SELECT c.id, {_pkg("c.id", "k")}, CASE WHEN k = 1 OR c.state NOT IN ('warned', 'rectified', 'escalated')
                                                    THEN 'detection' ELSE 'recheck' END,
                   c.first_seen_at + (k - 1) * interval '1 day', c.last_seen_at + (k - 1) * interval '1 day',
                   0.5 + random() * 0.5, c.opened_at + (k - 1) * interval '1 day'
            FROM cases c CROSS JOIN LATERAL
                 generate_series(1, CASE WHEN mod(c.id::bigint * 7919, 1000) < {extra * 1000:.0f} THEN 2 ELSE 1 END) k
        """)
        conn.commit()
        timings["case_evidence"] = time.perf_counter() - t

        t = time.perf_counter()
        labels = {kind: list(v[1]) for kind, v in KINDS.items()}
        label_sql = (
            "CASE c.kind "
            + " ".join(f"WHEN '{kind}' THEN (ARRAY{ls!r})[1 + mod(g, {len(ls)})]" for kind, ls in labels.items())
            + " END"
        )
        conn.execute(
            f"""
            INSERT INTO detections (case_id, package_id, camera_id, kind, label, frame, at, x1, y1, x2, y2, score,
                                    track_id, corrected_label, corrected_box, corrected_by, corrected_at)
            SELECT c.id, {_pkg("c.id", "1")}, c.camera_id, c.kind, {label_sql}, mod(g, 20) * 5,
                   c.first_seen_at + mod(g, 20) * interval '500 milliseconds',
                   x, y, x + 40 + w, y + 30 + w, 0.3 + random() * 0.7, (g / 2)::int,
                   CASE WHEN random() < 0.02 THEN 'other' END, NULL, NULL, NULL
            FROM (SELECT g, 1 + ((g - 1)::bigint * %(n)s) / %(d)s AS case_id, random() * 1700 AS x,
                         random() * 900 AS y, random() * 200 AS w FROM generate_series(1, %(d)s) g) d
            JOIN cases c ON c.id = d.case_id
        """,
            {"n": cases, "d": detections},
        )
        conn.execute(
            "UPDATE detections SET corrected_by = 'bench-officer-0', corrected_at = at + interval '1 day' "
            "WHERE corrected_label IS NOT NULL"
        )
        conn.commit()
        timings["detections"] = time.perf_counter() - t

        t = time.perf_counter()
        officer_array = "ARRAY[" + ",".join(map(str, officer_ids)) + "]"
        conn.execute(f"""
            INSERT INTO transitions (case_id, seq, action, from_state, to_state, actor_id, at, reason, reason_code,
                                     attachments, record, record_sha256, key_id, signature, leaf_index)
            SELECT x.case_id, x.seq, x.action, x.from_state, x.to_state, x.actor_id, x.at, '', x.reason_code,
                   x.attachments, x.record, encode(sha256(convert_to(x.record, 'UTF8')), 'hex'), 'bench-key',
                   md5(x.record) || md5(x.record || '1') || md5(x.record || '2') || md5(x.record || '3'), NULL
            FROM (
                SELECT t.*, json_build_object('type', 'nonsite.case.transition/1', 'agency', 'CG', 'case', t.number,
                           'seq', t.seq, 'action', t.action, 'from', t.from_state, 'to', t.to_state,
                           'actor', u.username, 'role', u.role, 'at', t.at, 'reason', '',
                           'reason_code', t.reason_code, 'evidence', t.attachments, 'previous', NULL)::text AS record
                FROM (
                    SELECT c.id AS case_id, c.number, p.seq, p.action, p.from_state, p.to_state,
                           CASE WHEN p.by_system THEN {system_id}
                                ELSE ({officer_array})[1 + mod(c.id, {len(officer_ids)})] END AS actor_id,
                           c.opened_at + (p.seq - 1) * interval '3 hours' AS at,
                           CASE WHEN p.action = 'reject' THEN c.outcome END AS reason_code,
                           CASE WHEN p.seq = 1 THEN json_build_array({_pkg("c.id", "1")})
                                ELSE '[]'::json END AS attachments
                    FROM cases c JOIN bench_paths p ON p.state = c.state) t
                JOIN users u ON u.id = t.actor_id) x
        """)
        conn.commit()
        timings["transitions"] = time.perf_counter() - t

        t = time.perf_counter()
        for _, definition in indexes:
            conn.execute(definition)
        for table in ("cases", "case_evidence", "detections", "transitions", "users", "zones"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.execute("SET session_replication_role = DEFAULT")
        conn.commit()
        timings["indexes"] = time.perf_counter() - t

        # the cases a detail request opens get real manifests: the detail reads them from the store
        t = time.perf_counter()
        vault = Vault(var / "evidence", var / "keys")
        step = max(1, cases // max(detail_pool, 1))
        pool_ids = list(range(step // 2 + 1, cases + 1, step))[:detail_pool]
        rows = conn.execute(
            "SELECT e.id, e.package_id, c.number, c.kind, c.camera_id, e.observed_from, e.observed_to, e.score "
            "FROM case_evidence e JOIN cases c ON c.id = e.case_id WHERE c.id = ANY(%s) ORDER BY e.id",
            (pool_ids,),
        ).fetchall()
        for evidence_id, old, number, kind, camera, seen_from, seen_to, score in rows:
            finding = {
                "device": {"id": camera} if camera else {"id": "drone-1"},
                "place": {},
                "capture": {
                    "started_at": seen_from.isoformat(),
                    "ended_at": seen_to.isoformat(),
                    "clock_source": "ntp",
                },
                "violation": {
                    "kind": kind,
                    "zone": f"{kind}-zone",
                    "case": number,
                    "score": score,
                    "boxes": [[20.0, 20.0, 80.0, 70.0]],
                },
                "model": {"sha256": "0" * 64, "name": "starter"},
                "rule": {"name": KINDS[kind][0]},
                "engine": {"name": "nonsite", "version": "bench"},
            }
            files = [
                PackageFile(f"keyframe-{i}.png", f"{number}/{evidence_id}/{i}".encode(), "image/png", "keyframe")
                for i in (1, 2)
            ]
            files.append(PackageFile("clip.mp4", f"{number}/{evidence_id}/clip".encode(), "video/mp4", "clip"))
            for f in files:
                vault.store.put(f.data)
            digest = vault.store.put(canonical_json(build_manifest(finding, files)))
            conn.execute("UPDATE case_evidence SET package_id = %s WHERE id = %s", (digest, evidence_id))
            conn.execute("UPDATE detections SET package_id = %s WHERE package_id = %s", (digest, old))
        vault.close()
        conn.commit()
        timings["detail manifests"] = time.perf_counter() - t

    with psycopg.connect(pg_conninfo(url), autocommit=True) as conn:
        t = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        timings["vacuum analyze"] = time.perf_counter() - t
        counts = {
            table: scalar(conn, f"SELECT count(*) FROM {table}")
            for table in ("cases", "case_evidence", "detections", "transitions", "users", "cameras", "zones")
        }
        sizes = {
            table: scalar(conn, "SELECT pg_size_pretty(pg_total_relation_size(%s))", (table,))
            for table in LOADED_TABLES
        }
        sizes["database"] = scalar(conn, "SELECT pg_size_pretty(pg_database_size(current_database()))")
        pending = scalar(conn, "SELECT count(*) FROM cases WHERE state = 'pending_review'")
        numbers = [r[0] for r in conn.execute("SELECT number FROM cases WHERE id = ANY(%s) ORDER BY id", (pool_ids,))]
        states = [r[0] for r in conn.execute("SELECT DISTINCT state FROM cases ORDER BY 1")]
    timings["total"] = time.perf_counter() - t0
    return Loaded(cameras, names, pending, numbers, states, timings, counts, sizes)


def index_definitions(url: str, names: Sequence[str]) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(pg_conninfo(url)) as conn:
        rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)", (list(names),))
        found: dict[str, str] = dict(rows.fetchall())
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"the migrations did not make the indexes {missing}; the baseline cannot drop them")
    return [(n, found[n]) for n in names]


def set_indexes(url: str, definitions: Sequence[tuple[str, str]], *, present: bool) -> float:
    """Drop or (re)create the baseline's indexes, then ANALYZE; returns the seconds it took."""
    import psycopg

    t = time.perf_counter()
    with psycopg.connect(pg_conninfo(url), autocommit=True) as conn:
        for name, definition in definitions:
            conn.execute(definition if present else f'DROP INDEX IF EXISTS "{name}"')
        conn.execute("ANALYZE cases")
        conn.execute("ANALYZE detections")
    return time.perf_counter() - t


# --- the server --------------------------------------------------------------------------------


def app_from_env() -> Any:
    """The API as `nonsite run` builds it, for uvicorn's --factory (in the server process)."""

    from cases.db import Database
    from nonsite import run
    from pipelines.settings import RunConfig, Runtime

    runtime = Runtime(var=Path(os.environ[VAR_ENV]))
    config = RunConfig.model_construct(runtime=runtime, cameras=())  # no cameras, no monitors: the API only
    db = Database(runtime.database_url, migrate=False)
    monitors, _ = run.start_monitors(config, db)
    return run.api_app(config, db, monitors)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m uvicorn ... --factory benchmarks.bench_api:app_from_env` on a free loopback port."""

    def __init__(self, url: str, var: Path, workers: int) -> None:
        from cases.db import Database

        # as `nonsite run` prepares the database before it serves: other work may have added a
        # migration to the tree since the load, and the server refuses a schema behind its code
        Database(url).close()
        self.port = free_port()
        self.workers = workers
        env = {**os.environ, "NONSITE_DATABASE_URL": url, VAR_ENV: str(var), "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.bench_api:app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--lifespan",
                "off",
            ],
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"the API server exited with {self.process.returncode} before it answered")
            try:
                status, _ = request("GET", "127.0.0.1", self.port, "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the API server did not answer /healthz within 60 s")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        """The server process and its descendants (uvicorn's worker processes)."""
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                todo += [int(c) for c in task.read_text().split()]
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def request(
    method: str, host: str, port: int, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, data
    finally:
        conn.close()


def log_in(port: int, username: str) -> str:
    status, body = request("POST", "127.0.0.1", port, "/api/auth/login", {"username": username, "password": PASSWORD})
    if status != 200:
        raise SystemExit(f"logging in as {username} answered {status}: {body}")
    return str(body["access_token"])


# --- the load generator ------------------------------------------------------------------------


class BadAnswerError(Exception):
    pass


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 answer: (status, body, whether the server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        body = b"".join(chunks)
    else:
        body = await reader.read()
    return status, body, headers.get("connection", "").lower() != "close"


async def _client(
    port: int,
    token: str,
    next_path: Callable[[], str],
    warm_until: float,
    stop_at: float,
    latencies: list[float],
    sizes: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                break
            path = next_path()
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            status, body, keep = await _read_answer(reader)
            ended = time.perf_counter()
            if status != 200:
                raise BadAnswerError(f"GET {path} answered {status}: {body[:300]!r}")
            if started >= warm_until:
                latencies.append(ended - started)
                sizes.append(len(body))
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


@dataclass
class Measured:
    n: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    rps: float
    bytes_median: int
    server_cpu_ms: float  # CPU of the API server process(es) per request
    client_cpu_ms: float  # CPU of this process (the load generator) per request
    machine_busy: float  # share of all CPUs busy during the window (anyone's work)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (p99 of 100 samples is the 99th)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-q * len(sorted_values) // 1)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def process_cpu(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) the processes have used so far."""
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_busy() -> tuple[float, float]:
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def drive(
    port: int,
    tokens: Sequence[str],
    make_path: Callable[[random.Random], str],
    clients: int,
    warmup_s: float,
    seconds: float,
    seed: int,
    server_pids: Sequence[int],
) -> Measured:
    latencies: list[float] = []
    sizes: list[int] = []

    async def run() -> tuple[float, float, float, float]:
        now = time.perf_counter()
        warm_until, stop_at = now + warmup_s, now + warmup_s + seconds
        tasks = []
        for i in range(clients):
            rng = random.Random(seed * 1000 + i)
            tasks.append(
                _client(
                    port,
                    tokens[i % len(tokens)],
                    functools.partial(make_path, rng),
                    warm_until,
                    stop_at,
                    latencies,
                    sizes,
                )
            )

        async def at_warm() -> tuple[float, float, float, float]:
            await asyncio.sleep(max(0.0, warm_until - time.perf_counter()))
            return (*cpu_busy(), process_cpu(server_pids), time.process_time())

        marks = asyncio.ensure_future(at_warm())
        await asyncio.gather(marks, *tasks)
        busy0, total0, server0, client0 = marks.result()
        busy1, total1 = cpu_busy()
        server1, client1 = process_cpu(server_pids), time.process_time()
        return (
            time.perf_counter() - warm_until,
            (busy1 - busy0) / max(total1 - total0, 1e-9),
            server1 - server0,
            client1 - client0,
        )

    elapsed, busy, server_cpu, client_cpu = asyncio.run(run())
    ordered = sorted(latencies)
    ms = [v * 1000 for v in ordered]
    return Measured(
        n=len(ms),
        median_ms=statistics.median(ms) if ms else float("nan"),
        p90_ms=quantile(ms, 0.90),
        p99_ms=quantile(ms, 0.99),
        max_ms=ms[-1] if ms else float("nan"),
        rps=len(ms) / elapsed if elapsed > 0 else float("nan"),
        bytes_median=int(statistics.median(sizes)) if sizes else 0,
        server_cpu_ms=server_cpu * 1000 / max(len(ms), 1),
        client_cpu_ms=client_cpu * 1000 / max(len(ms), 1),
        machine_busy=busy,
    )


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    make_path: Callable[[random.Random], str]
    gated: bool  # the requirement's pages: review queue and case list


def endpoints(loaded: Loaded, deep: int) -> list[Endpoint]:
    cameras = sorted(loaded.cameras)
    kinds = list(KINDS)

    def watched(rng: random.Random) -> str:
        camera = rng.choice(cameras)
        return f"/api/cases?limit=50&camera={camera}&kind={rng.choice(loaded.cameras[camera])}"

    def unwatched(rng: random.Random) -> str:
        camera = rng.choice(cameras)
        other = next(k for k in kinds if k not in loaded.cameras[camera])
        return f"/api/cases?limit=50&camera={camera}&kind={other}"

    return [
        Endpoint("healthz", "/healthz (no auth, no DB): floor", lambda _: "/healthz", False),
        Endpoint("me", "/api/auth/me (token lookup only)", lambda _: "/api/auth/me", False),
        Endpoint("review", "review queue, first page (limit 20)", lambda _: "/api/review?limit=20", True),
        Endpoint("review_deep", f"review queue, offset {deep}", lambda _: f"/api/review?limit=20&offset={deep}", True),
        Endpoint("cases", "case list, first page (limit 50)", lambda _: "/api/cases?limit=50", True),
        Endpoint(
            "cases_state",
            "case list, ?state= (each state in turn)",
            lambda rng: f"/api/cases?limit=50&state={rng.choice(loaded.states)}",
            True,
        ),
        Endpoint("cases_camera_kind", "case list, ?camera=&kind= (a kind it watches)", watched, True),
        Endpoint("cases_camera_none", "case list, ?camera=&kind= (a kind it doesn't: 0 rows)", unwatched, True),
        Endpoint(
            "detail",
            f"case detail ({len(loaded.detail_numbers)} cases in turn)",
            lambda rng: f"/api/cases/{rng.choice(loaded.detail_numbers)}",
            False,
        ),
    ]


def measure(
    url: str,
    var: Path,
    loaded: Loaded,
    points: Sequence[Endpoint],
    clients: Sequence[int],
    *,
    workers: int,
    warmup_s: float,
    seconds: float,
    phase: str,
) -> dict[tuple[str, int], Measured]:
    server = Server(url, var, workers)
    results: dict[tuple[str, int], Measured] = {}
    try:
        tokens = [log_in(server.port, name) for name in loaded.officers[: max(clients)]]
        load0 = os.getloadavg()
        print(f"\n[{phase}] uvicorn, {workers} worker(s), port {server.port}; load average {load0[0]:.2f}", flush=True)
        print(
            "| endpoint | clients | requests | median | p90 | p99 | max | req/s | server CPU ms/req "
            "| load generator CPU ms/req | body kB | machine busy |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        pids = server.pids()
        for c in clients:
            for i, point in enumerate(points):
                m = drive(server.port, tokens, point.make_path, c, warmup_s, seconds, seed=i, server_pids=pids)
                results[(point.key, c)] = m
                print(
                    f"| {point.label} | {c} | {m.n} | {m.median_ms:.2f} | {m.p90_ms:.2f} | {m.p99_ms:.2f} | "
                    f"{m.max_ms:.1f} | {m.rps:.0f} | {m.server_cpu_ms:.1f} | {m.client_cpu_ms:.2f} | "
                    f"{m.bytes_median / 1000:.1f} | "
                    f"{m.machine_busy:.0%} |",
                    flush=True,
                )
        load1 = os.getloadavg()
        print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    finally:
        server.stop()
    return results


# --- query plans -------------------------------------------------------------------------------


def page_queries(url: str, loaded: Loaded, deep: int) -> list[tuple[str, str]]:
    """The SQL each page runs (as `api.views` builds it), with literal parameters."""
    from sqlalchemy import Select, create_engine, func, select
    from sqlalchemy.dialects import postgresql

    from api.views import REVIEW_STATE, case_filters
    from cases.models import Case, CaseEvidence, Detection, Transition

    def sql(stmt: Any) -> str:
        return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))

    def count(q: Select[Any]) -> Any:
        return select(func.count()).select_from(q.order_by(None).subquery())

    engine = create_engine(url)
    out: list[tuple[str, str]] = []
    try:
        with engine.connect() as c:
            review = select(Case).where(Case.state == REVIEW_STATE)
            review_order = (Case.priority.desc(), Case.opened_at, Case.id)
            out.append(("review: count", sql(count(review))))
            for label, offset in (("first page", 0), (f"offset {deep}", deep)):
                page = review.order_by(*review_order).offset(offset).limit(20)
                out.append((f"review {label}: page", sql(page)))
                ids = [r.id for r in c.execute(page)] or [0]
                out.append(
                    (
                        f"review {label}: detections",
                        sql(select(Detection).where(Detection.case_id.in_(ids)).order_by(Detection.id)),
                    )
                )
                out.append(
                    (
                        f"review {label}: evidence counts",
                        sql(
                            select(CaseEvidence.case_id, func.count())
                            .where(CaseEvidence.case_id.in_(ids))
                            .group_by(CaseEvidence.case_id)
                        ),
                    )
                )
            camera = sorted(loaded.cameras)[0]
            kind = loaded.cameras[camera][0]
            unwatched = next(k for k in KINDS if k not in loaded.cameras[camera])
            for label, filters in (
                ("case list", {}),
                ("case list state=confirmed", {"state": "confirmed"}),
                ("case list state=defense", {"state": "defense"}),
                (f"case list camera={camera} kind={kind}", {"camera": camera, "kind": kind}),
                (f"case list camera={camera} kind={unwatched} (0 rows)", {"camera": camera, "kind": unwatched}),
            ):
                where = case_filters(
                    camera=filters.get("camera"),
                    kind=filters.get("kind"),
                    state=filters.get("state"),
                    since=None,
                    until=None,
                )
                q = select(Case).where(*where)
                out.append((f"{label}: count", sql(count(q))))
                out.append((f"{label}: page", sql(q.order_by(Case.opened_at.desc(), Case.id.desc()).limit(50))))
            number = loaded.detail_numbers[len(loaded.detail_numbers) // 2]
            case_id = c.execute(select(Case.id).where(Case.number == number)).scalar_one()
            out.append(("detail: case by number", sql(select(Case).where(Case.number == number))))
            out.append(
                (
                    "detail: transitions",
                    sql(select(Transition).where(Transition.case_id == case_id).order_by(Transition.seq)),
                )
            )
            out.append(
                (
                    "detail: detections",
                    sql(select(Detection).where(Detection.case_id == case_id).order_by(Detection.id)),
                )
            )
    finally:
        engine.dispose()
    return out


def explain(url: str, queries: Sequence[tuple[str, str]], plan_ms: float, phase: str) -> dict[str, float]:
    """Time each query as the client sees it (median of 7 after one unmeasured run) and show the
    EXPLAIN (ANALYZE, BUFFERS) of those slower than `plan_ms` (its own times include the
    instrumentation's overhead, which on a VM can be several times the query's)."""
    import psycopg

    times: dict[str, float] = {}
    print(f"\n[{phase}] each page's SQL, median of 7 warm runs from psycopg, ms (plans over {plan_ms:g} ms)")
    with psycopg.connect(pg_conninfo(url), autocommit=True) as conn:
        for label, query in queries:
            runs = []
            for i in range(8):
                started = time.perf_counter()
                conn.execute(query).fetchall()
                if i:
                    runs.append((time.perf_counter() - started) * 1000)
            times[label] = statistics.median(runs)
            print(f"  {times[label]:8.2f} ms  {label}")
            if times[label] > plan_ms:
                print("      " + query.replace("\n", " "))
                for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query):
                    print("      | " + r[0])
    return times


# --- the run -----------------------------------------------------------------------------------


def environment(url: str) -> list[str]:
    import psycopg

    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    with psycopg.connect(pg_conninfo(url)) as conn:
        version = scalar(conn, "SHOW server_version")
        settings = {
            name: scalar(conn, f"SHOW {name}")
            for name in (
                "shared_buffers",
                "work_mem",
                "effective_cache_size",
                "random_page_cost",
                "jit",
                "max_parallel_workers_per_gather",
            )
        }
    versions = ", ".join(
        f"{p} {importlib.metadata.version(p)}"
        for p in ("fastapi", "starlette", "uvicorn", "pydantic", "sqlalchemy", "psycopg")
    )
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return [
        f"machine: {model!r}, {os.cpu_count()} logical CPUs, {mem_gb:.0f} GB, {platform.system()} {platform.machine()}",
        f"python {platform.python_version()}; {versions}",
        f"PostgreSQL {version} on 127.0.0.1 (same machine); " + ", ".join(f"{k}={v}" for k, v in settings.items()),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--detections", type=int, default=None, help="default: 10 per case")
    parser.add_argument("--evidence-per-case", type=float, default=1.5, help="1.0-2.0 packages per case on average")
    parser.add_argument("--days", type=float, default=365.0, help="cases are opened over this many days")
    parser.add_argument("--clients", default="1,8", help="concurrent clients, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per endpoint and client count")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each")
    parser.add_argument("--detail-pool", type=int, default=200, help="cases the detail requests open")
    parser.add_argument("--target-ms", type=float, default=50.0)
    parser.add_argument("--gate-clients", default="1", help="client counts the p99 target applies to (default 1)")
    parser.add_argument("--plan-ms", type=float, default=5.0, help="print whole plans of queries slower than this")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without the indexes")
    parser.add_argument("--no-workers2", action="store_true", help="skip the run with two uvicorn workers")
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument("--keep-db", action="store_true", help="keep the database (its URL is printed)")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="a SQLAlchemy URL of the server (any database)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    detections = args.detections if args.detections is not None else 10 * args.cases
    clients = [int(c) for c in args.clients.split(",")]
    gate_clients = [int(c) for c in args.gate_clients.split(",") if int(c) in clients]

    started = datetime.now(UTC)
    print(
        f"API benchmark, {started.isoformat(timespec='seconds')}, load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout
    if head.strip():
        print(
            f"tree: {ROOT} at {head.strip()}" + (f", {len(dirty.splitlines())} files changed or new" if dirty else "")
        )
    else:
        print(f"tree: {ROOT} (not a git checkout)")
    url = create_database(args.admin_url)
    print(f"database: {url.rsplit('/', 1)[1]}")
    results: dict[str, Any] = {"started": started.isoformat(), "argv": sys.argv, "phases": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="nonsite-bench-api-") as tmp:
            var = Path(tmp)
            for line in environment(url):
                print(line)
            print(f"\nloading {args.cases:,} cases, {detections:,} detections ...", flush=True)
            loaded = load(
                url,
                var,
                cases=args.cases,
                detections=detections,
                evidence_per_case=args.evidence_per_case,
                days=args.days,
                officers=max(clients),
                detail_pool=args.detail_pool,
            )
            print(
                "rows: "
                + ", ".join(f"{t} {n:,}" for t, n in loaded.counts.items())
                + f"; pending_review {loaded.pending:,}"
            )
            print("sizes (with indexes): " + ", ".join(f"{t} {s}" for t, s in loaded.sizes.items()))
            print("load seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in loaded.timings.items()))
            results["rows"], results["load_s"] = loaded.counts, loaded.timings
            deep = min(2000, max(0, loaded.pending - 20))
            points = endpoints(loaded, deep)
            definitions = index_definitions(url, BASELINE_INDEXES)
            queries = page_queries(url, loaded, deep) if not args.no_explain else []

            phases: list[tuple[str, int, bool]] = [("indexed", 1, True)]
            if not args.no_workers2:
                phases.append(("indexed, 2 workers", 2, True))
            if not args.no_baseline:
                phases.append(("baseline: indexes dropped", 1, False))
            measured: dict[str, dict[tuple[str, int], Measured]] = {}
            plans: dict[str, dict[str, float]] = {}
            for phase, workers, indexed in phases:
                if not indexed:
                    took = set_indexes(url, definitions, present=False)
                    print(f"\ndropped {', '.join(BASELINE_INDEXES)} and analyzed ({took:.1f} s)")
                try:
                    measured[phase] = measure(
                        url,
                        var,
                        loaded,
                        points,
                        clients,
                        workers=workers,
                        warmup_s=args.warmup,
                        seconds=args.seconds,
                        phase=phase,
                    )
                    if queries and workers == 1:
                        plans[phase] = explain(url, queries, args.plan_ms, phase)
                finally:
                    if not indexed:
                        took = set_indexes(url, definitions, present=True)
                        print(f"\nrecreated {', '.join(BASELINE_INDEXES)} and analyzed ({took:.1f} s)")

            base, ours = "baseline: indexes dropped", "indexed"
            if base in measured:
                print("\nindexed against baseline (indexes dropped), one worker; ms; × = baseline / indexed")
                print(
                    "| endpoint | clients | indexed median | indexed p99 | baseline median | baseline p99 | "
                    "× median | × p99 |"
                )
                print("|---|---|---|---|---|---|---|---|")
                for c in clients:
                    for p in points:
                        a, b = measured[ours][(p.key, c)], measured[base][(p.key, c)]
                        print(
                            f"| {p.label} | {c} | {a.median_ms:.2f} | {a.p99_ms:.2f} | {b.median_ms:.2f} | "
                            f"{b.p99_ms:.2f} | {b.median_ms / a.median_ms:.2f}× | {b.p99_ms / a.p99_ms:.2f}× |"
                        )

            failures = [
                f"{p.label}, {c} client(s): p99 {measured[ours][(p.key, c)].p99_ms:.1f} ms"
                for c in gate_clients
                for p in points
                if p.gated and measured[ours][(p.key, c)].p99_ms >= args.target_ms
            ]
            print(
                f"\nfinished {datetime.now(UTC).isoformat(timespec='seconds')}, load average "
                + " ".join(f"{x:.2f}" for x in os.getloadavg())
            )
            verdict = "FAIL" if failures else "PASS"
            print(
                f"target: review queue and case list p99 < {args.target_ms:g} ms with the indexes, one worker, "
                f"at {', '.join(map(str, gate_clients))} client(s): {verdict}"
            )
            for f in failures:
                print(f"  missed: {f}")
            results["phases"] = {
                phase: {f"{key} x{c}": vars(m) for (key, c), m in per.items()} for phase, per in measured.items()
            }
            results["plans_ms"], results["verdict"] = plans, verdict
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2))
            return 1 if failures else 0
    finally:
        if args.keep_db:
            print(f"kept the database: {url}")
        else:
            drop_database(args.admin_url, url)


if __name__ == "__main__":
    sys.exit(main())
