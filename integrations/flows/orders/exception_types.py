"""Exception types of the order flow: each declared once with its team, runbook and retry."""
from datetime import timedelta

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team

RETRY = "integrations.flows.orders.retry_order_exception"
RETRY_EVENT = "integrations.flows.orders.retry_event_exception"

MALFORMED_PAYLOAD = registry.register(ExceptionType(
    code="malformed_payload", team=Team.ECOMMERCE, severity=Severity.HIGH, system="storefront",
    title="Order payload from {storefront} cannot be read",
    runbook=(
        "What happened: the storefront sent an order we cannot translate (a field is missing or has "
        "the wrong type). The raw event is stored and nothing was sent to the ERP.\n"
        "Check: the error names the field; compare it with the raw payload on the exception.\n"
        "Fix: correct the order in the storefront (or the app's webhook API version), then retry.\n"
        "Escalate: e-commerce platform owner if the storefront keeps sending this shape."
    ),
    retry_handler=RETRY_EVENT, sla=timedelta(hours=4),
))
UNKNOWN_SKU = registry.register(ExceptionType(
    code="unknown_sku", team=Team.OPS, severity=Severity.HIGH, system="erp",
    title="SKU {sku} has no ERP item",
    runbook=(
        "What happened: an order line's SKU does not resolve to an item that exists in the ERP, so the "
        "order was not posted.\n"
        "Check: is the SKU a typo on the storefront, a new product, or mapped to a retired item?\n"
        "Fix: add or correct the row under Mappings → SKUs (or create the item in the ERP), then retry; "
        "retrying the group posts every order waiting on this SKU. Not an admin? Use \"Propose a mapping\" "
        "on this exception (the SKU is filled in; give the ERP item): an admin approves it under Mappings → "
        "Proposals with one click, and this exception is retried then.\n"
        "Escalate: merchandising if the item must be created in the ERP."
    ),
    retry_handler=RETRY, sla=timedelta(hours=4),
))
DUPLICATE_SKU = registry.register(ExceptionType(
    code="duplicate_sku", team=Team.ECOMMERCE, severity=Severity.HIGH, system="storefront",
    title="SKU {sku} is on more than one storefront product",
    runbook=(
        "What happened: the same SKU is used by two different storefront products on one order, so we "
        "cannot tell which ERP item was sold.\n"
        "Check: the products listed in the exception context.\n"
        "Fix: give each product variant its own SKU in the storefront (or map them explicitly), then retry.\n"
        "Escalate: e-commerce catalogue owner."
    ),
    retry_handler=RETRY, sla=timedelta(hours=8),
))
MISSING_TAX_MAPPING = registry.register(ExceptionType(
    code="missing_tax_mapping", team=Team.FINANCE, severity=Severity.HIGH, system="erp",
    title="No ERP tax code for {rate_percent}% in {country}",
    runbook=(
        "What happened: an order carries a tax rate that has no ERP tax code mapped, so it was not posted.\n"
        "Check: is the rate right for the country (a new rate, a storefront tax misconfiguration)?\n"
        "Fix: add the row under Mappings → Tax codes, then retry. Not an admin? Use \"Propose a mapping\" on "
        "this exception (rate and country are filled in; give the ERP tax code): an admin approves it under "
        "Mappings → Proposals with one click, and this exception is retried then.\n"
        "Escalate: the finance tax lead."
    ),
    retry_handler=RETRY, sla=timedelta(hours=8),
))
INVALID_DEPOT = registry.register(ExceptionType(
    code="invalid_depot", team=Team.OPS, severity=Severity.HIGH, system="erp",
    title="No valid ERP depot for order {order_number}",
    runbook=(
        "What happened: the order's depot/warehouse could not be determined, or the mapped depot does "
        "not exist in the ERP.\n"
        "Check: Mappings → Depots for the storefront and the shipping country; the ERP's depot list.\n"
        "Fix: add or correct the depot mapping, then retry. Not an admin? When no depot is mapped, use "
        "\"Propose a mapping\" on this exception (the country is filled in; give the ERP depot): an admin "
        "approves it under Mappings → Proposals with one click, and this exception is retried then.\n"
        "Escalate: warehouse operations lead."
    ),
    retry_handler=RETRY, sla=timedelta(hours=4),
))
CUSTOMER_CONFLICT = registry.register(ExceptionType(
    code="customer_conflict", team=Team.OPS, severity=Severity.MEDIUM, system="erp",
    title="Customer {email} matches {count} ERP accounts",
    runbook=(
        "What happened: the order's customer could not be matched to exactly one ERP customer "
        "(several share the e-mail, or the e-mail belongs to another storefront customer).\n"
        "Check: the ERP accounts listed in the context.\n"
        "Fix: merge or correct the ERP accounts (or the storefront customer's e-mail), then retry.\n"
        "Escalate: customer service lead."
    ),
    retry_handler=RETRY, sla=timedelta(hours=8),
))
ERP_REJECTED = registry.register(ExceptionType(
    code="erp_rejected", team=Team.OPS, severity=Severity.HIGH, system="erp",
    title="ERP rejected order {order_number}",
    runbook=(
        "What happened: the ERP answered that the Sales Order (or its customer) is invalid.\n"
        "Check: the ERP's message in the last error; the data sent, on the order page.\n"
        "Fix: correct the data (mapping, ERP master data), then retry.\n"
        "Escalate: ERP administrator."
    ),
    retry_handler=RETRY, sla=timedelta(hours=4),
))
ERP_UNAVAILABLE = registry.register(ExceptionType(
    code="erp_unavailable", team=Team.OPS, severity=Severity.CRITICAL, system="erp",
    title="ERP unavailable while posting order {order_number}",
    runbook=(
        "What happened: the ERP kept failing (timeouts, 5xx, record locks or rate limits) after every "
        "retry with backoff.\n"
        "Check: the ERP's status; the last error.\n"
        "Fix: once the ERP answers again, retry (retrying the group re-posts every waiting order).\n"
        "Escalate: ERP administrator / hosting provider."
    ),
    retry_handler=RETRY, sla=timedelta(hours=1),
))

