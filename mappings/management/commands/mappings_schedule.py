"""Create (or update) the django-q2 schedule of the mapping health check (one entry of config/schedules.py)."""
from django.core.management.base import BaseCommand

from mappings.tasks import SCHEDULE_NAME


class Command(BaseCommand):
    help = "Create or update the scheduled mapping health check (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--minutes", type=int, default=60, help="How often the check runs (default 60).")

    def handle(self, *args, minutes: int, **options):
        from config.schedules import schedules_ensure

        [schedule] = schedules_ensure(owner="mappings", minutes={SCHEDULE_NAME: minutes})
        self.stdout.write(f"Schedule {schedule.name!r}: every {minutes} minutes.")
