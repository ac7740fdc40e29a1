"""Exception types of the backfill: declared once with team, runbook and retry."""
from datetime import timedelta

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team

BACKFILL_FAILED = registry.register(ExceptionType(
    code="backfill_failed", team=Team.ECOMMERCE, severity=Severity.MEDIUM, system="storefront",
    title="Importing the orders of {storefront} stopped",
    runbook=(
        "What happened: a backfill (importing a storefront's orders since a date) stopped with the error "
        "shown. The orders it stored before stopping are in the inbox and go on to the ERP as usual; "
        "nothing was posted twice.\n"
        "Check: the connection's health line (Connections) — credentials, scopes, reachability.\n"
        "Fix: repair the connection, then retry: the run resumes where it stopped.\n"
        "Escalate: the admin who owns the connection."
    ),
    retry_handler="integrations.flows.backfill.retry_backfill_exception", sla=timedelta(hours=24),
))
