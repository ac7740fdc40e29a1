"""Feed runs: a CSV-connector snapshot served (recorded as it streams) and an Advanced CSV
incremental upload (files of what changed since the last successful upload, sent over SFTP with
retries; a run that still fails is an ops exception and its cursor does not move)."""
from __future__ import annotations

import logging
import tempfile
import time
from datetime import timedelta
from typing import Callable, Iterator

from django.db.models import Max
from django.utils import timezone

from integrations.models import Connection, OutboundWrite
from integrations.models.planner_feeds import FeedRun
from integrations.writes import outbound_write

from .exception_types import PLANNER_FEED_FAILED
from .files import ADVANCED_ORDER, ADVANCED_COLUMNS, csv_chunks, increment_rows, snapshot_chunks
from .settings import feed_option, planner_currency, planner_warehouses, sftp_target
from .sftp import HostKeyMismatch, SftpDrop, SftpError

log = logging.getLogger("ledgerline.planner_feeds")


# --- snapshots (CSV connector) -----------------------------------------------------------------


def snapshot_stream(*, connection: Connection, warehouse: str, kind: str) -> Iterator[bytes]:
    """The snapshot file's bytes in chunks; when the last chunk has gone, the run is recorded."""
    counter = [0]
    run = FeedRun.objects.create(connection=connection, kind=FeedRun.Kind.SNAPSHOT, trigger="fetch", warehouse=warehouse)
    try:
        yield from snapshot_chunks(kind, warehouse, counter)
    except GeneratorExit:  # the planner hung up before the end of the file
        FeedRun.objects.filter(pk=run.pk).update(status=FeedRun.Status.FAILED, rows=counter[0],
                                                 errors=["the fetch ended before the end of the file"],
                                                 finished_at=timezone.now())
        raise
    except Exception as exc:
        FeedRun.objects.filter(pk=run.pk).update(status=FeedRun.Status.FAILED, rows=counter[0],
                                                 errors=[f"{type(exc).__name__}: {exc}"[:500]],
                                                 finished_at=timezone.now())
        raise
    FeedRun.objects.filter(pk=run.pk).update(
        status=FeedRun.Status.SUCCEEDED, rows=counter[0], finished_at=timezone.now(),
        files=[{"name": f"{kind}.csv", "kind": kind, "rows": counter[0], "sent": True}])


# --- increments (Advanced CSV over SFTP) -------------------------------------------------------


def _last_cursor(connection: Connection):
    return (FeedRun.objects.filter(connection=connection, kind=FeedRun.Kind.INCREMENTAL,
                                   status=FeedRun.Status.SUCCEEDED).aggregate(Max("cursor_to"))["cursor_to__max"])


def _sent_warehouses(connection: Connection) -> list[str] | None:
    """The warehouse list the planner last received (None: it never received one)."""
    runs = (FeedRun.objects.filter(connection=connection, kind=FeedRun.Kind.INCREMENTAL, status=FeedRun.Status.SUCCEEDED)
            .order_by("-cursor_to", "-pk").values_list("files", flat=True))
    for files in runs.iterator():
        for entry in files or []:
            if entry.get("kind") == "warehouses":
                return entry.get("warehouses")
    return None


def _build_files(run: FeedRun, connection: Connection) -> list[dict]:
    """Each non-empty incremental file, in the order the planner must read them, spooled to disk."""
    warehouses = planner_warehouses(connection)
    previous = _sent_warehouses(connection)
    send_warehouses = run.cursor_from is None or previous is None or sorted(previous or []) != warehouses
    label = run.cursor_to.strftime("%Y%m%dT%H%M%SZ")
    built = []
    for kind in ADVANCED_ORDER:
        counter = [0]
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        rows = increment_rows(kind, warehouses=warehouses, currency=planner_currency(connection),
                              since=run.cursor_from, until=run.cursor_to, send_warehouses=send_warehouses)
        for chunk in csv_chunks(ADVANCED_COLUMNS[kind], rows, counter):
            spool.write(chunk)
        if not counter[0]:
            spool.close()
            continue  # no new or updated records of this kind: no file
        entry = {"name": f"{kind}_{label}_{run.pk}.csv", "kind": kind, "rows": counter[0], "data": spool}
        if kind == "warehouses":
            entry["warehouses"] = warehouses
        built.append(entry)
    return built


