"""Create or update every django-q2 schedule the flows need (idempotent: keyed by name)."""
from django.core.management.base import BaseCommand

SCHEDULES = [
    # name, function, schedule type, minutes
    ("commercetools-order-poll", "integrations.tasks.poll_commercetools_orders", "I", 1),
    # The safety net of the order flow: lost/failed events, dead posts, due automatic re-posts.
    ("orders-sweep", "integrations.tasks.sweep_orders", "I", 1),
]
# Schedules an earlier release created and a newer one replaced ("orders-sweep" does its work).
OBSOLETE = ["orders-stuck-repost"]


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules of every flow."

    def handle(self, *args, **opts):
        from django.core.management import get_commands
        from django_q.models import Schedule

        Schedule.objects.filter(name__in=OBSOLETE).delete()
        for name, func, kind, minutes in SCHEDULES:
            # Schedule.name is not unique: a copy made by hand would make update_or_create fail.
            extra = Schedule.objects.filter(name=name).order_by("pk").values_list("pk", flat=True)[1:]
            Schedule.objects.filter(pk__in=list(extra)).delete()
            Schedule.objects.update_or_create(
                name=name, defaults={"func": func, "schedule_type": kind, "minutes": minutes, "repeats": -1}
            )
        # Apps that own further schedules expose their own command; run them too.
        for command in ("exceptions_schedules", "mappings_schedule", "inventory_schedules"):
            if command in get_commands():
                from django.core.management import call_command

                call_command(command, verbosity=0)
        self.stdout.write(f"{Schedule.objects.count()} schedules in place")
