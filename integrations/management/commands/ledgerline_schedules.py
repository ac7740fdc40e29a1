"""Create or update every django-q2 schedule (config/schedules.py, the one registry); idempotent."""
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules of every flow (safe to run on every deploy)."

    def handle(self, *args, **opts):
        from django_q.models import Schedule

        from config.schedules import schedules_ensure

        schedules_ensure()
        self.stdout.write(f"{Schedule.objects.count()} schedules in place")