TOTAL_MISMATCH = registry.register(ExceptionType(
    code="total_mismatch", team=Team.FINANCE, severity=Severity.HIGH, system="erp",
    title="Order {order_number} does not add up: ERP {erp_total} vs storefront {storefront_total}",
    runbook=(
        "What happened: the Sales Order we would send to the ERP does not total what the customer paid "
        "in the storefront (or its tax per rate differs from the storefront's tax lines), so it was NOT "
        "posted. Both breakdowns are shown line by line with the difference.\n"
        "Check: which line differs: an amount the storefront added that we do not map (a new kind of "
        "charge), a rounding rule, or an order the storefront itself stored inconsistently.\n"
        "Fix: correct the mapping or the order in the storefront, then retry; the check runs again.\n"
        "Escalate: the finance systems owner; never post it by hand with other figures."
    ),
    retry_handler=RETRY, sla=timedelta(hours=8),
))
ERP_TOTAL_MISMATCH = registry.register(ExceptionType(
    code="erp_total_mismatch", team=Team.FINANCE, severity=Severity.HIGH, system="erp",
    title="ERP booked order {order_number} at {erp_total}, the storefront says {storefront_total}",
    runbook=(
        "What happened: the Sales Order was posted with the storefront's total, but the total the ERP "
        "reports for it differs (the ERP recalculated tax or prices).\n"
        "Check: the ERP order's lines and tax against the breakdown shown here.\n"
        "Fix: correct the ERP order (or its tax / price settings) so it matches, then mark this resolved.\n"
        "Escalate: ERP administrator and the finance systems owner."
    ),
    sla=timedelta(hours=8),
))
EDITED_AFTER_POSTING = registry.register(ExceptionType(
    code="edited_after_posting", team=Team.OPS, severity=Severity.MEDIUM, system="erp",
    title="Order {order_number} was edited after it was posted",
    runbook=(
        "What happened: the storefront order changed (lines, quantities or amounts) after its Sales "
        "Order was created; the ERP order still shows the old content. What changed is listed here.\n"
        "Check: whether the warehouse has already picked the old content.\n"
        "Fix: amend the ERP Sales Order by hand (or cancel and re-create it), then resolve this.\n"
        "Escalate: ops lead."
    ),
    sla=timedelta(hours=4),
))
CANCEL_NOT_POSSIBLE = registry.register(ExceptionType(
    code="cancel_not_possible", team=Team.OPS, severity=Severity.HIGH, system="erp",
    title="Order {order_number} was cancelled in the storefront but not in the ERP",
    runbook=(
        "What happened: the customer's order was cancelled after its Sales Order was posted, and the "
        "ERP order could not be cancelled (something was already dispatched, or cancelling is off).\n"
        "Check: the ERP order's dispatch state; whether the parcel can still be stopped.\n"
        "Fix: stop or return the shipment and cancel / credit the ERP order by hand; retry cancels it "
        "when the ERP allows it.\n"
        "Escalate: warehouse operations lead."
    ),
    retry_handler="integrations.flows.orders.retry_cancel_exception", sla=timedelta(hours=2),
))
REFUND_PENDING = registry.register(ExceptionType(
    code="refund_pending", team=Team.FINANCE, severity=Severity.MEDIUM, system="erp",
    title="Refund on posted order {order_number} needs a credit memo",
    runbook=(
        "What happened: the storefront refunded (part of) an order that was already posted to the ERP. "
        "Ledgerline does not create credit memos yet (the refunds flow), so the refund is held here.\n"
        "Check: the refunded amount and lines in the context.\n"
        "Fix: raise the credit memo in the ERP, then resolve this with its number.\n"
        "Escalate: finance lead."
    ),
    sla=timedelta(days=2),
))
EVENT_STUCK = registry.register(ExceptionType(
    code="event_stuck", team=Team.OPS, severity=Severity.HIGH, system="ledgerline",
    title="Event {topic} for {resource_id} keeps failing",
    runbook=(
        "What happened: a stored storefront event could not be processed after every automatic retry. "
        "It is kept; nothing was lost.\n"
        "Check: the last error; the raw payload.\n"
        "Fix: correct the cause, then retry (the event is processed again).\n"
        "Escalate: the Ledgerline maintainers."
    ),
    retry_handler=RETRY_EVENT, sla=timedelta(hours=2),
))
POSTING_ERROR = registry.register(ExceptionType(
    code="posting_error", team=Team.OPS, severity=Severity.HIGH, system="ledgerline",
    title="Order {order_number} could not be posted: internal error",
    runbook=(
        "What happened: posting the order failed with an error Ledgerline did not expect (not an ERP "
        "answer, not a bad payload). Nothing was sent, or the ERP's answer is checked on the next try; "
        "the sweep re-posts it automatically with backoff.\n"
        "Check: the last error; the application log for the traceback (same time).\n"
        "Fix: once the cause is fixed, retry (or wait for the automatic re-post).\n"
        "Escalate: the Ledgerline maintainers."
    ),
    retry_handler=RETRY, sla=timedelta(hours=2),
))
