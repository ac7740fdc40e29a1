"""Backfill and re-sync: a storefront's orders since a date (runs.py), or one order again (resync.py),
read from the storefront and stored in the inbox as any event is, so the orders flow applies them
with its usual stale and duplicate rules and nothing already posted is posted again."""
from .exception_types import BACKFILL_FAILED
from .runs import (
    BackfillRefused, backfill_run_execute, backfill_runs_resume, backfill_start, retry_backfill_exception,
)
from .resync import ResyncRefused, order_import_by_number, order_resync

__all__ = [
    "BACKFILL_FAILED", "BackfillRefused", "ResyncRefused", "backfill_run_execute", "backfill_runs_resume",
    "backfill_start", "order_import_by_number", "order_resync", "retry_backfill_exception",
]
