"""Create (or update) the django-q2 schedules of the exception queue: escalation and daily digest."""
from datetime import datetime, time, timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone
from django_q.models import Schedule

SCHEDULES = [
    # name is not unique in django-q2: update_or_create on it keeps one row per schedule.
    dict(name="exceptions: escalate overdue", func="exceptions_queue.tasks.escalate_overdue",
         schedule_type=Schedule.MINUTES, minutes=15, next_in=timedelta(minutes=1)),
    dict(name="exceptions: daily digest", func="exceptions_queue.tasks.send_daily_digest",
         schedule_type=Schedule.DAILY, at=time(7, 0)),
]


def ensure_schedules() -> list[Schedule]:
    now = timezone.now()
    rows = []
    for spec in SCHEDULES:
        spec = dict(spec)
        name = spec.pop("name")
        if "at" in spec:
            at = spec.pop("at")
            first = timezone.make_aware(datetime.combine(now.date(), at), timezone.get_current_timezone())
            next_run = first if first > now else first + timedelta(days=1)
        else:
            next_run = now + spec.pop("next_in")
        schedule, created = Schedule.objects.update_or_create(name=name, defaults=spec)
        if created or schedule.next_run is None:
            schedule.next_run = next_run
            schedule.save(update_fields=["next_run"])
        rows.append(schedule)
    return rows


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules for exception escalation and the daily digest."

    def handle(self, *args, **options):
        for schedule in ensure_schedules():
            self.stdout.write(f"{schedule.name}: {schedule.func} next at {schedule.next_run:%Y-%m-%d %H:%M} UTC")
