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


def _drift(code: str, team: str, title: str, runbook: str, *, severity: str = Severity.MEDIUM, system: str = "",
           sla: timedelta = timedelta(hours=24)) -> ExceptionType:
    return registry.register(ExceptionType(code=code, team=team, severity=severity, system=system, title=title,
                                           runbook=runbook, retry_handler=RETRY, sla=sla))


_RETRY_TEXT = "Retry re-runs the check; the exception resolves itself once the check no longer finds the gap."

# --- orphaned orders (ops) ---------------------------------------------------------------------------
ORPHANED_ORDER = _drift(
    "drift_orphaned_order", Team.OPS, "Order {order_number} is paid but has no ERP Sales Order",
    "What happened: the storefront took the payment for this order, but no ERP Sales Order exists for it "
    "after the threshold (the webhook may never have arrived, or its processing stopped).\n"
    "Check: the order's page (timeline and inbox events); the inbox for waiting events.\n"
    f"Fix: retry the order from its page, or re-sync it from the storefront. {_RETRY_TEXT}\n"
    "Escalate: the integration engineer on call when several orders are affected.",
    severity=Severity.HIGH, system="erp", sla=timedelta(hours=2))
RECONCILIATION_POLL_FAILED = _drift(
    "drift_reconciliation_poll_failed", Team.OPS, "The reconciliation poll of {storefront} failed",
    "What happened: the check that re-reads the storefront's recent orders (so an order whose webhooks "
    "never arrived is still posted) could not read them.\n"
    "Check: the error; the connection's health under Connections (token, scopes, vendor status).\n"
    f"Fix: repair the connection. {_RETRY_TEXT}\n"
    "Escalate: e-commerce platform owner if the storefront keeps refusing.",
    severity=Severity.HIGH, system="storefront", sla=timedelta(hours=2))
ERP_ORDER_STILL_OPEN = _drift(
    "drift_erp_order_still_open", Team.OPS, "Order {order_number} is {storefront_state} but its ERP order is {erp_status}",
    "What happened: the storefront order was cancelled or refunded, but its ERP Sales Order is still open "
    "(and, for a refund, no credit memo was booked).\n"
    "Check: the ERP Sales Order and the order's timeline.\n"
    f"Fix: cancel the ERP order (or book the credit memo) in the ERP or from the order's page. {_RETRY_TEXT}\n"
    "Escalate: the warehouse lead if goods may already have shipped.",
    severity=Severity.HIGH, system="erp", sla=timedelta(hours=8))
PAYMENT_STATE_MISMATCH = _drift(
    "drift_payment_state_mismatch", Team.OPS, "Order {order_number} is in the ERP but its payment is {payment_state}",
    "What happened: the ERP holds a Sales Order for an order whose payment the storefront no longer "
    "shows as taken (pending, voided, expired).\n"
    "Check: the payment in the storefront admin; the ERP Sales Order.\n"
    f"Fix: capture the payment, or cancel the order on both sides. {_RETRY_TEXT}\n"
    "Escalate: finance if money was booked.",
    system="storefront", sla=timedelta(hours=8))

# --- inventory (ops) -----------------------------------------------------------------------------------
INVENTORY_DRIFT = _drift(
    "drift_inventory", Team.OPS, "Stock of {sku} at {location} differs between the storefront and the ERP",
    "What happened: for this SKU and location, what the storefront shows as available, the ATS Ledgerline "
    "last pushed and the ERP's current ATS disagree beyond the tolerance.\n"
    "Check: the three figures on this exception; recent stock moves in the ERP; a manual edit in the storefront.\n"
    "Fix: when the ERP moved, run the inventory full sync (Inventory); when the storefront was edited by hand, "
    "set it back there (the sync pushes only an ATS that changed since its last push); when the ERP is wrong, "
    f"correct the stock in the ERP. {_RETRY_TEXT}\n"
    "Escalate: the warehouse lead if the ERP figure is wrong.",
    system="storefront", sla=timedelta(hours=8))

# --- catalogue (e-commerce) --------------------------------------------------------------------------
# Items missing on either side, duplicate SKUs and stale mappings keep the mapping health check's types
# (mappings/health.py), so a gap it raised before stays the same exception.
VARIANT_INCOMPLETE = _drift(
    "drift_variant_incomplete", Team.ECOMMERCE, "A variant of {product} on {storefront} lacks {missing}",
    "What happened: a storefront variant is missing a field the ERP needs to post its orders (a SKU, a price).\n"
    "Check: the variant in the storefront admin.\n"
    f"Fix: fill in the field. {_RETRY_TEXT}\n"
    "Escalate: the e-commerce catalogue owner.", system="storefront", sla=timedelta(days=1))