def _key(connection: Connection, run: FeedRun, name: str) -> str:
    return f"{connection.code}:planner-feed:{run.pk}:{name}"


def planner_increment_run(*, connection: Connection, trigger: str = "schedule", run: FeedRun | None = None,
                          sleep: Callable[[float], None] = time.sleep) -> FeedRun:
    """Upload what changed since the last successful upload. Given `run` (a failed one), send its
    window again: files already uploaded are found in the outbound-write log and not sent twice."""
    target = sftp_target(connection)
    if run is None:
        until = timezone.now() - timedelta(seconds=float(feed_option("cursor_lag_seconds")))
        run = FeedRun.objects.create(connection=connection, kind=FeedRun.Kind.INCREMENTAL, trigger=trigger,
                                     cursor_from=_last_cursor(connection), cursor_to=until)
    else:
        FeedRun.objects.filter(pk=run.pk).update(status=FeedRun.Status.RUNNING, trigger=trigger)
        run.refresh_from_db()
    errors = list(run.errors or [])
    if target is None:
        return _failed(run, connection, errors + ["no SFTP server is configured for this connection"], permanent=True)
    files = _build_files(run, connection)
    run.files = [{k: v for k, v in f.items() if k != "data"} | {"sent": False} for f in files]
    run.rows = sum(f["rows"] for f in files)
    run.save(update_fields=["files", "rows"])
    attempts = int(feed_option("upload_attempts"))
    try:
        for attempt in range(1, attempts + 1):
            run.attempts += 1
            try:
                _upload(run, connection, target, files)
            except HostKeyMismatch as exc:
                errors.append(str(exc))
                return _failed(run, connection, errors, permanent=True)
            except SftpError as exc:
                errors.append(f"attempt {run.attempts}: {exc}")
                log.warning("planner feed %s upload attempt %s failed: %s", connection.code, attempt, exc)
                FeedRun.objects.filter(pk=run.pk).update(errors=errors, attempts=run.attempts)
                if attempt < attempts:
                    sleep(float(feed_option("upload_backoff")) * attempt)
                continue
            run.status, run.errors, run.finished_at = FeedRun.Status.SUCCEEDED, errors, timezone.now()
            run.save(update_fields=["status", "errors", "attempts", "finished_at", "files"])
            _resolve(connection)
            return run
        return _failed(run, connection, errors)
    finally:
        for f in files:
            f["data"].close()


def _upload(run: FeedRun, connection: Connection, target, files: list[dict]) -> None:
    with SftpDrop(target, timeout=float(feed_option("sftp_timeout"))) as drop:
        for entry, record in zip(files, run.files):
            key = _key(connection, run, entry["name"])
            if OutboundWrite.objects.filter(external_reference=key, status=OutboundWrite.Status.SUCCEEDED).exists():
                record["sent"] = True  # uploaded by an earlier attempt: never twice
                continue
            with outbound_write(action="planner_feed_upload", idempotency_key=key, connection=connection,
                                system="inventory_planner", subject=("feed_run", str(run.pk))) as write:
                drop.put_atomic(entry["kind"], entry["name"], entry["data"])
                write.response_id = entry["name"]
            record["sent"] = True
            FeedRun.objects.filter(pk=run.pk).update(files=run.files)


