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

    type_code = models.CharField("type", max_length=60, db_index=True)
    team = models.CharField("team", max_length=20, choices=Team.CHOICES, db_index=True)
    severity = models.CharField("severity", max_length=20, choices=Severity.CHOICES, default=Severity.MEDIUM)
    system = models.CharField("system", max_length=40, blank=True)
    status = models.CharField("status", max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True)
    # key: what makes this exception itself (type + order + sku): a recurrence reopens the same row.
    key = models.CharField("key", max_length=300, unique=True)
    # fingerprint: the cause (type + key object, e.g. "unknown_sku:TEE-RED-M"): rows group by it.
    fingerprint = models.CharField("cause", max_length=300, db_index=True)
    title = models.CharField("title", max_length=300)
    message = models.TextField("message")
    last_error = models.TextField("last error", blank=True)
    context = models.JSONField("context", default=dict, blank=True)  # objects concerned: sku, order number, depot...
    order = models.ForeignKey(
        "integrations.OrderLink", null=True, blank=True, on_delete=models.SET_NULL, related_name="exceptions",
        verbose_name="order",
    )
    sku = models.CharField("storefront SKU", max_length=100, blank=True, db_index=True)
    # What the exception is about, for any flow: ("order", "42"), ("sku", "TEE-RED-M"), ("refund", …),
    # ("payout", …), ("location", …), ("connection", "shopify-eu"). Orders also keep their link above.
    subject_type = models.CharField("subject type", max_length=30, blank=True, db_index=True)
    subject_id = models.CharField("subject", max_length=200, blank=True)
    retry_args = models.JSONField("retry arguments", default=dict, blank=True)
    # A recurrence counts here and moves last_seen; it adds no timeline entry (a flash sale can recur thousands of times).
    occurrences = models.PositiveIntegerField("times seen", default=1)
    first_seen = models.DateTimeField("first seen", default=timezone.now)
    last_seen = models.DateTimeField("last seen", default=timezone.now, db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, verbose_name="assignee"
    )
    resolution_note = models.TextField("resolution note", blank=True)
    resolved_at = models.DateTimeField("resolved at", null=True, blank=True)
    due_at = models.DateTimeField("due (SLA)", null=True, blank=True, db_index=True)
    escalated_at = models.DateTimeField("escalated at", null=True, blank=True)  # overdue mail sent (reset on reopen)

    class Meta:
        verbose_name = "exception"
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

    exception = models.ForeignKey(ExceptionRecord, on_delete=models.CASCADE, related_name="activity", verbose_name="exception")
    at = models.DateTimeField("when", default=timezone.now)
    # The person who acted; empty for what Ledgerline did by itself (raised, auto-resolved, a failed retry's outcome).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, verbose_name="by")
    action = models.CharField("what", max_length=30)
    note = models.TextField("note", blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = "timeline entry"
        verbose_name_plural = "timeline entries"

    @property
    def actor_name(self) -> str:
        return self.actor.get_username() if self.actor else "Ledgerline"


class BulkJob(models.Model):
    """A retry (or other action) over many exceptions, run by django-q2; the screen polls its progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    action = models.CharField("action", max_length=20, default="retry")
    label = models.CharField("what", max_length=300, blank=True)
    # The person who started the job: the task acts (and the timeline names them) on their behalf.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, verbose_name="started by"
    )
    created_at = models.DateTimeField("started at", default=timezone.now)
    finished_at = models.DateTimeField("finished at", null=True, blank=True)
    status = models.CharField("status", max_length=20, choices=Status.choices, default=Status.QUEUED)
    exception_ids = models.JSONField("exceptions", default=list)
    total = models.PositiveIntegerField("total", default=0)
    done = models.PositiveIntegerField("done", default=0)  # processed, in exception_ids order: a rerun resumes here
    succeeded = models.PositiveIntegerField("succeeded", default=0)
    failed = models.PositiveIntegerField("failed", default=0)
    # What the selection held that the job does not touch, as {reason: count}: {"owned by finance": 2}.
    refused = models.JSONField("refused", default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "bulk job"

    def __str__(self) -> str:
        return f"{self.action} {self.done}/{self.total}"

    @property
    def refused_summary(self) -> str:
        return refused_summary(self.refused)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100

    @property
    def is_finished(self) -> bool:
        return self.status == self.Status.DONE


def refused_summary(refused: dict[str, int]) -> str:
    """ "2 refused: owned by finance", or "3 refused: 2 owned by finance, 1 already closed"; "" for none."""
    refused = {reason: n for reason, n in (refused or {}).items() if n}
    total = sum(refused.values())
    if not total:
        return ""
    if len(refused) == 1:
        return f"{total} refused: {next(iter(refused))}"
    return f"{total} refused: " + ", ".join(f"{n} {reason}" for reason, n in sorted(refused.items(), key=lambda kv: -kv[1]))
