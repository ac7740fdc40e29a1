"""Exceptions a person must act on, and the audit trail of what people did with them."""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .registry import Severity, Team


ACTIVE = ["open", "in_progress"]


class ExceptionRecord(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        RESOLVED = "resolved", "Resolved"
        IGNORED = "ignored", "Ignored"

    ACTIVE_STATUSES = (Status.OPEN, Status.IN_PROGRESS)

    type_code = models.CharField(max_length=60, db_index=True)
    team = models.CharField(max_length=20, choices=Team.CHOICES, db_index=True)
    severity = models.CharField(max_length=20, choices=Severity.CHOICES, default=Severity.MEDIUM)
    system = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True)
    # key: what makes this exception itself (type + order + sku): a recurrence reopens the same row.
    key = models.CharField(max_length=300, unique=True)
    # fingerprint: the cause (type + key object, e.g. "unknown_sku:TEE-RED-M"): rows group by it.
    fingerprint = models.CharField(max_length=300, db_index=True)
    title = models.CharField(max_length=300)
    message = models.TextField()
    last_error = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True)  # objects concerned: sku, order number, depot...
    order = models.ForeignKey(
        "integrations.OrderLink", null=True, blank=True, on_delete=models.SET_NULL, related_name="exceptions"
    )
    sku = models.CharField(max_length=100, blank=True, db_index=True)
    # What the exception is about, for any flow: ("order", "42"), ("sku", "TEE-RED-M"), ("refund", …),
    # ("payout", …), ("location", …), ("connection", "shopify-eu"). Orders also keep their link above.
    subject_type = models.CharField(max_length=30, blank=True, db_index=True)
    subject_id = models.CharField(max_length=200, blank=True)
    retry_args = models.JSONField(default=dict, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    resolution_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    escalated_at = models.DateTimeField(null=True, blank=True)  # overdue mail sent (reset on reopen)

    class Meta:
        ordering = ["-last_seen", "-id"]
        indexes = [
            models.Index(fields=["team", "status", "-last_seen"], name="exc_team_status_seen"),
            models.Index(fields=["status", "type_code"], name="exc_status_type"),
            # The inbox and the badge read only active rows (a few % of a million): partial
            # indexes in the inbox's own order let both be answered from a short index range.
            models.Index(fields=["team", "-last_seen", "-id"], condition=Q(status__in=ACTIVE), name="exc_active_team_seen"),
            models.Index(fields=["-last_seen", "-id"], condition=Q(status__in=ACTIVE), name="exc_active_seen"),
            models.Index(fields=["type_code", "-last_seen", "-id"], condition=Q(status__in=ACTIVE), name="exc_active_type_seen"),
            models.Index(fields=["team", "type_code"], condition=Q(status__in=ACTIVE), name="exc_active_team_type"),
            models.Index(fields=["fingerprint", "status"], name="exc_fingerprint_status"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def exception_type(self):
        from . import registry

        return registry.find(self.type_code)

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_active and self.due_at is not None and self.due_at < timezone.now()

    @property
    def can_retry(self) -> bool:
        exc_type = self.exception_type
        return bool(exc_type and exc_type.retry_handler)


class ExceptionActivity(models.Model):
    """Audit trail: raised, recurred, assigned, commented, retried, resolved, ignored, reopened."""

    exception = models.ForeignKey(ExceptionRecord, on_delete=models.CASCADE, related_name="activity")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=30)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    @property
    def actor_name(self) -> str:
        return self.actor.get_username() if self.actor else "Ledgerline"


class BulkJob(models.Model):
    """A retry (or other action) over many exceptions, run by django-q2; the screen polls its progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    action = models.CharField(max_length=20, default="retry")
    label = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    exception_ids = models.JSONField(default=list)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)  # processed, in exception_ids order: a rerun resumes here
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.action} {self.done}/{self.total}"

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100

    @property
    def is_finished(self) -> bool:
        return self.status == self.Status.DONE
