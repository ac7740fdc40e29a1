"""Run drift checks by hand: `manage.py drift_check orphaned_orders`, `manage.py drift_check --all`,
`manage.py drift_check --list`. Each run is recorded as a manual run, as "Run now" records it."""
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run one drift check (by its code) or all of them now, and print what each found."

    def add_arguments(self, parser):
        parser.add_argument("code", nargs="?", help="the check's code (see --list)")
        parser.add_argument("--all", action="store_true", help="run every check, one after the other")
        parser.add_argument("--list", action="store_true", help="list the checks and their schedules")

    def handle(self, *args, code=None, all=False, list=False, **options):
        from integrations.drift.registry import UnknownCheck, all_checks, check_run, get_check
        from integrations.models import DriftRun

        if list:
            for check in all_checks():
                self.stdout.write(f"{check.code:20} every {check.schedule_minutes:>4} min  {check.team:10} {check.label}")
            return
        if all == bool(code):
            raise CommandError("name one check, or give --all (--list shows the codes)")
        try:
            checks = all_checks() if all else [get_check(code)]
        except UnknownCheck as exc:
            raise CommandError(f"{exc}; known: {', '.join(c.code for c in all_checks())}") from None
        failed = False
        for check in checks:
            run = check_run(check.code, trigger=DriftRun.Trigger.MANUAL)
            if run.status == DriftRun.Status.RUNNING:
                self.stdout.write(f"{check.code}: already running (since {run.started_at:%H:%M:%S}), not started again")
                continue
            line = (f"{check.code}: {run.get_status_display().lower()} — {run.found} found, {run.raised} new, "
                    f"{run.updated} seen again, {run.resolved} closed ({run.duration_ms} ms)")
            if run.status == DriftRun.Status.FAILED:
                failed = True
                self.stderr.write(f"{line}: {run.error}")
            else:
                self.stdout.write(line)
        if failed:
            raise CommandError("a check failed (it is an exception in the queue)")
