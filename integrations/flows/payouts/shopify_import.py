"""Shopify Payments payouts and balance transactions into Ledgerline, by cursor and idempotently: a
payout or transaction is found by its Shopify id, and a re-import changes only what Shopify changed
(a payout's status; a transaction once paid out, its payout). A locked (approved/posted) payout is
never changed. Each imported or changed payout that is not locked is matched again."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from django.db import transaction
from django.utils import timezone

from exceptions_queue.services import exception_raise
from integrations.connectors.base import ConnectorError
from integrations.connectors.shopify import payments as vendor
from integrations.models import BalanceTransaction, Connection, Payout

from .exception_types import PAYOUTS_IMPORT_FAILED

log = logging.getLogger(__name__)

_PAYOUT_FIELDS = ("currency", "amount_minor", "gross_minor", "fee_minor", "payout_date")
_TRANSACTION_FIELDS = ("type", "source_type", "source_id", "source_order_transaction_id", "storefront_order_id",
                       "amount_minor", "fee_minor", "net_minor", "currency", "adjustment_reason", "test",
                       "transaction_date", "raw")


@dataclass
class PayoutImport:
    payouts_created: int = 0
    payouts_changed: int = 0
    transactions_created: int = 0
    transactions_changed: int = 0
    touched: set[int] = field(default_factory=set)  # payout ids whose reconciliation may have changed

    @property
    def changed_anything(self) -> bool:
        return bool(self.payouts_created or self.payouts_changed or self.transactions_created
                    or self.transactions_changed)


def _payout_upsert(connection: Connection, row: vendor.PaymentsPayout, result: PayoutImport) -> Payout:
    values = {"currency": row.currency, "amount_minor": row.amount_minor, "gross_minor": row.gross_minor,
              "fee_minor": row.fee_minor, "payout_date": row.payout_date}
    payout = Payout.objects.filter(connection=connection, external_id=row.external_id).first()
    if payout is None:
        payout = Payout(connection=connection, external_id=row.external_id, source=Payout.Source.SHOPIFY_PAYMENTS,
                        period=row.payout_date.replace(day=1), **values)
        payout.full_clean()
        payout.save()
        result.payouts_created += 1
        result.touched.add(payout.pk)
        return payout
    if payout.locked:
        return payout  # approved or posted: what finance signed off stays as it was
    changed = [name for name in _PAYOUT_FIELDS if getattr(payout, name) != values[name]]
    if changed:
        for name in changed:
            setattr(payout, name, values[name])
        payout.period = payout.payout_date.replace(day=1)
        payout.save()
        result.payouts_changed += 1
        result.touched.add(payout.pk)
    return payout


def _transaction_upsert(connection: Connection, row: vendor.PaymentsBalanceTransaction,
                        payouts: dict[str, Payout], result: PayoutImport) -> None:
    payout = payouts.get(row.payout_external_id) if row.payout_external_id else None
    values = {name: getattr(row, name) for name in _TRANSACTION_FIELDS}
    existing = BalanceTransaction.objects.filter(connection=connection, external_id=row.external_id).first()
    if existing is None:
        created = BalanceTransaction(connection=connection, external_id=row.external_id, payout=payout, **values)
        created.save()
        result.transactions_created += 1
        if payout is not None:
            result.touched.add(payout.pk)
        return
    if existing.payout_id and existing.payout.locked:
        return
    if payout is not None and payout.locked:
        return
    changed = [name for name in _TRANSACTION_FIELDS if getattr(existing, name) != values[name]]
    if (payout.pk if payout else None) != existing.payout_id:
        changed.append("payout")
        if existing.payout_id:
            result.touched.add(existing.payout_id)
    if changed:
        for name in changed:
            setattr(existing, name, payout if name == "payout" else values[name])
        existing.save(update_fields=changed)
        result.transactions_changed += 1
        if payout is not None:
            result.touched.add(payout.pk)


def payouts_import_shopify(*, connection: Connection, client=None, since: date | None = None,
                           match: bool = True) -> PayoutImport:
    """Read the shop's payouts and balance transactions (since a date, or all) and store them; match
    each payout whose figures changed. A failure to read becomes a finance exception (retried)."""
    from integrations.connectors import connector_for

    client = client or connector_for(connection)
    result = PayoutImport()
    try:
        payouts_read = list(vendor.payouts_since(client, since))
        transactions_read = list(vendor.balance_transactions_since(client, since))
    except (ConnectorError, ValueError) as exc:
        log.warning("payouts import of %s failed: %s", connection.code, exc)
        exception_raise(exc_type=PAYOUTS_IMPORT_FAILED, key=f"{connection.pk}", fingerprint=f"{connection.pk}",
                        message=str(exc), context={"connection": connection.name},
                        subject=("connection", str(connection.pk)),
                        retry_args={"connection_id": connection.pk, "since": since.isoformat() if since else ""})
        raise
    with transaction.atomic():
        payouts = {row.external_id: _payout_upsert(connection, row, result) for row in payouts_read}
        # A transaction may name a payout older than `since`: look it up among those already stored.
        named = {row.payout_external_id for row in transactions_read if row.payout_external_id} - set(payouts)
        payouts.update({p.external_id: p for p in Payout.objects.filter(connection=connection, external_id__in=named)})
        for row in transactions_read:
            _transaction_upsert(connection, row, payouts, result)
    if match and result.touched:
        from .matching import payout_match

        for payout_id in sorted(result.touched):
            payout_match(payout_id)
    log.info("payouts import of %s: %s", connection.code, result)
    return result


def payouts_import_all() -> int:
    """Every active Shopify connection's payouts since the start of last month (the schedule's entry point),
    for the shops whose connection has the payouts flow enabled (it needs a scope shops grant apart)."""
    from integrations.onboarding.requirements import enabled_flows

    since = timezone.now().date().replace(day=1)
    since = (since.replace(year=since.year - 1, month=12) if since.month == 1 else since.replace(month=since.month - 1))
    count = 0
    for connection in Connection.objects.filter(kind="shopify", active=True):
        if "payouts" not in {flow.flow for flow in enabled_flows(connection)}:
            continue
        try:
            payouts_import_shopify(connection=connection, since=since)
            count += 1
        except (ConnectorError, ValueError):
            continue  # raised as an exception for finance, retried from there
    return count
