"""Create or update the inventory full-sync schedule (idempotent: keyed by name)."""
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or update the django-q2 schedule of the routine inventory full sync."

    def handle(self, *args, **opts):
        from django_q.models import Schedule

        # Quiet windows are checked when the task runs (settings.INVENTORY_QUIET_HOURS), so changing
        # them needs no new schedule.
        Schedule.objects.update_or_create(name="inventory-full-sync", defaults={
            "func": "integrations.tasks.inventory_full_sync_all", "schedule_type": Schedule.MINUTES,
            "minutes": settings.INVENTORY_FULL_SYNC_MINUTES, "repeats": -1})
        self.stdout.write("inventory-full-sync schedule in place")
