"""Exception types of the Inventory Planner feeds: each declared once with its team, runbook and retry."""
from datetime import timedelta

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team

PLANNER_UNKNOWN_SKU = registry.register(ExceptionType(
    code="planner_unknown_sku", team=Team.OPS, severity=Severity.MEDIUM, system="inventory_planner",
    title="Inventory Planner does not know {item_code} ({what})",
    runbook=(
        "What happened: an order line or a stock update names an ERP item that is not in the catalogue "
        "Ledgerline sends to Inventory Planner (the ERP's item list), so the planner would not know the "
        "variant. The rows are held back from the feed (nothing is lost) and its demand is missing from "
        "the forecast until this is fixed.\n"
        "Check: the SKU mapping (Mappings → SKUs, kits' components) and whether the item exists and is "
        "active in the ERP.\n"
        "Fix: correct the mapping or create the item in the ERP, then retry: the held rows go out with the "
        "next feed.\n"
        "Escalate: merchandising, who own the planner's catalogue."
    ),
    retry_handler="integrations.flows.planner_feeds.retry_unknown_sku_exception", sla=timedelta(hours=24),
))

PLANNER_FEED_FAILED = registry.register(ExceptionType(
    code="planner_feed_failed", team=Team.OPS, severity=Severity.HIGH, system="inventory_planner",
    title="The Inventory Planner feed of {connection} could not be uploaded",
    runbook=(
        "What happened: the nightly upload of incremental files to Inventory Planner's SFTP server failed "
        "after its retries (the error is shown). The feed's cursor did not move: nothing is lost, the next "
        "upload sends these changes too.\n"
        "Check: the connection's SFTP settings (host, port, user, directory, known host key) and its "
        "password or key; whether the server is reachable.\n"
        "Fix: repair the connection, then retry: the same files are sent again (files already uploaded "
        "are not sent twice).\n"
        "Escalate: the admin who owns the Inventory Planner connection. Upload at least an hour before the "
        "planner's nightly sync, or the day's demand arrives a day late."
    ),
    retry_handler="integrations.flows.planner_feeds.retry_feed_exception", sla=timedelta(hours=8),
))
