"""Reading the ERP's confirmed dispatches by cursor: each page's dispatches are stored before the
cursor moves past them, so a crash re-reads the page and the stored rows dedupe it."""
from __future__ import annotations

import logging

from integrations.connectors import erp_connection, get_erp
from integrations.connectors.base import DISPATCHES, PermanentError, TransientError, require
from integrations.models import Dispatch, DispatchCursor

from .store import dispatch_store, erp_key

log = logging.getLogger("ledgerline.fulfilment")

PAGE_SIZE = 100
MAX_PAGES = 20  # per run; the next run (a minute later) reads on from the saved cursor


def dispatches_poll(*, page_size: int = PAGE_SIZE, max_pages: int = MAX_PAGES) -> dict:
    """One poll of the active ERP: {"status", "read", "stored", "pages"}. An ERP that does not answer
    leaves the cursor where it was (the next scheduled run reads the same dispatches again)."""
    connection = erp_connection()
    erp = get_erp()
    key = erp_key(connection)
    counts = {"status": "ok", "read": 0, "stored": 0, "pages": 0}
    try:
        require(erp, DISPATCHES)
    except PermanentError as exc:
        log.warning("fulfilment: %s", exc)
        return {**counts, "status": "unsupported"}
    cursor, _ = DispatchCursor.objects.get_or_create(erp=key)
    for _ in range(max_pages):
        try:
            page = erp.dispatches_since(cursor.cursor, limit=page_size)
        except TransientError as exc:
            log.warning("fulfilment: the ERP did not answer the dispatch poll (%s); the next run reads on", exc)
            return {**counts, "status": "erp_unavailable"}
        counts["pages"] += 1
        for dispatch in page.dispatches:
            counts["read"] += 1
            _, created = dispatch_store(erp=key, dispatch=dispatch, source=Dispatch.Source.POLL)
            counts["stored"] += int(created)
        # Only now, with the page stored, does the cursor move past it.
        DispatchCursor.objects.filter(pk=cursor.pk).update(cursor=page.cursor, last_run_count=len(page.dispatches))
        cursor.cursor = page.cursor
        if not page.more:
            break
    return counts
