"""The outbound-write log."""
from django.db import models
from django.utils import timezone

from .connections import Connection
from .orders import OrderLink


class OutboundWrite(models.Model):
    """One write to any outside system (ERP sales orders, customers, cancellations, credit memos,
    journals, purchase orders; storefront fulfilments, products…), saved before the call with its
    idempotency key and updated after: a crash in between is visible and the replay is safe."""

    class Status(models.TextChoices):
        STARTED = "started", "Started"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    system = models.CharField(max_length=20, blank=True)  # the target's kind (rest_erp, prima, shopify…)
    order = models.ForeignKey(OrderLink, on_delete=models.CASCADE, related_name="erp_writes", null=True, blank=True)
    # What the write is about, for every flow: ("order", "42"), ("refund", "…"), ("payout", "…").
    subject_type = models.CharField(max_length=30, blank=True)
    subject_id = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=40)  # create_customer, create_sales_order, cancel_sales_order, …
    # The idempotency key / external reference the target dedupes the write by.
    external_reference = models.CharField(max_length=200, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    response_id = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="outbound_write_subject_idx"),
                   # The live-progress panel counts writes per minute.
                   models.Index(fields=["started_at"], name="outbound_write_started_idx")]

    @property
    def idempotency_key(self) -> str:
        return self.external_reference
