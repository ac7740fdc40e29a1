"""Exception types of the fulfilment flow: each declared once with its team, runbook and retry."""
from datetime import timedelta

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team

RETRY_SEND = "integrations.flows.fulfilment.retries.retry_dispatch_exception"
RETRY_MATCH = "integrations.flows.fulfilment.retries.retry_dispatch_match"
RETRY_CARRIER = "integrations.flows.fulfilment.retries.retry_carrier_exception"
RETRY_EVENT = "integrations.flows.fulfilment.retries.retry_dispatch_event"

FULFILMENT_FAILED = registry.register(ExceptionType(
    code="fulfilment_failed", team=Team.OPS, severity=Severity.HIGH, system="storefront",
    title="{storefront} not told that order {order_number} was dispatched",
    runbook=(
        "What happened: the ERP confirmed a dispatch, but the storefront could not be updated (it was "
        "down or kept failing, or it refused the fulfilment). The customer has not been told yet. The "
        "dispatch is stored with its lines, carrier and tracking number (see the context); nothing is lost.\n"
        "Check: the last error. An outage: is the storefront answering again? A refusal: was the order "
        "fulfilled, edited, cancelled or moved to another location in the storefront meanwhile?\n"
        "Fix: once the storefront answers (or the order is corrected there), press Retry: the fulfilment is "
        "made once, with the tracking details kept here, and the customer is notified once.\n"
        "Escalate: e-commerce platform owner if the storefront keeps refusing."
    ),
    retry_handler=RETRY_SEND, sla=timedelta(hours=2),
))
DISPATCH_WITHOUT_ORDER = registry.register(ExceptionType(
    code="dispatch_without_order", team=Team.OPS, severity=Severity.MEDIUM, system="erp",
    title="ERP dispatch {dispatch} is for an order Ledgerline does not know",
    runbook=(
        "What happened: the ERP confirmed a dispatch for Sales Order {sales_order} (reference "
        "{external_reference}), but no storefront order posted by Ledgerline has it. No storefront was told.\n"
        "Check: was the Sales Order keyed by hand in the ERP, or posted before Ledgerline ran?\n"
        "Fix: if it belongs to a storefront order, link it (or post the order), then retry; otherwise ignore.\n"
        "Escalate: warehouse operations lead."
    ),
    retry_handler=RETRY_MATCH, sla=timedelta(hours=8),
))
UNMAPPED_CARRIER = registry.register(ExceptionType(
    code="unmapped_carrier", team=Team.ECOMMERCE, severity=Severity.LOW, system="storefront",
    title="Carrier {carrier} has no tracking company for {storefront}",
    runbook=(
        "What happened: a dispatch went with a carrier the ERP names \"{carrier}\", which is not mapped to a "
        "tracking company the storefront knows. The storefront was told with the ERP's name and tracking URL, "
        "so the customer still got a link, but the storefront cannot track the parcel itself.\n"
        "Fix: add the row under Mappings → Carriers (e.g. \"RM48\" → \"Royal Mail\"), then retry: later "
        "dispatches use it.\n"
        "Escalate: e-commerce platform owner."
    ),
    retry_handler=RETRY_CARRIER, sla=timedelta(days=3),
))
DISPATCH_WEBHOOK_UNREADABLE = registry.register(ExceptionType(
    code="dispatch_webhook_unreadable", team=Team.OPS, severity=Severity.MEDIUM, system="erp",
    title="A dispatch webhook from {erp} cannot be read",
    runbook=(
        "What happened: the ERP sent a signed dispatch webhook whose content we cannot read. The raw event is "
        "stored; the poller still reads the ERP's dispatches, so the dispatch arrives that way too.\n"
        "Check: the error names the field; compare it with the stored payload.\n"
        "Fix: nothing is needed if the dispatch shows on its order; otherwise ask the ERP team, then retry.\n"
        "Escalate: ERP integration owner."
    ),
    retry_handler=RETRY_EVENT, sla=timedelta(hours=8),
))