# --- prices (e-commerce) -----------------------------------------------------------------------------
PRICE_MISMATCH = _drift(
    "drift_price_mismatch", Team.ECOMMERCE, "Price of {sku} on {storefront} differs from the ERP ({scope})",
    "What happened: the storefront sells this SKU at a price that is not the ERP's master price for the same "
    "scope (currency, customer group, channel, tier, compare-at).\n"
    "Check: both prices on this exception; a running promotion.\n"
    "Fix: use 'Restore ERP price' on this exception (it sets the storefront variant's prices back to the ERP's "
    "and checks the SKU again), or correct the ERP master price if it is the wrong one. "
    f"{_RETRY_TEXT}\n"
    "Escalate: the pricing manager.", system="storefront", sla=timedelta(days=1))

# --- tax and rounding (finance) ----------------------------------------------------------------------
TAX_MISMATCH = _drift(
    "drift_tax_mismatch", Team.FINANCE, "Tax of order {order_number} differs between the ERP and the storefront",
    "What happened: the tax the ERP booked for this order differs from the storefront's tax by more than "
    "the rounding Ledgerline recorded when it posted.\n"
    "Check: both figures on this exception; the ERP's tax codes for the lines.\n"
    f"Fix: correct the ERP document (or the tax-code mapping for future orders). {_RETRY_TEXT}\n"
    "Escalate: the finance tax lead.", severity=Severity.HIGH, system="erp", sla=timedelta(days=2))

# --- integration health (e-commerce / ops) -------------------------------------------------------------
WEBHOOKS_UNHEALTHY = _drift(
    "drift_webhooks_unhealthy", Team.ECOMMERCE, "Webhook subscriptions of {storefront}: {problem}",
    "What happened: a webhook subscription the integration needs is missing or failing, so events from "
    "the storefront may not arrive (the reconciliation poll still finds orders, later).\n"
    "Check: Connections → the connection's health.\n"
    f"Fix: use 'Repair' on the connection's health line (it re-creates the subscriptions). {_RETRY_TEXT}\n"
    "Escalate: the e-commerce platform owner.", severity=Severity.HIGH, system="storefront", sla=timedelta(hours=8))
EVENTS_WAITING = _drift(
    "drift_events_waiting", Team.OPS, "{count} events from {storefront} are waiting to be processed",
    "What happened: inbound events have been stored for longer than the threshold without being processed "
    "(the task queue may be stopped or overloaded).\n"
    "Check: that the django-q2 cluster is running; the inbox.\n"
    f"Fix: start the worker; the sweep re-runs waiting events. {_RETRY_TEXT}\n"
    "Escalate: the integration engineer on call.", severity=Severity.HIGH, system="ledgerline", sla=timedelta(hours=1))
CURSOR_STALE = _drift(
    "drift_cursor_stale", Team.OPS, "The {resource} poll of {storefront} has not moved since {since}",
    "What happened: a poll cursor stopped moving: the poll is not running or keeps failing.\n"
    "Check: the schedules (django-q2 admin), failed tasks, the connection's health.\n"
    f"Fix: repair the cause; the next poll moves the cursor. {_RETRY_TEXT}\n"
    "Escalate: the integration engineer on call.", system="ledgerline", sla=timedelta(hours=4))
TASK_FAILING = _drift(
    "drift_task_failing", Team.OPS, "Task {task} failed {count} times in 24 hours",
    "What happened: a background task keeps failing.\n"
    "Check: the error on this exception and in the django-q2 failed tasks.\n"
    f"Fix: repair the cause. {_RETRY_TEXT}\n"
    "Escalate: the integration engineer on call.", severity=Severity.HIGH, system="ledgerline", sla=timedelta(hours=4))
CREDENTIAL_EXPIRING = _drift(
    "drift_credential_expiring", Team.ECOMMERCE, "{storefront}: {what}",
    "What happened: a credential or the API version a connection uses expires soon (or has expired).\n"
    "Check: Connections → the connection's health.\n"
    f"Fix: renew the credential or move to a supported API version before the date. {_RETRY_TEXT}\n"
    "Escalate: the e-commerce platform owner.", severity=Severity.HIGH, system="storefront", sla=timedelta(days=3))
