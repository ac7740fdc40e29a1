"""The outbound-write log, as every flow uses it: the attempt row is committed before the call to
the outside system and updated after, so a crash in between is visible and a replay looks the
write up by its idempotency key instead of repeating it."""
from __future__ import annotations

from contextlib import contextmanager

from django.db import connections, router
from django.utils import timezone

from .inbox.store import insert_row
from .models import OutboundWrite


@contextmanager
def outbound_write(*, action: str, idempotency_key: str, connection=None, system: str = "", order=None,
                   subject: tuple[str, str] | None = None, finish: bool = True):
    """`with outbound_write(...) as write: result = client.call(...); write.response_id = result.id`.

    The row is saved (autocommit) before the block runs; an exception in the block marks it failed
    and propagates; otherwise it is marked succeeded — unless finish=False, when the caller marks
    it together with its own state change (write_succeeded)."""
    if subject is None and order is not None:
        subject = ("order", str(order.pk))
    write = OutboundWrite(
        action=action, external_reference=idempotency_key[:200], connection=connection,
        system=system or (connection.kind if connection is not None else ""), order=order,
        subject_type=(subject or ("", ""))[0], subject_id=str((subject or ("", ""))[1])[:100],
    )
    insert_row(write, router.db_for_write(OutboundWrite))  # the INSERT compiled once per process
    try:
        yield write
    except BaseException as exc:
        OutboundWrite.objects.filter(pk=write.pk).update(status=OutboundWrite.Status.FAILED, error=str(exc)[:2000],
                                                         finished_at=timezone.now())
        raise
    if finish:
        write_succeeded(write.pk, write.response_id)


_succeeded: dict[str, str] = {}


def write_succeeded(write_id: int, response_id: str = "") -> None:
    """The write's row marked succeeded: the UPDATE Django compiles for
    filter(pk=).update(status=, response_id=, finished_at=), compiled once per database."""
    using = router.db_for_write(OutboundWrite)
    db = connections[using]
    statement = _succeeded.get(using)
    if statement is None:
        opts = OutboundWrite._meta
        quote = db.ops.quote_name
        column = {name: quote(opts.get_field(name).column) for name in ("status", "response_id", "finished_at")}
        statement = _succeeded[using] = (
            f"UPDATE {quote(opts.db_table)} SET {column['status']} = %s, {column['response_id']} = %s, "
            f"{column['finished_at']} = %s WHERE {quote(opts.pk.column)} = %s")
    finished = OutboundWrite._meta.get_field("finished_at").get_db_prep_save(timezone.now(), connection=db)
    with db.cursor() as cursor:
        cursor.execute(statement, (str(OutboundWrite.Status.SUCCEEDED), (response_id or "")[:100], finished,
                                   OutboundWrite._meta.pk.get_db_prep_save(write_id, connection=db)))
