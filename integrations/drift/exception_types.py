"""Exception types of drift monitoring: each declared once with its team, runbook and retry (retrying
re-runs the check; the exception resolves itself when the check no longer finds the gap)."""
from datetime import timedelta

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team

RETRY = "integrations.drift.registry.retry_drift_exception"

CHECK_FAILED = registry.register(ExceptionType(
    code="drift_check_failed", team=Team.OPS, severity=Severity.HIGH, system="ledgerline",
    title="The {check} check failed",
    runbook=(
        "What happened: a scheduled drift check stopped with an error, so the gaps it watches are not being "
        "looked for until it runs again.\n"
        "Check: the error on this exception (a vendor down, credentials revoked, a timeout).\n"
        "Fix: repair the cause (Connections shows each connection's health), then retry: retrying re-runs the "
        "check and resolves this exception when it finishes.\n"
        "Escalate: the integration engineer on call if it fails again."
    ),
    retry_handler=RETRY, sla=timedelta(hours=4),
))
