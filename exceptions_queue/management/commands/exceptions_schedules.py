"""Create (or update) the django-q2 schedules of the exception queue: escalation and daily digest."""
from django.core.management.base import BaseCommand
from django_q.models import Schedule


def ensure_schedules() -> list[Schedule]:
    from config.schedules import schedules_ensure

    return schedules_ensure(owner="exceptions")


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules for exception escalation and the daily digest."

    def handle(self, *args, **options):
        for schedule in ensure_schedules():
            self.stdout.write(f"{schedule.name}: {schedule.func} next at {schedule.next_run:%Y-%m-%d %H:%M} UTC")
