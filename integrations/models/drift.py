"""Drift monitoring: each run of a scheduled check and the gaps (findings) it found between systems.
A finding is identified by its check and key (the gap's identity), so a gap seen again updates the
same row and its exception instead of raising a second one."""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class DriftRun(models.Model):
    """One run of one drift check: who or what started it, how long it took, what it found."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Scheduled"
        MANUAL = "manual", "Run by hand"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        OK = "ok", "No gaps"
        FINDINGS = "findings", "Gaps found"
        FAILED = "failed", "Failed"

    FINISHED = (Status.OK, Status.FINDINGS, Status.FAILED)

    check_code = models.CharField("check", max_length=60, db_index=True)
    trigger = models.CharField("trigger", max_length=20, choices=Trigger.choices, default=Trigger.SCHEDULE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", verbose_name="run by")
    status = models.CharField("status", max_length=20, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField("started", default=timezone.now)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    duration_ms = models.PositiveIntegerField("duration (ms)", null=True, blank=True)
    found = models.PositiveIntegerField("gaps found", default=0)
    raised = models.PositiveIntegerField("new gaps", default=0)  # findings (and exceptions) first seen by this run
    updated = models.PositiveIntegerField("gaps seen again", default=0)
    resolved = models.PositiveIntegerField("gaps closed", default=0)  # earlier findings this run no longer found
    error = models.TextField("error", blank=True)
    # What the check wants to remember or show: per-connection poll cursors, counts per kind of gap, notes.
    summary = models.JSONField("summary", default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = "drift check run"
        constraints = [
            # A check already running is not started twice: the second insert fails and is refused.
            models.UniqueConstraint(fields=["check_code"], condition=Q(status="running"), name="drift_one_running_run"),
        ]
        indexes = [models.Index(fields=["check_code", "-started_at"], name="drift_run_check_started")]

    def __str__(self) -> str:
        return f"{self.check_code} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def is_running(self) -> bool:
        return self.status == self.Status.RUNNING


class DriftFinding(models.Model):
    """One gap between systems, as long as a check keeps finding it; resolved when it no longer does."""

    check_code = models.CharField("check", max_length=60)
    key = models.CharField("gap", max_length=250)  # the gap's identity within its check
    connection = models.ForeignKey("integrations.Connection", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="drift_findings")
    subject_type = models.CharField("subject type", max_length=30, blank=True)
    subject_id = models.CharField("subject", max_length=200, blank=True)
    message = models.TextField("message")
    detail = models.JSONField("detail", default=dict, blank=True)  # both sides of the gap
    fingerprint = models.CharField("as last told", max_length=40, blank=True)  # hash of message + detail
    first_seen = models.DateTimeField("first seen", default=timezone.now)
    last_seen = models.DateTimeField("last seen", default=timezone.now)
    resolved_at = models.DateTimeField("resolved", null=True, blank=True)
    last_run = models.ForeignKey(DriftRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="findings")
    exception = models.ForeignKey("exceptions_queue.ExceptionRecord", null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="drift_findings")

    class Meta:
        ordering = ["-last_seen", "-pk"]
        verbose_name = "drift finding"
        constraints = [models.UniqueConstraint(fields=["check_code", "key"], name="drift_finding_uniq_key")]
        indexes = [
            models.Index(fields=["check_code", "last_seen"], condition=Q(resolved_at__isnull=True),
                         name="drift_finding_open"),
        ]

    def __str__(self) -> str:
        return f"{self.check_code}: {self.key}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
