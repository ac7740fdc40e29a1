"""Reading a commercetools project's orders for a backfill: every order created since a moment,
oldest first, through the Order query API with keyset paging on (createdAt, id) and `withTotal=false`
(commercetools' advice for iterating a large result: no offset scan and no total to count). A page
ends where the last order read ends, so a run can resume after it."""
from __future__ import annotations

from typing import Iterator

from ..base import PermanentError
from . import CommercetoolsClient, _after, _quote


def orders_created_since(client: CommercetoolsClient, since: str, *, after: tuple[str, str] | None = None,
                         page_size: int = 100) -> Iterator[list[dict]]:
    """Pages of Orders created at or after `since` (ISO 8601), in (createdAt, id) order; `after`
    (createdAt, id) resumes past the last order a previous run stored."""
    cursor = after
    while True:
        if cursor:
            t, last_id = _quote(cursor[0]), _quote(cursor[1])
            where = f"createdAt > {t} or (createdAt = {t} and id > {last_id})"
        else:
            where = f"createdAt >= {_quote(since)}"
        page = client.query_orders(where=where, sort=["createdAt asc", "id asc"], limit=page_size, with_total=False)
        results = page.get("results") or []
        if not results:
            return
        yield results
        last = (results[-1]["createdAt"], results[-1]["id"])
        if cursor and not _after(last, cursor):
            # A server that ignores the predicate or the sort would page forever.
            raise PermanentError(f"commercetools order cursor did not advance past {cursor[0]} {cursor[1]}")
        cursor = last
        if len(results) < page_size:
            return
