"""The Celery app and its tasks: thin, taking ids, safe to run twice.

Tasks are acknowledged late and given back when their worker dies, so a killed worker's
task runs again elsewhere; each is idempotent, so running again never files a case twice:
sealing is deterministic in a staged item's content (the same package, logged once under
the vault's sealing lock) and filing is idempotent on the package id.

The broker is configured from `Runtime`: Redis or RabbitMQ in the distributed mode, and in
the embedded default kombu's file transport under the state folder, which needs no
server. The file transport cannot give a message back when a worker dies mid-task; the
staged item it named is still pending, and camera workers send every item still pending
after a minute again (`CameraWorker.sweep`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Celery, Task
from sqlalchemy.exc import OperationalError

from cases.casebook import Casebook
from cases.db import Database
from cases.errors import FilingError
from evidence.vault import Vault
from pipelines.settings import Runtime
from pipelines.staging import StagingArea, StagingError

logger = logging.getLogger(__name__)

app = Celery("nonsite", set_as_current=False)

#: a test sets this to "STEP:SECONDS" to hold a task at a step, to kill its worker there
FAULT_PAUSE_ENV = "NONSITE_FAULT_PAUSE"


def configure(runtime: Runtime) -> Celery:
    """Point the app at the runtime's broker; every process calls this before it sends or works."""
    options: dict[str, Any] = {}
    if runtime.embedded_broker:
        folder, control = runtime.broker_dir / "queue", runtime.broker_dir / "control"
        folder.mkdir(parents=True, exist_ok=True)
        control.mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(control),
            "store_processed": False,
        }
    elif runtime.broker_url.startswith(("redis://", "rediss://")):
        # a dead worker's message is looked for every tenth of the timeout (at most every 10 s)
        options = {
            "visibility_timeout": runtime.visibility_timeout_s,
            "unacked_restore_interval": max(1, min(10, round(runtime.visibility_timeout_s / 10))),
            "unacked_restore_throttle": 1,
        }
    app.conf.update(
        broker_url=runtime.broker_url,
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=runtime.queue,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_heartbeat=10,
    )
    # connections already made are to the broker configured before; drop them
    if app._pool is not None:
        app._pool.force_close_all()
    app._after_fork()
    return app


@dataclass
class _Services:
    runtime: Runtime
    vault: Vault
    db: Database
    book: Casebook
    staging: StagingArea


_services: _Services | None = None
_services_lock = threading.Lock()


def services() -> _Services:
    """This process's vault, database and staging area, opened once from the runtime."""
    global _services  # noqa: PLW0603 - one set per worker process, opened on first use
    with _services_lock:
        if _services is None:
            runtime = Runtime.from_env()
            vault = Vault(runtime.evidence_dir, runtime.keys_dir)
            db = Database(runtime.database_url)
            _services = _Services(runtime, vault, db, Casebook(db, vault), StagingArea(runtime.staging_dir))
        return _services


def _pause_at(step: str) -> None:
    wanted, _, seconds = os.environ.get(FAULT_PAUSE_ENV, "").partition(":")
    if wanted == step:
        logger.warning("fault injection: pausing %s s at %s", seconds, step)
        time.sleep(float(seconds))


#: failed attempts after which a staged item is set aside for a person instead of sent again
MAX_ATTEMPTS = 5


class RetryingTask(Task):
    """Retried while the database or the broker is unreachable; any other error is the task's own."""

    autoretry_for = (OperationalError, ConnectionError, TimeoutError)
    retry_backoff = True
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = None


@app.task(base=RetryingTask, name="nonsite.seal_and_file")
def seal_and_file(item_id: str) -> dict[str, Any]:
    """Seal a staged violation into the vault and file it as a case; safe to run twice."""
    s = services()
    done = s.staging.done(item_id)
    if done is not None:
        return done
    try:
        item = s.staging.load(item_id)
    except StagingError as e:
        if (done := s.staging.done(item_id)) is not None:  # another worker finished it meanwhile
            return done
        logger.error("%s", e)
        if s.staging.is_pending(item_id):  # damaged: set aside for a person, never deleted
            s.staging.fail(item_id, str(e))
        return {"item": item_id, "error": str(e)}
    try:
        logged = s.vault.seal(item.finding, item.files)
        _pause_at("after_seal")
        filed = s.book.file_package(logged.package.package_id)
    except FilingError as e:  # an unknown camera: the sealed package waits for `nonsite cases heal`
        logger.error("staged item %s cannot be filed: %s", item_id[:12], e)
        s.staging.fail(item_id, str(e))
        return {"item": item_id, "error": str(e)}
    except RetryingTask.autoretry_for:
        raise
    except Exception as e:  # a poison item: a few more tries (a later sweep), then set aside
        attempts = s.staging.record_attempt(item_id)
        if attempts >= MAX_ATTEMPTS:
            logger.exception("staged item %s failed %d times; set aside", item_id[:12], attempts)
            s.staging.fail(item_id, f"failed {attempts} times, last: {e!r}")
            return {"item": item_id, "error": repr(e)}
        raise
    outcome = {
        "item": item_id,
        "camera": item.finding["device"]["id"],
        "package": logged.package.package_id,
        "leaf_index": logged.leaf_index,
        "case": filed.case_number,
        "created": filed.created,
        "filed_at": datetime.now(UTC).isoformat(),
    }
    s.staging.mark_done(item_id, outcome)
    logger.info("filed %s as case %s", logged.package.package_id[:12], filed.case_number)
    return outcome


@app.task(base=RetryingTask, name="nonsite.heal")
def heal() -> int:
    """File every sealed package without a case (and log what the case log lacks)."""
    return len(services().book.heal())
