"""Shared pieces of the order flow: the claim lease, the ERP fact caches, the timeline, translating a payload."""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from decimal import InvalidOperation

from django.conf import settings
from django.db import router

from integrations.connectors import order_from_payload
from integrations.domain import StorefrontOrder
from integrations.inbox.store import insert_row, insert_rows
from integrations.models import InboundEvent, OrderEvent, OrderLink
from integrations.ttl_cache import TtlCache

from .connection_settings import connection_settings
from .document import Problem


log = logging.getLogger("ledgerline.orders")


# A claim older than this is taken to belong to a worker that died: django-q2 hands the task out
# again only after Q_CLUSTER["retry"] seconds, which is longer than its timeout.
CLAIM_LEASE = timedelta(seconds=settings.Q_CLUSTER.get("timeout", 120))


# Bad shapes a payload can have beyond what the translation names itself: each becomes a
# malformed_payload exception, never a task that dies.
PAYLOAD_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError, ArithmeticError, InvalidOperation)


# The largest amount in minor units the database stores (a signed 64-bit integer).
MAX_MINOR = 2**63 - 1


# Facts about the ERP's items and depots, keyed by the ERP they were read from (erp_facts_key), so no
# order asks them again; positive answers only (an unknown item is asked again, it may be added).
known_items = TtlCache(ttl=300)


erp_depots_cache = TtlCache(ttl=60)


# A mapping change (mappings/signals.py) bumps this in Django's cache: every process sharing that
# cache forgets its facts at its next order; elsewhere the TTLs above bound how long a fact lives.
ERP_FACTS_GENERATION = "ledgerline:erp-facts-generation"
_facts_generation = {"seen": None}


def erp_caches_clear() -> None:
    known_items.clear()
    erp_depots_cache.clear()


def erp_facts_changed() -> None:
    """The mappings changed: forget the ERP facts here and tell the other processes."""
    from django.core.cache import cache

    erp_caches_clear()
    cache.set(ERP_FACTS_GENERATION, time.time(), None)


def erp_facts_key(erp) -> str:
    """Which ERP a fact was read from: its kind and address (one ERP connection)."""
    return f"{getattr(erp, 'system', type(erp).__name__)}:{getattr(erp, 'base_url', '') or getattr(erp, 'url', '')}" \
           f":{getattr(erp, 'company', '')}"


def erp_facts_fresh(mappings_version: str | None = None) -> None:
    """Forget the facts if a mapping changed since this process last looked: by the mapping tables'
    change mark (mappings.lookup.mappings_version, read from the database, so any process's change
    counts) or by the generation a change in a process sharing Django's cache bumped."""
    from django.core.cache import cache

    generation = cache.get(ERP_FACTS_GENERATION)
    seen = (generation, mappings_version if mappings_version is not None else _facts_generation.get("mark"))
    if seen != _facts_generation["seen"]:
        if _facts_generation["seen"] is not None or generation is not None:
            erp_caches_clear()
        _facts_generation["seen"] = seen
        _facts_generation["mark"] = seen[1]


_timeline = threading.local()


def timeline_add(order: OrderLink, kind: str, message: str = "", event: InboundEvent | None = None, *,
                 event_id: int | None = None) -> None:
    """An entry on the order's timeline, from `event` (or the event of that id, not read here)."""
    pending = getattr(_timeline, "pending", None)
    entry = OrderEvent(order=order, kind=kind, message=message, event=event)
    if event_id is not None:
        entry.event_id = event_id
    if pending is not None:
        pending.append(entry)  # written with the others at the end of timeline_together()
    else:
        insert_row(entry, router.db_for_write(OrderEvent))  # save(force_insert=True), compiled once


@contextmanager
def timeline_together():
    """The timeline entries added inside this block are inserted in one statement at its end (in
    the order they were added), inside the caller's transaction."""
    if getattr(_timeline, "pending", None) is not None:
        yield  # already collecting: the outer block writes them
        return
    _timeline.pending = []
    try:
        yield
        if _timeline.pending:
            insert_rows(_timeline.pending, router.db_for_write(OrderEvent))  # one compiled INSERT, executemany
    finally:
        _timeline.pending = None


def is_payment_done(link: OrderLink) -> bool:
    return connection_settings(link.connection).releases(link.payment_state)


def translate_payload(connection, payload) -> StorefrontOrder:
    """The storefront payload in our words; any bad shape is a ValueError naming what is wrong."""
    try:
        return order_from_payload(connection, payload)
    except ValueError:
        raise
    except PAYLOAD_ERRORS as exc:
        raise ValueError(f"the order payload has an unexpected shape ({type(exc).__name__}: {exc})") from exc


class OrderNotReady(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


# Automatic re-posts after a transient failure: 1, 2, 4 … minutes apart, at most an hour.
AUTO_RETRY_BASE = timedelta(minutes=1)


AUTO_RETRY_MAX = timedelta(hours=1)


def auto_retry_delay(attempt: int) -> timedelta:
    return min(AUTO_RETRY_BASE * (2 ** min(max(attempt, 0), 16)), AUTO_RETRY_MAX)
