"""The outbound-write log, as every flow uses it: the attempt row is committed before the call to
the outside system and updated after, so a crash in between is visible and a replay looks the
write up by its idempotency key instead of repeating it."""
from __future__ import annotations

from contextlib import contextmanager

from django.utils import timezone

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
    write = OutboundWrite.objects.create(
        action=action, external_reference=idempotency_key[:200], connection=connection,
        system=system or (connection.kind if connection is not None else ""), order=order,
        subject_type=(subject or ("", ""))[0], subject_id=str((subject or ("", ""))[1])[:100],
    )
    try:
        yield write
    except BaseException as exc:
        OutboundWrite.objects.filter(pk=write.pk).update(status=OutboundWrite.Status.FAILED, error=str(exc)[:2000],
                                                         finished_at=timezone.now())
        raise
    if finish:
        write_succeeded(write.pk, write.response_id)


def write_succeeded(write_id: int, response_id: str = "") -> None:
    OutboundWrite.objects.filter(pk=write_id).update(status=OutboundWrite.Status.SUCCEEDED,
                                                     response_id=(response_id or "")[:100], finished_at=timezone.now())
