"""Payout reconciliation: what the storefront's payment provider paid out (Shopify Payments, PSP
settlement files for commercetools), matched to what the ERP booked."""
from .exception_types import PAYOUTS_IMPORT_FAILED, SETTLEMENT_FILE_REJECTED
from .matching import payout_match, payout_rematch, payout_totals, payouts_rematch_open
from .settlement import SettlementFileError, settlement_file_import, settlement_folders_scan
from .shopify_import import payouts_import_all, payouts_import_shopify


def retry_payouts_import_exception(record) -> bool:
    """A person retries a failed import: it runs again now (a re-import changes nothing already stored)."""
    from datetime import date

    from integrations.connectors.base import ConnectorError
    from integrations.models import Connection

    connection = Connection.objects.filter(pk=record.retry_args.get("connection_id")).first()
    if connection is None:
        return False
    since = record.retry_args.get("since") or ""
    try:
        payouts_import_shopify(connection=connection, since=date.fromisoformat(since) if since else None)
    except (ConnectorError, ValueError):
        return False
    return True


__all__ = [
    "PAYOUTS_IMPORT_FAILED", "SETTLEMENT_FILE_REJECTED", "payout_match", "payout_rematch", "payout_totals",
    "SettlementFileError", "payouts_import_all", "payouts_import_shopify", "payouts_rematch_open",
    "retry_payouts_import_exception", "settlement_file_import", "settlement_folders_scan",
]
