"""PSP settlement reports for commercetools (which has no payouts of its own: the PSP settles): Stripe's
itemized payout reconciliation report and Adyen's settlement details report, uploaded in the browser
or dropped in a watched folder, become payouts and balance transactions, all or nothing.

Stripe (`payout_reconciliation.itemized.*`, CSV with a header line, amounts in major units): one row per
balance transaction, `automatic_payout_id` naming its payout and `automatic_payout_effective_at` its
date; `balance_transaction_id`, `reporting_category` (charge, refund, dispute, dispute_reversal, fee,
risk_reserved_funds, other_adjustment, payout, ...), `currency`, `gross`, `fee`, `net`, `source_id`,
`payment_intent_id` / `charge_id` when it exports them, `created_utc`; for a charge, refund or dispute
in another currency `customer_facing_amount` (major units) and `customer_facing_currency`: what the
customer paid before Stripe converted it (the report has no rate: it is implied by the two amounts).
Adyen (settlement_detail_report_batch_N.csv): one row per journal entry of one payable batch, `Batch
Number`; `Type` (Settled, Refunded, Chargeback, SecondChargeback, ChargebackReversed, RefundedReversed,
Fee, MiscCosts, PaymentCost, InvoiceDeduction, DepositCorrection, Balancetransfer, ManualCorrected,
MerchantPayout), `Psp Reference` (the payment), `Modification Reference` (the capture or refund),
`Net Currency`, `Net Debit (NC)` / `Net Credit (NC)`, the fees `Commission (NC)`, `Markup (NC)`,
`Scheme Fees (NC)`, `Interchange (NC)`, `Creation Date`; and what the shopper paid: `Gross Currency`,
`Gross Debit (GC)` / `Gross Credit (GC)` and the `Exchange Rate` Adyen converted it at (GC x rate = NC).
A row's direction is taken from its net columns (some exports put a Settled row's gross in the debit
column), so the gross-currency amount carries the sign of the settled amount.

Each row is matched to the commercetools payment it settles by the payment's `interfaceId` (the PSP's
payment reference) or a transaction's `interactionId` (the PSP's capture/refund reference).
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone as dj_timezone

from exceptions_queue.services import exception_raise
from integrations.domain import to_minor_units
from integrations.models import BalanceTransaction, Connection, Payout, SettlementFile

from .bulk import analyze_if_large, rows_insert
from .exception_types import SETTLEMENT_FILE_REJECTED

log = logging.getLogger(__name__)
MAX_FILE_BYTES = 50 * 1024 * 1024
Layout = SettlementFile.Layout

STRIPE_REQUIRED = ("automatic_payout_id", "automatic_payout_effective_at", "balance_transaction_id", "currency",
                   "gross", "fee", "net", "reporting_category")
STRIPE_CATEGORIES = {
    "charge": "charge", "charge_failure": "charge", "partial_capture_reversal": "charge",
    "refund": "refund", "refund_failure": "refund",
    "dispute": "dispute", "dispute_reversal": "dispute_reversal",
    "risk_reserved_funds": "reserve", "connect_reserved_funds": "reserve",
    "other_adjustment": "adjustment", "fee": "fee", "network_cost": "fee", "tax": "fee",
    "payout": "payout", "payout_reversal": "payout", "currency_conversion": "currency_conversion",
}
ADYEN_REQUIRED = ("Psp Reference", "Type", "Modification Reference", "Net Currency", "Net Debit (NC)",
                  "Net Credit (NC)", "Batch Number", "Creation Date")
ADYEN_FEES = ("Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)")
ADYEN_TYPES = {
    "Settled": "charge", "Refunded": "refund", "RefundedReversed": "refund",
    "Chargeback": "dispute", "SecondChargeback": "dispute", "ChargebackReversed": "dispute_reversal",
    "Fee": "fee", "MiscCosts": "fee", "PaymentCost": "fee", "InvoiceDeduction": "fee",
    "DepositCorrection": "reserve", "Balancetransfer": "adjustment", "ManualCorrected": "adjustment",
    "MerchantPayout": "payout",
}


class SettlementFileError(ValueError):
    """The file cannot be imported; the message names the row (as a spreadsheet numbers it) and column."""


@dataclass
class _Row:
    payout_key: str
    payout_date: date
    external_id: str
    type: str
    currency: str
    amount_minor: int
    fee_minor: int
    net_minor: int
    source_type: str
    source_id: str  # the PSP's payment reference: a commercetools payment's interfaceId
    interaction_id: str  # the PSP's capture/refund reference: a transaction's interactionId
    when: datetime | None
    raw: dict = field(default_factory=dict)
    presentment_amount_minor: int | None = None  # in presentment_currency, when the PSP converted
    presentment_currency: str = ""
    exchange_rate: Decimal | None = None


def detect_layout(header: list[str]) -> str:
    names = {h.strip() for h in header}
    if {"automatic_payout_id", "balance_transaction_id"} <= names:
        return Layout.STRIPE_PAYOUT_RECONCILIATION
    if {"Psp Reference", "Batch Number", "Modification Reference"} <= names:
        return Layout.ADYEN_SETTLEMENT_DETAILS
    raise SettlementFileError("row 1: the header is neither Stripe's itemized payout reconciliation report "
                              "(automatic_payout_id, balance_transaction_id, ...) nor Adyen's settlement details "
                              "report (Psp Reference, Batch Number, Modification Reference, ...)")


def _amount(row: dict, column: str, currency: str, line: int, *, blank_zero: bool = False) -> int:
    text = (row.get(column) or "").strip().replace(",", "") if row.get(column) is not None else ""
    if not text:
        if blank_zero:
            return 0
        raise SettlementFileError(f"row {line}, column {column!r}: an amount is required")
    try:
        return to_minor_units(Decimal(text), currency)
    except (InvalidOperation, ValueError):
        raise SettlementFileError(f"row {line}, column {column!r}: {text!r} is not an amount in {currency}") from None


def _currency(row: dict, column: str, line: int) -> str:
    value = (row.get(column) or "").strip().upper()
    if len(value) != 3 or not value.isalpha():
        raise SettlementFileError(f"row {line}, column {column!r}: {value!r} is not a currency code")
    return value


def _moment(row: dict, column: str, line: int, *, required: bool = True) -> datetime | None:
    text = (row.get(column) or "").strip()
    if not text:
        if required:
            raise SettlementFileError(f"row {line}, column {column!r}: a date is required")
        return None
    try:
        if text.isdigit():  # Stripe may export Unix timestamps
            return datetime.fromtimestamp(int(text), tz=timezone.utc)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SettlementFileError(f"row {line}, column {column!r}: {text!r} is not a date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _signed_like(amount: int, like: int) -> int:
    return -abs(amount) if like < 0 else abs(amount)


def _presentment(row: dict, line: int, settled_currency: str, settled: int, *, currency_column: str,
                 amount_columns: tuple[str, ...], rate_column: str = "") -> tuple[int | None, str, Decimal | None]:
    """(amount, currency, rate) the customer paid in, when the file says the PSP converted it; else
    (None, "", None). An amount column holds a credit, or (with two) credit then debit."""
    currency_text = (row.get(currency_column) or "").strip()
    if not currency_text or not any((row.get(c) or "").strip() for c in amount_columns):
        return None, "", None
    currency = _currency(row, currency_column, line)
    if currency == settled_currency:
        return None, "", None
    amount = _amount(row, amount_columns[0], currency, line, blank_zero=True)
    if len(amount_columns) > 1:
        amount -= _amount(row, amount_columns[1], currency, line, blank_zero=True)
    rate = None
    text = (row.get(rate_column) or "").strip() if rate_column else ""
    if text:
        try:
            rate = Decimal(text.replace(",", ""))
        except InvalidOperation:
            rate = None
        if rate is None or not rate.is_finite() or rate <= 0:
            raise SettlementFileError(f"row {line}, column {rate_column!r}: {text!r} is not an exchange rate")
    return _signed_like(amount, settled), currency, rate


def _text(row: dict, column: str, line: int) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise SettlementFileError(f"row {line}, column {column!r}: a value is required")
    return value


def _check_columns(header: list[str], required) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise SettlementFileError(f"row 1: the column(s) {', '.join(repr(c) for c in missing)} are missing")


def parse_stripe(reader: csv.DictReader) -> list[_Row]:
    _check_columns(reader.fieldnames or [], STRIPE_REQUIRED)
    rows = []
    for line, row in enumerate(reader, start=2):
        category = _text(row, "reporting_category", line)
        currency = _currency(row, "currency", line)
        gross = _amount(row, "gross", currency, line)
        fee = _amount(row, "fee", currency, line)
        net = _amount(row, "net", currency, line)
        if gross - fee != net:
            raise SettlementFileError(f"row {line}, column 'net': {row['net']} is not gross {row['gross']} "
                                      f"less fee {row['fee']}")
        effective = _moment(row, "automatic_payout_effective_at", line)
        presented, presented_in, _ = _presentment(row, line, currency, gross, currency_column="customer_facing_currency",
                                                  amount_columns=("customer_facing_amount",))
        rows.append(_Row(
            payout_key=_text(row, "automatic_payout_id", line), payout_date=effective.date(),
            external_id=_text(row, "balance_transaction_id", line), type=STRIPE_CATEGORIES.get(category, "other"),
            currency=currency, amount_minor=gross, fee_minor=fee, net_minor=net, source_type=category,
            source_id=(row.get("payment_intent_id") or row.get("charge_id") or row.get("source_id") or "").strip(),
            interaction_id=(row.get("source_id") or row.get("charge_id") or "").strip(),
            when=_moment(row, "created_utc", line, required=False) or effective, raw=dict(row),
            presentment_amount_minor=presented, presentment_currency=presented_in))
    return rows


def parse_adyen(reader: csv.DictReader) -> list[_Row]:
    _check_columns(reader.fieldnames or [], ADYEN_REQUIRED)
    rows = []
    merchant_account = ""
    for line, row in enumerate(reader, start=2):
        kind_name = _text(row, "Type", line)
        if kind_name not in ADYEN_TYPES:
            raise SettlementFileError(f"row {line}, column 'Type': {kind_name!r} is not a settlement record type")
        currency = _currency(row, "Net Currency", line)
        net = (_amount(row, "Net Credit (NC)", currency, line, blank_zero=True)
               - _amount(row, "Net Debit (NC)", currency, line, blank_zero=True))
        fee = sum(_amount(row, column, currency, line, blank_zero=True) for column in ADYEN_FEES if column in row)
        batch = _text(row, "Batch Number", line)
        merchant_account = (row.get("Merchant Account") or merchant_account or "").strip()
        when = _moment(row, "Creation Date", line)
        kind = ADYEN_TYPES[kind_name]
        if kind == "reserve" and net > 0:
            kind = "reserve_release"
        if kind == "fee":  # a fee record carries its cost in the net columns
            fee, amount = 0, net
        else:
            amount = net + fee
        psp = (row.get("Psp Reference") or "").strip()
        modification = (row.get("Modification Reference") or "").strip()
        presented, presented_in, rate = (None, "", None) if kind == "fee" else _presentment(
            row, line, currency, amount, currency_column="Gross Currency",
            amount_columns=("Gross Credit (GC)", "Gross Debit (GC)"), rate_column="Exchange Rate")
        rows.append(_Row(
            payout_key=f"{merchant_account}:{batch}", payout_date=when.date(),
            external_id=f"{psp or 'batch' + batch}:{modification or line}:{kind_name}", type=kind,
            currency=currency, amount_minor=amount, fee_minor=fee, net_minor=net, source_type=kind_name,
            source_id=psp, interaction_id=modification, when=when, raw=dict(row),
            presentment_amount_minor=presented, presentment_currency=presented_in, exchange_rate=rate))
    return rows


def parse_settlement(data: bytes) -> tuple[str, list[_Row]]:
    """(layout, rows) of a settlement file; SettlementFileError names the row and column at fault."""
    if len(data) > MAX_FILE_BYTES:
        raise SettlementFileError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SettlementFileError("the file is not UTF-8 text (export the report as CSV)") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise SettlementFileError("row 1: the file is empty")
    reader.fieldnames = [name.strip() for name in reader.fieldnames]
    layout = detect_layout(reader.fieldnames)
    try:
        rows = parse_stripe(reader) if layout == Layout.STRIPE_PAYOUT_RECONCILIATION else parse_adyen(reader)
    except csv.Error as exc:
        raise SettlementFileError(f"row {reader.line_num}: {exc}") from None
    if not rows:
        raise SettlementFileError("the file has a header but no rows")
    return layout, rows


_STORED_FIELDS = ("payout_id", "connection_id", "external_id", "type", "source_type", "source_id",
                  "source_order_transaction_id", "storefront_order_id", "amount_minor", "fee_minor", "net_minor",
                  "currency", "transaction_date", "raw", "presentment_amount_minor", "presentment_currency",
                  "exchange_rate")


def _store(connection: Connection, rows: list[_Row], orders: dict[str, str]) -> set[int]:
    """Payouts and balance transactions of the rows; a row already stored (same id) is left as it is."""
    by_payout: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        by_payout[row.payout_key].append(row)
    touched, inserted = set(), 0
    for key, group in by_payout.items():
        currencies = {r.currency for r in group}
        if len(currencies) > 1:
            raise SettlementFileError(f"payout {key} mixes currencies {sorted(currencies)}")
        settled = [r for r in group if r.type != "payout"]
        payout, created = Payout.objects.get_or_create(
            connection=connection, external_id=key,
            defaults={"source": Payout.Source.SETTLEMENT_FILE, "currency": group[0].currency,
                      "amount_minor": sum(r.net_minor for r in settled),
                      "gross_minor": sum(r.amount_minor for r in settled),
                      "fee_minor": sum(r.fee_minor for r in settled),
                      "payout_date": max(r.payout_date for r in group),
                      "period": max(r.payout_date for r in group).replace(day=1)})
        if payout.locked:
            continue
        known = set(BalanceTransaction.objects.filter(connection=connection, external_id__in=[r.external_id for r in group])
                    .values_list("external_id", flat=True))
        # Tuples in one statement (COPY on PostgreSQL), not a model instance per row: a month is 100,000 rows.
        inserted += rows_insert(BalanceTransaction, _STORED_FIELDS, (
            (payout.pk, connection.pk, r.external_id, r.type, r.source_type, r.source_id, r.interaction_id,
             orders.get(r.interaction_id) or orders.get(r.source_id) or "", r.amount_minor, r.fee_minor,
             r.net_minor, r.currency, r.when, r.raw, r.presentment_amount_minor, r.presentment_currency,
             r.exchange_rate)
            for r in group if r.external_id not in known))
        if not created:  # a later file of the same batch adds to it: the payout is what all its rows settle
            stored = list(payout.balance_transactions.exclude(type="payout").values_list("net_minor", "amount_minor", "fee_minor"))
            payout.amount_minor = sum(s[0] for s in stored)
            payout.gross_minor = sum(s[1] for s in stored)
            payout.fee_minor = sum(s[2] for s in stored)
            payout.save()
        touched.add(payout.pk)
    analyze_if_large(BalanceTransaction, inserted)
    return touched


def settlement_file_import(connection: Connection, name: str, data: bytes, user=None) -> SettlementFile:
    """Import one settlement report for a commercetools connection. The same file twice imports
    nothing (it is found by its SHA-256); a file with a bad row imports nothing and is recorded as
    failed with the row and column named (and a finance exception)."""
    digest = hashlib.sha256(data).hexdigest()
    existing = SettlementFile.objects.filter(connection=connection, sha256=digest).first()
    if existing is not None and existing.status == SettlementFile.Status.IMPORTED:
        return existing
    record = existing or SettlementFile(connection=connection, sha256=digest)
    record.name, record.uploaded_by, record.uploaded_at = name[:255], user, dj_timezone.now()
    try:
        layout, rows = parse_settlement(data)
        record.layout = layout
        # Asked before the transaction opens, so no database lock waits on the network.
        orders = _order_lookup(connection, {r.source_id for r in rows}, {r.interaction_id for r in rows})
        with transaction.atomic():
            touched = _store(connection, rows, orders)
            record.status, record.rows, record.error = SettlementFile.Status.IMPORTED, len(rows), ""
            record.save()
    except (SettlementFileError, IntegrityError) as exc:
        record.layout = record.layout or Layout.STRIPE_PAYOUT_RECONCILIATION
        record.status, record.rows, record.error = SettlementFile.Status.FAILED, 0, str(exc)
        record.save()
        exception_raise(exc_type=SETTLEMENT_FILE_REJECTED, key=f"{connection.pk}:{digest}", fingerprint=digest,
                        message=f"{name}: {exc}", context={"name": name}, subject=("connection", str(connection.pk)))
        log.warning("settlement file %s of %s refused: %s", name, connection.code, exc)
        return record
    from .matching import payout_match

    for payout_id in sorted(touched):
        payout_match(payout_id)
    return record


def _order_lookup(connection: Connection, interface_ids: set[str], interaction_ids: set[str]) -> dict[str, str]:
    """{PSP reference: commercetools order id}, through the payments that carry those references. When
    commercetools cannot be asked, {}: the rows are stored without their order, shown as unknown
    orders, and looked up again before each re-match."""
    from integrations.connectors import connector_for
    from integrations.connectors.base import ConnectorError
    from integrations.connectors.commercetools.payments import orders_for_psp_references

    interface_ids, interaction_ids = interface_ids - {""}, interaction_ids - {""}
    if not interface_ids and not interaction_ids:
        return {}
    try:
        return orders_for_psp_references(connector_for(connection), interface_ids=interface_ids,
                                         interaction_ids=interaction_ids)
    except (ConnectorError, ValueError) as exc:
        log.warning("settlement rows of %s not matched to commercetools payments yet: %s", connection.code, exc)
        return {}


def _resolve_orders(connection: Connection, payout_ids) -> None:
    """Name the commercetools order of each stored row that has none yet."""

    pending = list(BalanceTransaction.objects.filter(payout_id__in=payout_ids, storefront_order_id="")
                   .exclude(source_id="", source_order_transaction_id="").only("id", "source_id",
                                                                             "source_order_transaction_id"))
    if not pending:
        return
    found = _order_lookup(connection, {bt.source_id for bt in pending},
                          {bt.source_order_transaction_id for bt in pending})
    pending = [bt for bt in pending if found.get(bt.source_order_transaction_id) or found.get(bt.source_id)]
    for bt in pending:
        order_id = found.get(bt.source_order_transaction_id) or found.get(bt.source_id)
        if order_id:
            bt.storefront_order_id = order_id
    BalanceTransaction.objects.bulk_update(pending, ["storefront_order_id"], batch_size=2000)


def settlement_orders_resolve_open() -> None:
    """Rows of open settlement payouts whose order is not named yet (the PSP settled before the payment
    reached commercetools, or it did not answer): looked up again before each re-match."""
    from .matching import REMATCH_STATUSES

    open_payouts = defaultdict(set)
    for payout_id, connection_id in (Payout.objects.filter(source=Payout.Source.SETTLEMENT_FILE,
                                                           status__in=REMATCH_STATUSES,
                                                           balance_transactions__storefront_order_id="")
                                     .values_list("pk", "connection_id").distinct()):
        open_payouts[connection_id].add(payout_id)
    for connection in Connection.objects.filter(pk__in=open_payouts):
        _resolve_orders(connection, open_payouts[connection.pk])


def settlement_folders_scan() -> int:
    """Import every new file in each commercetools connection's watched folder (its `settlement_folder`
    setting). Files are never moved or deleted: one already seen is recognised by its SHA-256."""
    imported = 0
    for connection in Connection.objects.filter(kind="commercetools", active=True):
        folder = (connection.settings or {}).get("settlement_folder")
        if not folder:
            continue
        directory = Path(folder)
        if not directory.is_dir():
            log.warning("settlement folder %s of %s does not exist", folder, connection.code)
            continue
        for path in sorted(directory.glob("*.csv")):
            data = path.read_bytes()
            if SettlementFile.objects.filter(connection=connection, sha256=hashlib.sha256(data).hexdigest()).exists():
                continue  # imported, or refused (an exception says why): a new export has a new digest
            record = settlement_file_import(connection, path.name, data)
            imported += record.status == SettlementFile.Status.IMPORTED
    return imported
