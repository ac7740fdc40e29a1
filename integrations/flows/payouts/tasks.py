"""django-q2 entry points of the payouts flow: load, call the flow, record the outcome."""
from .matching import payouts_rematch_open
from .shopify_import import payouts_import_all


def import_shopify_payouts() -> int:
    # Safe twice: payouts and transactions are found by their Shopify ids; a re-import changes nothing.
    return payouts_import_all()


def rematch_open_payouts() -> int:
    # Safe twice: each payout's lines are rebuilt whole under its row lock; locked payouts are skipped.
    return payouts_rematch_open()


def scan_settlement_folders() -> int:
    # Safe twice: a file already imported (same SHA-256 for the connection) imports nothing.
    from .settlement import settlement_folders_scan

    return settlement_folders_scan()
