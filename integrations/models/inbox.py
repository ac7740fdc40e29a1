"""The inbox: every inbound event stored before it is processed, poll cursors, and rejected webhooks."""
import json

from django.db import models
from django.utils import timezone

from .connections import Connection


def _pretty(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)


class InboundEvent(models.Model):
    """A webhook delivery or poll result, stored before anything else happens (the inbox)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="events")
    topic = models.CharField(max_length=80)
    # The vendor's own delivery id (X-Shopify-Webhook-Id, a commercetools message id, or
    # "<order id>@<version>" for a poll result): unique, so a redelivery finds it and stops.
    external_id = models.CharField(max_length=200)
    event_id = models.CharField(max_length=200, blank=True)  # X-Shopify-Event-Id
    triggered_at = models.DateTimeField(null=True, blank=True)  # X-Shopify-Triggered-At
    resource_id = models.CharField(max_length=200, blank=True, db_index=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    payload = models.JSONField()
    headers = models.JSONField(default=dict, blank=True)  # non-secret headers only
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="uniq_inbound_event_per_connection"),
            # Shopify may send one event again under a new webhook id: its event id says it is the same.
            models.UniqueConstraint(fields=["connection", "event_id"], condition=~models.Q(event_id=""),
                                    name="uniq_inbound_vendor_event_per_connection"),
        ]
        # One order's events (the intake's look for a carrier, a carrier's riders, commercetools'
        # ordering): without both columns SQLite walks every event of the connection.
        indexes = [models.Index(fields=["connection", "resource_id"], name="inbound_event_order")]

    def __str__(self) -> str:
        return f"{self.connection.code} {self.topic} {self.external_id}"

    @property
    def payload_pretty(self) -> str:
        return _pretty(self.payload)


class PollCursor(models.Model):
    """Where a poller stopped: it resumes from here (lastModifiedAt + id as a tie-breaker)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE)
    resource = models.CharField(max_length=40)
    last_modified_at = models.CharField(max_length=40, blank=True)  # vendor timestamp string, exact
    last_id = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_run_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "resource"], name="uniq_poll_cursor")]


class SecurityEvent(models.Model):
    """A rejected webhook (bad or missing signature, bad token): who tried, when, why."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=40)
    reason = models.CharField(max_length=200)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=300)
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
