"""Backfill runs (a storefront's orders since a date, imported through the inbox) and each
connection's last health check, stored so that lists never call a vendor."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class BackfillRun(models.Model):
    """One import of a storefront's orders since `since`. `cursor` says how far it got, so a run
    whose worker died resumes there; counts are what the progress bar shows."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE, related_name="backfill_runs")
    since = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    found = models.PositiveIntegerField(default=0)  # orders the storefront returned
    stored = models.PositiveIntegerField(default=0)  # new inbound events written
    skipped = models.PositiveIntegerField(default=0)  # already in the inbox, or Ledgerline already has that version
    posted = models.PositiveIntegerField(default=0)  # of those stored, orders now in the ERP
    cursor = models.JSONField(default=dict, blank=True)
    warning = models.TextField(blank=True)  # e.g. a missing read_all_orders scope
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # a running run older than its lease is resumed
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Backfill {self.pk} of {self.connection} since {self.since:%Y-%m-%d}"

    @property
    def done(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.FAILED)


class ConnectionHealthCheck(models.Model):
    """A connection's last health check: its lines (check, status, message, repairable) and when."""

    connection = models.OneToOneField("integrations.Connection", on_delete=models.CASCADE, related_name="health_check")
    status = models.CharField(max_length=10, default="")  # ok | warn | error: the worst line
    lines = models.JSONField(default=list, blank=True)
    checked_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.connection}: {self.status} at {self.checked_at:%Y-%m-%d %H:%M}"
