"""Kept for deploy scripts that still call it: the hourly mapping health check is retired (the catalogue
drift check replaces it), so this removes its old schedule and makes sure the catalogue check's is there."""
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Remove the retired mapping health schedule and ensure the catalogue drift check's (idempotent)."

    def handle(self, *args, **options):
        from config.schedules import schedules_ensure

        schedule = next(s for s in schedules_ensure(owner="drift") if s.func == "integrations.drift.tasks.catalogue")
        self.stdout.write(f"The mapping health check is now the catalogue drift check: schedule {schedule.name!r}, "
                          f"every {schedule.minutes} minutes.")