def _failed(run: FeedRun, connection: Connection, errors: list[str], *, permanent: bool = False) -> FeedRun:
    from exceptions_queue.services import exception_raise

    run.status, run.errors, run.finished_at = FeedRun.Status.FAILED, errors, timezone.now()
    run.save(update_fields=["status", "errors", "attempts", "finished_at", "files"])
    sent = sum(1 for f in run.files if f.get("sent"))
    exception_raise(
        exc_type=PLANNER_FEED_FAILED, key=connection.code, fingerprint=connection.code,
        message=(f"Feed run #{run.pk} to {connection.name} failed after {run.attempts} attempt(s)"
                 f"{' (not retried: fix the configuration first)' if permanent else ''}; {sent} of "
                 f"{len(run.files)} files were uploaded. Last error: {errors[-1] if errors else 'unknown'}"),
        context={"connection": connection.name, "run": run.pk}, last_error=(errors[-1] if errors else "")[:2000],
        retry_args={"connection": connection.code, "run": run.pk}, subject=("connection", connection.code),
    )
    return run


def _resolve(connection: Connection) -> None:
    from exceptions_queue.models import ExceptionRecord
    from exceptions_queue.services import exception_resolve

    for record in ExceptionRecord.objects.filter(type_code=PLANNER_FEED_FAILED.code, key__endswith=f":{connection.code}",
                                                 status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note="The next feed upload succeeded.", action="auto_resolved")


# --- schedule ------------------------------------------------------------------------------------


def _upload_due(connection: Connection, now) -> bool:
    from integrations.flows.inventory.runs import in_quiet_window

    conf = connection.settings or {}
    if in_quiet_window(now, str(feed_option("quiet_hours") or "")):
        return False
    window = str(conf.get("upload_hours") or "0-5")  # the night, an hour or more before the planner's sync
    if not in_quiet_window(now, window):
        return False
    every = float(conf.get("upload_every_hours") or 24)
    last = (FeedRun.objects.filter(connection=connection, kind=FeedRun.Kind.INCREMENTAL, status=FeedRun.Status.SUCCEEDED)
            .aggregate(Max("created_at"))["created_at__max"])
    return last is None or now - last >= timedelta(hours=max(every - 1, 0))


def planner_feeds_scheduled(*, now=None, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Hourly: bring the feed tables up to date, then upload each Advanced CSV connection's increment
    when it is due (in its night window, never in peak hours). Safe to run twice: the cursor of a
    connection moves only with a successful upload, and a second run in the same hour finds it done."""
    from .collect import planner_feeds_refresh

    now = now or timezone.now()
    connections = list(Connection.objects.filter(kind="inventory_planner", active=True).order_by("code"))
    if not connections:
        return {}
    done = {}
    try:
        done["refresh"] = planner_feeds_refresh()
    except Exception as exc:  # an ERP outage: the files keep yesterday's figures; ops are told
        log.exception("planner feeds refresh failed")
        from exceptions_queue.services import exception_raise

        for connection in connections:
            exception_raise(
                exc_type=PLANNER_FEED_FAILED, key=connection.code, fingerprint=connection.code,
                message=f"The feed data could not be refreshed from the ERP: {type(exc).__name__}: {exc}",
                context={"connection": connection.name}, retry_args={"connection": connection.code},
                subject=("connection", connection.code))
        return done
    for connection in connections:
        if sftp_target(connection) is not None and _upload_due(connection, now):
            run = planner_increment_run(connection=connection, sleep=sleep)
            done[connection.code] = run.status
    return done


def retry_feed_exception(record) -> bool:
    """Send the failed run's files again (or, with no run, refresh and upload a new increment)."""
    connection = Connection.objects.filter(code=(record.retry_args or {}).get("connection")).first()
    if connection is None:
        return False
    run = FeedRun.objects.filter(pk=(record.retry_args or {}).get("run"), connection=connection).first()
    if run is None:
        from .collect import planner_feeds_refresh

        planner_feeds_refresh()
        if sftp_target(connection) is None:
            return True
    return planner_increment_run(connection=connection, run=run, trigger="retry").status == FeedRun.Status.SUCCEEDED
