"""Exception types of the replenishment flow: each declared once with its team, runbook and retry."""
from datetime import timedelta

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team

RETRY_LINES = "integrations.flows.replenishment.retries.retry_unknown_item"
RETRY_SKU = "integrations.flows.replenishment.retries.retry_planner_sku"
RETRY_PLACE = "integrations.flows.replenishment.retries.retry_place"
RETRY_PULL = "integrations.flows.replenishment.retries.retry_pull"

PURCHASE_LINE_UNKNOWN_ITEM = registry.register(ExceptionType(
    code="purchase_line_unknown_item", team=Team.OPS, severity=Severity.HIGH, system="erp",
    title="Planner purchase order {reference}: SKU {sku} has no ERP item",
    runbook=(
        "What happened: a purchase order Inventory Planner recommends ({reference}, vendor {vendor}, warehouse "
        "{warehouse}) has a line for SKU {sku}, which resolves to no active item in the ERP. It cannot be approved "
        "until every line has an item; nothing was sent to the ERP.\n"
        "Check: is the SKU a typo in the planner's catalogue, a new product not yet in the ERP, or mapped to a "
        "retired item?\n"
        "Fix: add or correct the row under Mappings → SKUs for the Inventory Planner connection (or create the item "
        "in the ERP), then press Retry: the line is checked again and the recommendation can be approved.\n"
        "Escalate: merchandising if the item must be created in the ERP."
    ),
    retry_handler=RETRY_LINES, sla=timedelta(hours=8),
))
PLANNER_SKU_UNKNOWN = registry.register(ExceptionType(
    code="planner_sku_unknown", team=Team.OPS, severity=Severity.MEDIUM, system="erp",
    title="Inventory Planner SKU {sku} is unknown to the ERP",
    runbook=(
        "What happened: Inventory Planner ({connection}) plans SKU {sku} in warehouse {warehouse}, but no active "
        "ERP item answers to it, so anything the planner recommends for it cannot be ordered.\n"
        "Check: the planner's catalogue comes from the storefronts and the feeds; is the SKU mapped differently, "
        "or missing from the ERP's item master?\n"
        "Fix: map it under Mappings → SKUs for the Inventory Planner connection, or create the item in the ERP, "
        "then press Retry.\n"
        "Escalate: merchandising."
    ),
    retry_handler=RETRY_SKU, sla=timedelta(days=2),
))
PURCHASE_ORDER_NOT_RAISED = registry.register(ExceptionType(
    code="purchase_order_not_raised", team=Team.OPS, severity=Severity.HIGH, system="erp",
    title="Approved purchase order {reference} was not raised in the ERP",
    runbook=(
        "What happened: ops approved the planner's purchase order {reference} (vendor {vendor}, depot {depot}), "
        "but the ERP did not take it: it was down, or it refused the order (the error names the field). The "
        "approval is kept; nothing was ordered twice.\n"
        "Check: the last error. A refusal: is the depot right (Mappings → Depots for the Inventory Planner "
        "connection), does every item exist, is the currency one the ERP books?\n"
        "Fix: correct the cause, then press Retry: the order is raised once (the ERP keeps it unique by "
        "{external_reference}), and the planner is told.\n"
        "Escalate: purchasing lead."
    ),
    retry_handler=RETRY_PLACE, sla=timedelta(hours=4),
))
PLANNER_NOT_UPDATED = registry.register(ExceptionType(
    code="planner_not_updated", team=Team.OPS, severity=Severity.MEDIUM, system="inventory_planner",
    title="Inventory Planner not told about purchase order {reference}",
    runbook=(
        "What happened: the ERP holds purchase order {erp_po} for the planner's {reference}, but Inventory Planner "
        "could not be updated ({what}). Until it is, the planner may recommend the same stock again.\n"
        "Check: the last error. Is the API key still valid, or was the purchase order closed or deleted in the "
        "planner?\n"
        "Fix: once the planner answers, press Retry: it is told the status, the ERP number and what was received.\n"
        "Escalate: the Inventory Planner account owner."
    ),
    retry_handler=RETRY_PLACE, sla=timedelta(hours=8),
))
PLANNER_REJECTION_NOT_SENT = registry.register(ExceptionType(
    code="planner_rejection_not_sent", team=Team.OPS, severity=Severity.MEDIUM, system="inventory_planner",
    title="Inventory Planner not told that purchase order {reference} was rejected",
    runbook=(
        "What happened: ops rejected the planner's draft {reference} (vendor {vendor}, warehouse {warehouse}), but "
        "Inventory Planner could not be told (the draft is cancelled there, with the reason in its notes). Until it "
        "is, the planner counts the draft as stock on order. Nothing was sent to the ERP.\n"
        "Check: the last error. Is the API key still valid? Did someone order the draft in the planner meanwhile "
        "(then it is no longer a draft and is left as it is)?\n"
        "Fix: once the planner answers, press Retry (the five-minute sweep also tries again); if the draft was "
        "ordered in the planner, cancel it there by hand or keep it, then resolve this.\n"
        "Escalate: the Inventory Planner account owner."
    ),
    retry_handler=RETRY_PLACE, sla=timedelta(hours=8),
))
PLANNER_PULL_FAILED = registry.register(ExceptionType(
    code="planner_pull_failed", team=Team.OPS, severity=Severity.MEDIUM, system="inventory_planner",
    title="Recommendations from {connection} cannot be read",
    runbook=(
        "What happened: reading the recommended purchase orders from Inventory Planner ({connection}) failed: it "
        "refused the API key or account, or answered something we cannot read (the error names the field). "
        "Recommendations already here are kept; none is lost.\n"
        "Check: the connection's API key and account id (Connections), and the last error.\n"
        "Fix: correct the connection, then press Retry (the scheduled pull also tries again).\n"
        "Escalate: the Inventory Planner account owner."
    ),
    retry_handler=RETRY_PULL, sla=timedelta(hours=8),
))
