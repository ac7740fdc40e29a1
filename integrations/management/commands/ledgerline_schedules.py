"""Create or update every django-q2 schedule the flows need (idempotent: keyed by name)."""
from django.core.management.base import BaseCommand

SCHEDULES = [
    # name, function, schedule type, minutes
    ("commercetools-order-poll", "integrations.tasks.poll_commercetools_orders", "I", 1),
    ("orders-stuck-repost", "integrations.tasks.repost_stuck_orders", "I", 5),
]


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules of every flow."

    def handle(self, *args, **opts):
        from django.core.management import get_commands
        from django_q.models import Schedule

        for name, func, kind, minutes in SCHEDULES:
            Schedule.objects.update_or_create(
                name=name, defaults={"func": func, "schedule_type": kind, "minutes": minutes, "repeats": -1}
            )
        # Apps that own further schedules expose their own command; run them too.
        for command in ("exceptions_schedules", "mappings_schedule", "inventory_schedules"):
            if command in get_commands():
                from django.core.management import call_command

                call_command(command, verbosity=0)
        self.stdout.write(f"{Schedule.objects.count()} schedules in place")
