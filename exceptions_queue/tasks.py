"""django-q2 entry points for exceptions: load by id, call the service. No business logic here."""
from __future__ import annotations


def run_bulk_job(job_id: int) -> str:
    # Safe twice: the job resumes at its `done` counter and skips exceptions already resolved.
    # Only the id travels: the job row names the person it acts for (created_by), so the timeline does too.
    from .services import bulk_job_run

    job = bulk_job_run(job_id=job_id)
    who = job.created_by.get_username() if job.created_by else "Ledgerline"
    refused = f"; {job.refused_summary}" if job.refused_summary else ""
    return f"for {who}: {job.succeeded} resolved, {job.failed} still failing{refused}"


def escalate_overdue() -> int:
    # Safe twice: each overdue exception is claimed (escalated_at set) before its mail is sent.
    from .escalation import exceptions_escalate_overdue

    return exceptions_escalate_overdue()


def send_daily_digest() -> int:
    # Run twice, a team gets the digest twice; the schedule runs it once a day.
    from .escalation import exceptions_send_digest

    return exceptions_send_digest()
