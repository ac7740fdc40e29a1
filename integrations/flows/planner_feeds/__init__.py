"""Inventory Planner demand out: the CSV connector's snapshot files (served at permanent,
authenticated URLs) and the Advanced CSV connector's incremental files (uploaded over SFTP), both
built from Ledgerline's own data: posted orders and their returns, the SKU and kit mappings, the ERP
item master and stock. collect.py brings the feed tables up to date, files.py writes the files,
runs.py serves and uploads them; exception_types.py declares what becomes an exception."""
from .collect import (
    held_rows_release, planner_catalogue_refresh, planner_feeds_refresh, planner_sales_collect,
)
from .exception_types import PLANNER_FEED_FAILED, PLANNER_UNKNOWN_SKU
from .runs import planner_feeds_scheduled, planner_increment_run, retry_feed_exception, snapshot_stream
from .settings import feed_password_set


def retry_unknown_sku_exception(record) -> bool:
    """Read the ERP's catalogue again; the held rows go out once the planner's catalogue has the item."""
    from integrations.models import InventoryLevel
    from integrations.models.planner_feeds import PlannerItem, PlannerSalesLine

    item = (record.retry_args or {}).get("item_code", "")
    planner_catalogue_refresh()
    if not PlannerItem.objects.filter(item_code=item, removed=False).exists():
        return False
    held_rows_release(item_code=item)
    return not PlannerSalesLine.objects.filter(item_code=item, held=True).exists()


__all__ = [
    "PLANNER_FEED_FAILED", "PLANNER_UNKNOWN_SKU", "feed_password_set", "held_rows_release",
    "planner_catalogue_refresh", "planner_feeds_refresh", "planner_feeds_scheduled", "planner_increment_run",
    "planner_sales_collect", "retry_feed_exception", "retry_unknown_sku_exception", "snapshot_stream",
]
