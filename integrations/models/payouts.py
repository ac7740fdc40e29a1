"""Payouts (what a storefront's payment provider paid to the bank), the balance transactions behind them,
PSP settlement files, and the reconciliation of each payout against the ERP. Money is integer minor units."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from .connections import Connection
from .orders import OrderLink
from .refunds import Refund


def _money(minor: int | None, currency: str) -> str:
    from ..domain import format_amount, from_minor_units

    if minor is None or not currency:
        return "—"
    return f"{format_amount(from_minor_units(minor, currency), currency)} {currency}"


class Payout(models.Model):
    """One payout to the bank: a Shopify Payments payout, or a PSP settlement batch from a settlement file."""

    class Source(models.TextChoices):
        SHOPIFY_PAYMENTS = "shopify_payments", "Shopify Payments"
        SETTLEMENT_FILE = "settlement_file", "Settlement file"

    class Status(models.TextChoices):
        IMPORTED = "imported", "Imported"
        MATCHED = "matched", "Matched"
        VARIANCE = "variance", "Variance"
        APPROVED = "approved", "Approved"
        POSTED = "posted", "Posted"
        REJECTED = "rejected", "Rejected"
        SENT_BACK = "sent_back", "Sent back"

    # Once approved (or posted) a reconciliation is locked: matching and imports leave it alone.
    LOCKED = frozenset({Status.APPROVED, Status.POSTED})

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="payouts")
    source = models.CharField(max_length=20, choices=Source.choices)
    external_id = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IMPORTED, db_index=True)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()  # net paid to the bank
    gross_minor = models.BigIntegerField(default=0)
    fee_minor = models.BigIntegerField(default=0)
    payout_date = models.DateField(db_index=True)
    period = models.DateField(db_index=True)  # first day of the payout's month, for month-end
    imported_at = models.DateTimeField(default=timezone.now)
    matched_at = models.DateTimeField(null=True, blank=True)
    test = models.BooleanField(default=False)
    # Approval (the approval flow owns these).
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    journal_reference = models.CharField(max_length=200, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-payout_date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="uniq_payout"),
        ]

    def __str__(self) -> str:
        return f"payout {self.external_id}"

    def save(self, *args, **kwargs):
        if self.payout_date and not self.period:
            self.period = self.payout_date.replace(day=1)
        super().save(*args, **kwargs)

    @property
    def locked(self) -> bool:
        return self.status in self.LOCKED

    @property
    def amount_display(self) -> str:
        return _money(self.amount_minor, self.currency)


class BalanceTransaction(models.Model):
    """One movement of money at the payment provider (a charge, refund, fee, dispute, reserve…)."""

    class Type(models.TextChoices):
        CHARGE = "charge", "Charge"
        REFUND = "refund", "Refund"
        DISPUTE = "dispute", "Dispute / chargeback"
        DISPUTE_REVERSAL = "dispute_reversal", "Dispute reversal"
        RESERVE = "reserve", "Reserve"
        RESERVE_RELEASE = "reserve_release", "Reserve release"
        ADJUSTMENT = "adjustment", "Adjustment"
        PAYOUT = "payout", "Payout"
        CURRENCY_CONVERSION = "currency_conversion", "Currency conversion"
        FEE = "fee", "Fee"
        OTHER = "other", "Other"

    payout = models.ForeignKey(
        Payout, null=True, blank=True, on_delete=models.SET_NULL, related_name="balance_transactions"
    )
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="balance_transactions")
    external_id = models.CharField(max_length=200)
    type = models.CharField(max_length=30, choices=Type.choices, db_index=True)
    source_type = models.CharField(max_length=60, blank=True)
    source_id = models.CharField(max_length=200, blank=True)
    source_order_transaction_id = models.CharField(max_length=200, blank=True)
    storefront_order_id = models.CharField(max_length=200, blank=True, db_index=True)
    amount_minor = models.BigIntegerField()  # gross: what the customer paid or got back (signed)
    fee_minor = models.BigIntegerField(default=0)  # what the provider kept (positive = a cost)
    net_minor = models.BigIntegerField()  # amount - fee: what reached the payout
    currency = models.CharField(max_length=3)
    # What the customer paid, in their currency, when the provider converted it into `currency` (a
    # settlement file's customer-facing / gross-currency amount, signed like amount_minor), and the rate
    # the provider says it used (presentment major units x rate = payout major units), when it says.
    presentment_amount_minor = models.BigIntegerField(null=True, blank=True)
    presentment_currency = models.CharField(max_length=3, blank=True)
    exchange_rate = models.DecimalField(max_digits=24, decimal_places=12, null=True, blank=True)
    adjustment_reason = models.CharField(max_length=100, blank=True)
    test = models.BooleanField(default=False)
    transaction_date = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)  # the provider's record, as it arrived

    class Meta:
        ordering = ["transaction_date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="uniq_balance_transaction"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.external_id}"


class ReconciliationLine(models.Model):
    """One line of a payout's reconciliation: a balance transaction and what the ERP says of it."""

    class Kind(models.TextChoices):
        MATCHED = "matched", "Matched"
        UNMATCHED = "unmatched", "Unmatched"

    class DifferenceClass(models.TextChoices):
        NONE = "none", "No difference"
        MISSING_ERP_POSTING = "missing_erp_posting", "Missing ERP posting"
        AMOUNT_MISMATCH = "amount_mismatch", "Amount mismatch"
        FEE_MISMATCH = "fee_mismatch", "Fee mismatch"
        ROUNDING = "rounding", "Rounding"
        CURRENCY_CONVERSION = "currency_conversion", "Currency conversion"
        UNKNOWN_ORDER = "unknown_order", "Unknown order"
        TEST_TRANSACTION = "test_transaction", "Test transaction"

    payout = models.ForeignKey(Payout, on_delete=models.CASCADE, related_name="lines")
    balance_transaction = models.ForeignKey(
        BalanceTransaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="reconciliation_lines"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    difference_class = models.CharField(
        max_length=30, choices=DifferenceClass.choices, default=DifferenceClass.NONE, db_index=True
    )
    expected_minor = models.BigIntegerField(null=True, blank=True)  # what the ERP side says
    actual_minor = models.BigIntegerField(default=0)  # what the payout says
    variance_minor = models.BigIntegerField(default=0)
    order = models.ForeignKey(OrderLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    erp_document = models.CharField(max_length=100, blank=True)  # the Sales Order / credit memo number
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.difference_class}"


class SettlementFile(models.Model):
    """A PSP settlement report uploaded (or dropped in the watched folder) for a commercetools connection."""

    class Layout(models.TextChoices):
        STRIPE_PAYOUT_RECONCILIATION = "stripe_payout_reconciliation", "Stripe payout reconciliation (itemized)"
        ADYEN_SETTLEMENT_DETAILS = "adyen_settlement_details", "Adyen settlement details"

    class Status(models.TextChoices):
        IMPORTED = "imported", "Imported"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="settlement_files")
    name = models.CharField(max_length=255)
    layout = models.CharField(max_length=40, choices=Layout.choices)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IMPORTED, db_index=True)
    rows = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "sha256"], name="uniq_settlement_file"),
        ]

    def __str__(self) -> str:
        return self.name
