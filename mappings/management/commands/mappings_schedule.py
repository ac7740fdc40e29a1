"""Create (or update) the django-q2 schedule of the mapping health check; safe to run on every deploy."""
from django.core.management.base import BaseCommand
from django_q.models import Schedule

from mappings.tasks import SCHEDULE_NAME


class Command(BaseCommand):
    help = "Create or update the scheduled mapping health check (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--minutes", type=int, default=60, help="How often the check runs (default 60).")

    def handle(self, *args, minutes: int, **options):
        # Schedule.name is not unique in django-q2: we look it up by name ourselves.
        schedule, created = Schedule.objects.update_or_create(
            name=SCHEDULE_NAME,
            defaults={
                "func": "mappings.tasks.mappings_health_check",
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
        self.stdout.write(f"{'Created' if created else 'Updated'} schedule {schedule.name!r}: every {minutes} minutes.")
