"""Exception types of the refunds flow: each declared once with its team, runbook and retry."""
from datetime import timedelta

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team

RETRY = "integrations.flows.refunds.retry_refund_exception"
RETRY_EVENT = "integrations.flows.refunds.retry_refund_event_exception"

CREDIT_MEMO_MISMATCH = registry.register(ExceptionType(
    code="credit_memo_mismatch", team=Team.FINANCE, severity=Severity.HIGH, system="erp",
    title="Refund on order {order_number} does not add up: credit memo {erp_total} vs refund {storefront_total}",
    runbook=(
        "What happened: the credit memo we would send to the ERP does not total the money the storefront "
        "returned to the customer, so it was NOT posted. Both breakdowns are shown line by line.\n"
        "Check: which line differs: a refunded amount the storefront states on no line we read, a rounding "
        "rule, or a refund paid in another currency.\n"
        "Fix: correct the mapping (or the refund in the storefront), then retry; the check runs again.\n"
        "Escalate: the finance systems owner; never book the memo by hand with other figures."
    ),
    retry_handler=RETRY, sla=timedelta(hours=8),
))
REFUND_ORDER_MISSING = registry.register(ExceptionType(
    code="refund_order_missing", team=Team.FINANCE, severity=Severity.HIGH, system="storefront",
    title="Refund {refund_id} of {amount}: order {storefront_order_id} is not in the ERP",
    runbook=(
        "What happened: the storefront refunded an order that Ledgerline never posted to the ERP (it never "
        "saw the order, or the order was cancelled or a test before it posted), so there is no Sales Order "
        "to credit.\n"
        "Check: the storefront, refund id, order id and amount named here; was the order imported another way?\n"
        "Fix: get the order posted (its webhook or a backfill), then retry; or credit it in the ERP by hand "
        "and resolve this.\n"
        "Escalate: finance lead."
    ),
    retry_handler=RETRY, sla=timedelta(days=1),
))
CREDIT_MEMO_BLOCKED = registry.register(ExceptionType(
    code="credit_memo_blocked", team=Team.FINANCE, severity=Severity.HIGH, system="erp",
    title="Credit memo for order {order_number} cannot be built",
    runbook=(
        "What happened: a refunded line has no ERP item or tax code (or the goodwill item is missing), so the "
        "credit memo was not posted.\n"
        "Check: the message names the SKU, rate or item.\n"
        "Fix: add the mapping (Mappings → SKUs / Tax codes) or the item in the ERP, then retry.\n"
        "Escalate: the finance systems owner."
    ),
    retry_handler=RETRY, sla=timedelta(hours=8),
))
CREDIT_MEMO_REJECTED = registry.register(ExceptionType(
    code="credit_memo_rejected", team=Team.FINANCE, severity=Severity.HIGH, system="erp",
    title="The ERP refused the credit memo for order {order_number}",
    runbook=(
        "What happened: the ERP refused the credit memo (for example it credits more of an item than the "
        "order sold: over_credit), or did not answer after several attempts.\n"
        "Check: the ERP's message; earlier memos on the same Sales Order.\n"
        "Fix: correct the data (or wait for the ERP), then retry: the memo is created once, by its refund id.\n"
        "Escalate: ERP administrator."
    ),
    retry_handler=RETRY, sla=timedelta(hours=8),
))
REFUND_MALFORMED = registry.register(ExceptionType(
    code="refund_malformed", team=Team.ECOMMERCE, severity=Severity.HIGH, system="storefront",
    title="Refund from {storefront} cannot be read",
    runbook=(
        "What happened: the storefront sent a refund we cannot translate (a field is missing or has the wrong "
        "type). The raw event is stored and nothing was sent to the ERP.\n"
        "Check: the error names the field; compare it with the raw payload.\n"
        "Fix: correct the webhook's API version or the refund, then retry.\n"
        "Escalate: e-commerce platform owner."
    ),
    retry_handler=RETRY_EVENT, sla=timedelta(hours=4),
))
